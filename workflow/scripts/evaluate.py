from pathlib import Path

from synthmath.jobs import job_log
from synthmath.pipeline import evaluate_run

with job_log(snakemake):
    run_dir = Path(snakemake.input.model).parent
    evaluate_run(
        run_dir,
        snakemake.wildcards.test,
        snakemake.input.test,
        snakemake.output[0],
        progress=False,
        threads=snakemake.threads,
    )
