# MLflow: create the tracking database and one experiment per study in a first job, so that
# parallel jobs never race to create a missing SQLite database.
rule tracking_init:
    output:
        TRACKING_READY,
    log:
        str(RESULTS / "logs" / "tracking_init.log"),
    conda:
        "../envs/synthmath.yaml"
    # the URI only: every training and evaluation waits for this job's output, so a param that
    # changed with the studies (a study added, or the config's key order) would rerun them all;
    # the script reads the studies' experiments from the config instead
    params:
        uri=PLAN.tracking_uri,
    script:
        "../scripts/tracking_init.py"
