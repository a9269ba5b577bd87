from synthmath.jobs.cas import cas_job
from synthmath.jobs.log import job_log

with job_log(snakemake):
    spec = snakemake.params.spec
    paths = {p: getattr(snakemake.input, p) for p in spec["datasets"]}
    cas_job(spec, paths, snakemake.output[0], workers=snakemake.threads)
