"""Glue for the Snakemake scripts: log to the job's log file, then call one library function."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def setup_logging(stream=None, level: int = logging.INFO) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("mlflow", "alembic", "sqlalchemy", "urllib3", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)


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


def tune_cpu_allocator() -> bool:
    """Keep large freed buffers in the heap instead of unmapping them (glibc only).

    CPU training frees and reallocates the same large tensors every step (logits over a big
    vocabulary, embedding gradients); by default glibc returns each one to the OS and the
    next step page-faults it back, which showed as minutes of system time per run. Returns
    whether the setting was applied.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(
            m_trim_threshold, (1 << 31) - 1
        )
        return bool(ok)
    except (OSError, AttributeError):
        return False
