"""The CAS jobs (config ``cas:``): SymPy on a symbolic study's test sets, and its report.

:func:`cas_job` solves the first ``cas.size`` problems of each test set (the shards the
evaluate jobs read; no new data) at every timeout and writes ``results/cas/<study>.json``.
:func:`cas_report_job` puts that beside the paper's rows and the model's accuracies
(``results/cas/<study>.md``); it is a separate job so that the long SymPy run neither waits
for training nor reruns when an evaluation changes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import sympy as sp

from synthmath.core.files import write_json, write_text
from synthmath.core.raw import concat_raw
from synthmath.report.cas import cas_markdown
from synthmath.runs.datasets import load_dataset
from synthmath.runs.plan import CasSpec
from synthmath.tasks.registry import make_task
from synthmath.tasks.symbolic.cas import run_cas

log = logging.getLogger(__name__)


def cas_job(
    spec: CasSpec | dict,
    test_paths: Mapping[str, Sequence[str | os.PathLike]],
    out_path: str | os.PathLike,
    *,
    workers: int = 0,
) -> dict:
    """Solve the first ``spec.size`` problems of each of ``spec.datasets`` (problem -> test
    set, read from ``test_paths[problem]``) with SymPy under ``spec.timeouts``; write the
    result as strict JSON to ``out_path`` and return it. ``workers`` 0: ``spec.workers``."""
    spec = CasSpec.from_json(spec) if isinstance(spec, dict) else spec
    workers = workers or spec.workers
    parts = []
    for problem, ds in spec.datasets.items():
        task = make_task(ds.task, ds.params)
        raw = load_dataset(test_paths[problem], ds, task)[0]
        n = len(raw["problem"])
        if n < spec.size:
            log.warning("%s: %d test problems, fewer than cas.size=%d", problem, n, spec.size)
        parts.append({k: v[: spec.size] for k, v in raw.items()})
    raw = concat_raw(parts)
    log.info("SymPy on %d problems, timeouts %s s, %d workers", len(raw["problem"]),
             spec.timeouts, workers)  # fmt: skip
    result = run_cas(raw, spec.timeouts, workers=workers)
    seconds = result.pop("_seconds")
    out = {
        "study": spec.study,
        "test_set": spec.test_set,
        "size": spec.size,
        "timeouts": spec.timeouts,
        "workers": workers,
        "seconds": seconds,
        "sympy_version": sp.__version__,
        "datasets": {p: ds.id for p, ds in spec.datasets.items()},
        "problems": {str(p): result[p] for p in spec.datasets if p in result},
    }
    write_json(out_path, out)
    log.info("solved in %.1f s; wrote %s", seconds, out_path)
    return out


def cas_report_job(
    cas_path: str | os.PathLike,
    eval_paths: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
) -> str:
    """``results/cas/<study>.md`` from the CAS result and the evaluation JSON files of the
    study's runs on the same test sets (missing files are skipped: no model rows)."""
    result = json.loads(Path(cas_path).read_text())
    evals = [json.loads(Path(p).read_text()) for p in eval_paths if Path(p).exists()]
    text = cas_markdown(result, evals)
    write_text(out_path, text)
    return text
