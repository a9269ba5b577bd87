from synthmath.core.files import write_json
from synthmath.jobs.log import job_log
from synthmath.track.mlflow import init_tracking

with job_log(snakemake):
    init_tracking(snakemake.params.uri, snakemake.params.experiments)
    write_json(
        snakemake.output[0],
        {"uri": snakemake.params.uri, "experiments": sorted(snakemake.params.experiments)},
    )
