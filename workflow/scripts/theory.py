from pathlib import Path

from synthmath.jobs.log import job_log
from synthmath.report.theory import FIGURE_NAMES, write_theory_figures

with job_log(snakemake):
    written = write_theory_figures(Path(snakemake.output[0]).parent, **snakemake.params.settings)
    assert [p.name for p in written] == list(FIGURE_NAMES), written
