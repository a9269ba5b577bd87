from synthmath.jobs.log import job_log
from synthmath.report.study import write_summary

with job_log(snakemake):
    write_summary(
        snakemake.params.studies,
        snakemake.input.tables,
        snakemake.output[0],
        cas_paths=[*snakemake.input.cas, *snakemake.input.theory_report],
        theory_paths=snakemake.input.theory,
    )
