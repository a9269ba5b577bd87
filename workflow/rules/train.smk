# Train one run of a study; resumes from its checkpoint if a previous attempt was killed.
rule train:
    input:
        unpack(get_train_inputs),
    output:
        model=str(RESULTS / "{study}" / "{run}" / MODEL_NAME),
        summary=str(RESULTS / "{study}" / "{run}" / TRAIN_NAME),
    log:
        str(RESULTS / "logs" / "train" / "{study}" / "{run}.log"),
    benchmark:
        str(RESULTS / "benchmarks" / "train" / "{study}" / "{run}.tsv")
    conda:
        "../envs/synthmath.yaml"
    threads: get_train_threads
    resources:
        gpu=get_train_gpus,
    params:
        run=get_train_json,
    script:
        "../scripts/train.py"
