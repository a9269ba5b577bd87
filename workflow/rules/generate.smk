# One job per dataset shard: raw problems and answers, seeded by (dataset seed, shard).
rule generate:
    output:
        str(RESULTS / "data" / "{dataset}" / "shard-{shard}.npz"),
    log:
        str(RESULTS / "logs" / "generate" / "{dataset}-{shard}.log"),
    benchmark:
        str(RESULTS / "benchmarks" / "generate" / "{dataset}-{shard}.tsv")
    conda:
        "../envs/synthmath.yaml"
    params:
        spec=get_generate_params,
    script:
        "../scripts/generate.py"
