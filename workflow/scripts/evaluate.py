from pathlib import Path

from synthmath.jobs.evaluate import evaluate_run
from synthmath.jobs.log import job_log

# symbolic scoring verifies in spawned worker processes, which import this file again as
# __mp_main__: the job runs only in the main process
if __name__ == "__main__":
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
