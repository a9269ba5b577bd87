# Evaluate a trained run on one test set (in distribution or OOD); logs to its MLflow run.
rule evaluate:
    input:
        unpack(get_test_inputs),
    output:
        str(RESULTS / "{study}" / "{run}" / EVAL_DIR / "{test}.json"),
    log:
        str(RESULTS / "logs" / "evaluate" / "{study}" / "{run}-{test}.log"),
    benchmark:
        str(RESULTS / "benchmarks" / "evaluate" / "{study}" / "{run}-{test}.tsv")
    conda:
        "../envs/synthmath.yaml"
    threads: 1
    params:
        evaluation=get_eval_json,
    script:
        "../scripts/evaluate.py"
