# MLflow: create the tracking database and one experiment per study in a first job, so that
# parallel jobs never race to create a missing SQLite database.
rule tracking_init:
    output:
        TRACKING_READY,
    log:
        str(RESULTS / "logs" / "tracking_init.log"),
    conda:
        "../envs/synthmath.yaml"
    params:
        uri=PLAN.tracking_uri,
        experiments={name: s.description for name, s in PLAN.studies.items()},
    script:
        "../scripts/tracking_init.py"
