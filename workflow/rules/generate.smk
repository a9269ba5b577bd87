# One job per dataset shard: raw problems and answers, seeded by (dataset seed, shard).
rule generate:
    output:
        str(RESULTS / "data" / "{dataset}" / "shard-{shard}.npz"),
    params:
        spec=get_generate_params,
    log:
        str(RESULTS / "logs" / "generate" / "{dataset}-{shard}.log"),
    benchmark:
        str(RESULTS / "benchmarks" / "generate" / "{dataset}-{shard}.tsv")
    script:
        "../scripts/generate.py"
