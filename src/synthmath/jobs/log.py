"""Logging of a Snakemake job: the script's output and log records go to its ``log:`` file."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from synthmath.core.logs import setup_logging


@contextlib.contextmanager
def job_log(snakemake) -> Iterator[logging.Logger]:
    """Send stdout, stderr and logging of a Snakemake script to its ``log:`` file."""
    path = Path(snakemake.log[0]) if snakemake.log else None
    if path is None:
        setup_logging()
        yield logging.getLogger("synthmath.job")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(path, "a", buffering=1) as f,
        contextlib.redirect_stdout(f),
        contextlib.redirect_stderr(f),
    ):
        setup_logging(f)
        log = logging.getLogger("synthmath.job")
        log.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards))
        t0 = time.time()
        try:
            yield log
        except BaseException:
            log.exception("job failed")
            raise
        log.info("done in %.1fs", time.time() - t0)
