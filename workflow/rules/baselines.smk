# Classic baselines (config `baselines:`): a method answers a study's test set, scored by the task.
rule baseline:
    input:
        test=get_baseline_inputs,
    output:
        str(RESULTS / "baselines" / "{study}" / "{method}" / "{test}.json"),
    log:
        str(RESULTS / "logs" / "baselines" / "{study}" / "{method}-{test}.log"),
    benchmark:
        str(RESULTS / "benchmarks" / "baselines" / "{study}" / "{method}-{test}.tsv")
    conda:
        "../envs/synthmath.yaml"
    threads: 1
    params:
        spec=get_baseline_params,
    script:
        "../scripts/baseline.py"
