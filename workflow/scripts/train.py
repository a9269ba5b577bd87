from synthmath.jobs.log import job_log
from synthmath.jobs.train import train_run
from synthmath.runs.plan import RunSpec

with job_log(snakemake):
    run = RunSpec.from_json(snakemake.params.run)
    train_run(
        run,
        snakemake.input.train,
        snakemake.input.valid,
        prime_paths=snakemake.input.prime,
        progress=False,
        threads=snakemake.threads,
        # read from the config, not the rule's params: switching it on retrains nothing
        system_metrics=bool((snakemake.config.get("tracking") or {}).get("system_metrics")),
    )
