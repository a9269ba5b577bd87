"""The evaluate job: decode one test set with a trained run and score it."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from synthmath.core.errors import DataError
from synthmath.core.files import write_json
from synthmath.core.raw import take
from synthmath.jobs.train import _set_threads
from synthmath.runs.artifacts import RunDir, load_trained
from synthmath.runs.datasets import draw_dataset, example_digests, load_dataset
from synthmath.runs.plan import RunSpec
from synthmath.runs.settings import DEFAULT_EVAL_PRECISION
from synthmath.tasks.registry import make_task
from synthmath.train.checkpoint import load_metadata
from synthmath.train.device import pick_device
from synthmath.train.milestones import training_metrics

log = logging.getLogger(__name__)


def evaluate_run(
    run_dir: str | os.PathLike,
    test_name: str,
    test_paths: list[str] | None = None,
    out_path: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    threads: int = 0,
    train_paths: list[str] | None = None,
    evaluation: dict | None = None,
) -> dict:
    """Evaluate a trained run on one of its test sets; writes eval/<test>.json and logs MLflow.

    The JSON also carries ``training``: the run's milestones (steps_to_acc90, steps_to_acc99,
    final_loss; :mod:`synthmath.train.milestones`) and its validation curve, which study
    reports read like the test metrics.

    ``evaluation`` (the workflow passes the current config's :meth:`RunSpec.evaluation_json`):
    eval settings, test set, scoring options and tracking URI to use instead of those the run
    recorded when it trained, so test sets and eval settings can change without retraining."""
    _set_threads(threads)
    run_dir = Path(run_dir)
    files = RunDir(run_dir)
    spec = files.read_spec()
    if evaluation is not None:
        spec = spec.with_evaluation(test_name, evaluation)
    device = pick_device(spec.training.get("device", "auto"))
    model, task, _ = load_trained(run_dir, device=str(device))
    if test_name not in spec.test_sets:
        raise KeyError(f"{run_dir}: no test set {test_name!r}; it has {', '.join(spec.test_sets)}")
    ds = spec.test_sets[test_name]
    options = spec.test_options.get(test_name, {})  # scoring options (e.g. symreg's refine)
    test_task = make_task(spec.task, spec.test_params(test_name))
    raw = load_dataset(test_paths, ds, test_task)[0] if test_paths else draw_dataset(test_task, ds)
    dropped = 0
    if spec.eval.get("drop_train_overlap"):
        raw, dropped = drop_train_overlap(spec, task, test_task, raw, train_paths, test_name)
    from synthmath.eval.summary import evaluate

    t0 = time.time()
    summary = evaluate(
        model,
        test_task,
        raw,
        batch_size=spec.eval["batch_size"],
        beam_size=spec.eval["beam_size"],
        beam_sizes=spec.eval.get("beam_sizes") or (),
        device=device,
        progress=progress,
        precision=spec.eval.get("precision", DEFAULT_EVAL_PRECISION),
    )
    summary.update(
        study=spec.study,
        run_id=spec.run_id,
        test_set=test_name,
        dataset=ds.id,
        grid=spec.grid,
        test_params={**ds.params, **options},
        beam_size=spec.eval["beam_size"],
        seconds=round(time.time() - t0, 2),
    )
    if spec.eval.get("drop_train_overlap"):
        summary["dropped_train_overlap"] = dropped
    trained = load_metadata(files.model).get("summary")
    if trained:  # the run's training milestones and validation curve, for study reports
        summary["training"] = training_metrics(trained)
    out_path = Path(out_path) if out_path else files.eval(test_name)
    write_json(out_path, summary)
    _log_eval(spec, run_dir, test_name, summary)
    return summary


def drop_train_overlap(spec: RunSpec, task, test_task, raw, train_paths, test_name: str):
    """``raw`` without the examples whose input occurs in the run's training set, and how
    many were dropped (online training data cannot be compared: nothing is dropped)."""
    if spec.train_data is None:
        log.warning("eval.drop_train_overlap: %s trains online; no overlap to drop", spec.run_id)
        return raw, 0
    train = (
        load_dataset(train_paths, spec.train_data, task)[0]
        if train_paths
        else draw_dataset(task, spec.train_data)
    )
    seen = set(example_digests(task, train))
    keep = np.array([d not in seen for d in example_digests(test_task, raw)])
    if not keep.any():
        raise DataError(
            f"test set {test_name!r} of {spec.run_id}: every example's input occurs in the "
            "training set (eval.drop_train_overlap)"
        )
    dropped = int((~keep).sum())
    if dropped:
        log.info("test set %s: dropped %d examples seen in training", test_name, dropped)
    return take(raw, keep), dropped


def _log_eval(spec: RunSpec, run_dir: Path, test_name: str, summary: dict) -> None:
    mlflow_id = RunDir(run_dir).read_mlflow_id()
    if not spec.tracking_uri or mlflow_id is None:
        return
    from synthmath.track.mlflow import Tracker

    tracker = Tracker(spec.tracking_uri)
    tracker.log_datasets(mlflow_id, [(test_name, spec.test_sets[test_name])])
    if "precision" in summary:  # what eval.precision resolved to on this machine (auto)
        tracker.set_tags(mlflow_id, {f"test/{test_name}/precision": summary["precision"]})
    rows = [(f"test/{test_name}/{k}", v, 0) for k, v in summary["metrics"].items() if _finite(v)]
    for group, per in summary["by_group"].items():
        for label, values in per.items():
            for k, v in values.items():
                if k != "n" and _finite(v):
                    rows.append((f"test/{test_name}/{group}_{label}/{k}", v, 0))
    # an evaluation rerun (e.g. after its JSON was deleted) adds only the values that changed
    latest = tracker.latest_metrics(mlflow_id)
    rows = [row for row in rows if latest.get(row[0]) != float(row[1])]
    if rows:
        tracker.log_metrics(mlflow_id, rows)


def _finite(value) -> bool:
    return value is not None and bool(np.isfinite(value))
