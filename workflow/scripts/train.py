from synthmath.config import RunSpec
from synthmath.jobs import job_log
from synthmath.pipeline import train_run

with job_log(snakemake):
    run = RunSpec.from_json(snakemake.params.run)
    train_run(
        run,
        snakemake.input.train,
        snakemake.input.valid,
        prime_paths=snakemake.input.prime,
        progress=False,
        threads=snakemake.threads,
    )
