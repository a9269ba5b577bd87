from synthmath.jobs.cas import cas_report_job
from synthmath.jobs.log import job_log

with job_log(snakemake):
    cas_report_job(snakemake.input.cas, snakemake.input.evals, snakemake.output[0])
