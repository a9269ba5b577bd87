from synthmath.jobs.cas import cas_job
from synthmath.jobs.log import job_log

# SymPy runs in spawned worker processes, which import this file again as __mp_main__
if __name__ == "__main__":
    with job_log(snakemake):
        spec = snakemake.params.spec
        paths = {p: getattr(snakemake.input, p) for p in spec["datasets"]}
        cas_job(spec, paths, snakemake.output[0], workers=snakemake.threads)
