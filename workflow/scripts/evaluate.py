from pathlib import Path

from synthmath.jobs.evaluate import evaluate_run
from synthmath.jobs.log import job_log

with job_log(snakemake):
    run_dir = Path(snakemake.input.model).parent
    evaluate_run(
        run_dir,
        snakemake.wildcards.test,
        snakemake.input.test,
        snakemake.output[0],
        progress=False,
        threads=snakemake.threads,
        train_paths=list(getattr(snakemake.input, "train", []) or []),
        evaluation=snakemake.params.evaluation,
    )
