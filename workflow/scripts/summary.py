from synthmath.jobs import job_log
from synthmath.report import write_summary

with job_log(snakemake):
    write_summary(snakemake.params.studies, snakemake.input, snakemake.output[0])
