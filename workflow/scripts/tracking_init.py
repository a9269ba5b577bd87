from synthmath.core.files import write_json
from synthmath.jobs.log import job_log
from synthmath.track.mlflow import init_tracking

with job_log(snakemake):
    # one experiment per study of the config, with its description; a study added after this
    # job ran gets its experiment from its first job (Tracker.experiment is race-safe)
    studies = snakemake.config.get("studies") or {}
    experiments = {name: (study or {}).get("description", "") for name, study in studies.items()}
    init_tracking(snakemake.params.uri, experiments)
    write_json(
        snakemake.output[0],
        {"uri": snakemake.params.uri, "experiments": sorted(experiments)},
    )
