# Evaluate a trained run on one test set (in distribution or OOD); logs to its MLflow run.
rule evaluate:
    input:
        unpack(get_test_inputs),
    output:
        str(RESULTS / "{study}" / "{run}" / "eval" / "{test}.json"),
    threads: 1
    log:
        str(RESULTS / "logs" / "evaluate" / "{study}" / "{run}-{test}.log"),
    benchmark:
        str(RESULTS / "benchmarks" / "evaluate" / "{study}" / "{run}-{test}.tsv")
    script:
        "../scripts/evaluate.py"
