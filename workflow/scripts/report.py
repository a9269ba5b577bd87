from synthmath.jobs.log import job_log
from synthmath.report.study import study_report
from synthmath.track.study_run import log_report

with job_log(snakemake):
    spec = snakemake.params.spec
    study = snakemake.wildcards.study
    name = getattr(snakemake.wildcards, "name", None)  # a further report (rule report_named)
    paths = study_report(
        study,
        spec["report"],
        snakemake.input,
        snakemake.output.csv.rsplit("/", 1)[0],
        spec["description"],
        name=name,
    )
    prefix = f"table-{name}" if name else "table"
    log_report(spec["tracking_uri"], study, paths, paths["csv"], prefix=prefix)
