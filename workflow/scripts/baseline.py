from synthmath.jobs.baseline import baseline_job
from synthmath.jobs.log import job_log

with job_log(snakemake):
    baseline_job(snakemake.params.spec, snakemake.input.test, snakemake.output[0])
