from synthmath.data import generate_shard
from synthmath.jobs import job_log

with job_log(snakemake) as log:
    spec = snakemake.params.spec
    generate_shard(
        spec["task"], spec["params"], spec["size"], spec["seed"], spec["shard"], snakemake.output[0]
    )
    log.info("wrote %d examples to %s", spec["size"], snakemake.output[0])
