"""The baseline job (config ``baselines:``): a classic method answers one test set of a study
and the task scores it as it scores the model.

The test set is read from the shards the study's evaluate jobs read (no new data), cut to the
first ``size`` examples when set; the answers come from
:mod:`synthmath.tasks.regression.baseline_methods`, the summary from
:func:`synthmath.eval.summary.summarize_answers`: an evaluation JSON like a run's, with
``method: baseline:<method>``, ``seconds_per_problem`` (the fits' wall time per example) and
``rounding`` (the effect of the codec's 4 significant digits on the fits).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synthmath.core.files import write_json
from synthmath.core.raw import raw_len, take
from synthmath.eval.summary import summarize_answers
from synthmath.runs.datasets import load_dataset
from synthmath.runs.plan import DatasetSpec
from synthmath.tasks.registry import make_task
from synthmath.tasks.regression import baseline_methods as methods

log = logging.getLogger(__name__)


def baseline_label(method: str) -> str:
    """The ``method`` (and ``run_id``) of a baseline's rows in reports."""
    return f"baseline:{method}"


def baseline_job(
    spec: dict, test_paths: Sequence[str | os.PathLike], out_path: str | os.PathLike
) -> dict:
    """Answer and score one test set (``spec``: :meth:`~synthmath.runs.plan.BaselineSpec.job_json`);
    writes the summary as strict JSON to ``out_path`` and returns it."""
    ds = DatasetSpec(**spec["dataset"])
    task = make_task(spec["task"], spec["params"])
    raw = load_dataset(test_paths, ds, task)[0]
    if spec.get("size") and spec["size"] < raw_len(raw):
        raw = take(raw, np.arange(spec["size"]))
    n = raw_len(raw)
    label = baseline_label(spec["method"])
    log.info("%s on %s/%s: %d examples", label, spec["study"], spec["test_set"], n)

    def progress(i: int, answers: methods.MethodAnswers) -> None:
        if (i + 1) % 50 == 0 or i + 1 == n:
            log.info("%d/%d answered (%.2f s per fit)", i + 1, n, np.mean(answers.seconds))

    began = time.perf_counter()
    answers = methods.answer(
        spec["method"], task, raw, seed=spec["seed"], max_time=spec["max_time"],
        select=spec["select"], progress=progress,
    )  # fmt: skip
    fitted = time.perf_counter() - began
    summary = summarize_answers(task, raw, answers.hypotheses, fitted, spec["beam_sizes"])
    summary.update(
        study=spec["study"],
        run_id=label,
        method=label,
        test_set=spec["test_set"],
        dataset=ds.id,
        grid={},
        test_params=spec["params"],
        beam_size=1,
        seconds=round(time.perf_counter() - began, 2),
        fit_errors=sum(1 for e in answers.errors if e),
        rounding=methods.rounding_effect(task, raw, answers),
    )
    write_json(Path(out_path), summary)
    return summary
