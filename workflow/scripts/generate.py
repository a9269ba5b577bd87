from synthmath.jobs.log import job_log
from synthmath.runs.datasets import generate_shard

with job_log(snakemake) as log:
    spec = snakemake.params.spec
    generate_shard(
        spec["task"],
        spec["params"],
        spec["size"],
        spec["seed"],
        spec["shard"],
        snakemake.output[0],
        dataset=spec["dataset"],
    )
    log.info("wrote %d examples to %s", spec["size"], snakemake.output[0])
