"""Decode a test set with a trained model and score it with the task.

The summary is what the workflow stores in ``eval/<test_set>.json`` and what reports read:

    {"n": 1000, "metrics": {"acc_tol5": 0.97, ...}, "by_group": {"size": {"5x5": {...}}},
     "examples": [{"problem": ..., "answer": ..., "predicted": "...", "acc_tol5": true}, ...],
     "metric_info": {"acc_tol5": {"aggregate": "mean", "format": "percent", ...}, ...}}

With a beam of k > 1, ``metrics`` also hold ``<name>@k`` (the best of the top k hypotheses)
and examples their ``hypotheses``.

:func:`evaluate` records ``precision``, the weights' precision decoding ran in (fp32, or bf16
with ``eval.precision`` bf16 or auto: :mod:`synthmath.eval.precision`), and adds
``seconds_per_problem``: the wall time of decoding the set with the main
beam and scoring it (the task's selection and refinement included, e.g. symreg's BFGS), over
the number of examples; the extra widths of ``beam_sizes`` are not counted. Machine- and
load-dependent (the evaluation's device and threads): a timing to compare within one machine,
not a result to reproduce.

A metric without a finite value (a median over examples none of which has a finite error) and
an example's non-finite score are ``None`` (JSON null): the files are strict JSON.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from synthmath.core.files import finite_or_none
from synthmath.core.metrics import Metric, at_k
from synthmath.core.raw import raw_len, take
from synthmath.core.task import RawBatch, Task
from synthmath.eval.precision import model_in, resolve_precision
from synthmath.eval.predict import predict_nbest
from synthmath.train.batches import EncodedSet

#: the declaration of ``seconds_per_problem`` (a timing, not a task metric): reports show it
#: as a number, lower is better
SECONDS_PER_PROBLEM_INFO = {
    "aggregate": "mean",
    "higher_is_better": False,
    "format": "number",
    "accuracy": False,
}


def summarize(
    task: Task, raw: RawBatch, nbest: Sequence[Sequence[Sequence[str]]], n_examples: int = 8
) -> dict:
    """Aggregate per-hypothesis scores: overall, per group, and a few examples.

    ``nbest[i]`` is example i's n-best list (best first). Every declared metric is summarised
    over the first hypotheses under its usual name (``acc_tol5``, ``median_rel_error``), and,
    when there are k > 1 hypotheses, over the best of the top k as ``<name>@k`` (``acc@5``:
    any of the top 5 right). ``metric_info`` stores each summary metric's declaration.
    """
    scores = task.score(raw, nbest)
    declared = task.metrics()
    names = [m.name for m in declared]
    if sorted(scores) != sorted(names):
        raise ValueError(
            f"task {task.name!r}: score returned {sorted(scores)}, metrics() declares {names}"
        )
    n = raw_len(raw)
    k = next(iter(scores.values())).shape[1] if scores else 1
    columns = {
        m.summary_name if j == 1 else at_k(m.summary_name, j): (m, m.best_of(scores[m.name], j))
        for j in ((1, k) if k > 1 else (1,))
        for m in declared
    }
    info = {name: m.info() for name, (m, _) in columns.items()}
    summary = {"n": n, "metrics": _aggregate(columns, slice(None)), "by_group": {}}
    for group, labels in task.groups(raw).items():
        labels = np.asarray(labels).astype(str)
        per = {}
        for label in sorted(set(labels), key=_natural_key):
            index = labels == label
            per[label] = {"n": int(index.sum()), **_aggregate(columns, index)}
        summary["by_group"][group] = per
    examples = []
    for i in range(min(n_examples, n)):
        ex = task.to_json(take(raw, slice(i, i + 1)), 0)
        ex["predicted"] = " ".join(nbest[i][0])
        if k > 1:
            ex["hypotheses"] = [" ".join(h) for h in nbest[i]]
        for m in declared:
            value = np.asarray(scores[m.name])[i, 0]
            ex[m.name] = bool(value) if value.dtype == bool else finite_or_none(value)
        examples.append(ex)
    summary["examples"] = examples
    summary["metric_info"] = info
    return summary


def _aggregate(columns: dict[str, tuple[Metric, np.ndarray]], index) -> dict:
    """Each summary metric of ``columns`` (name -> its metric and per-example values, e.g.
    the best of the top k) over the examples ``index`` selects."""
    return {name: m.summarise(values[index]) for name, (m, values) in columns.items()}


def _natural_key(label: str):
    parts = []
    for piece in label.replace("x", " x ").split():
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return parts


def evaluate(
    model: torch.nn.Module,
    task: Task,
    raw: RawBatch,
    *,
    batch_size: int = 256,
    beam_size: int = 1,
    beam_sizes: Sequence[int] = (),
    device: str | torch.device = "cpu",
    progress: bool = False,
    precision: str = "fp32",
) -> dict:
    """Decode and score ``raw``; returns the summary dict (see module docstring).

    Each width b of ``beam_sizes`` decodes the set again with a beam of b (1: greedy) and adds
    :func:`beam_summary`'s ``<metric>_beam<b>`` values (the paper's "beam 10": solved if any of
    the 10 hypotheses of a width-10 beam is right). ``precision`` (``eval.precision``: fp32,
    bf16 or auto, :mod:`synthmath.eval.precision`) is the weights' precision of every decoding
    pass; the summary's ``precision`` says which one ran (fp32 or bf16).
    """
    precision = resolve_precision(precision, device)
    model = model_in(model, precision)
    encoded = EncodedSet(task, raw)

    def decode(width: int):
        return predict_nbest(
            model,
            task,
            encoded,
            batch_size=batch_size,
            beam_size=width,
            device=device,
            progress=progress,
        )

    began = time.perf_counter()
    nbest = decode(beam_size)
    summary = summarize(task, raw, nbest)
    elapsed = time.perf_counter() - began
    summary["seconds_per_problem"] = round(elapsed / max(raw_len(raw), 1), 6)
    summary["metric_info"]["seconds_per_problem"] = SECONDS_PER_PROBLEM_INFO
    summary["precision"] = precision
    for width in beam_sizes:
        add_beam_summary(summary, task, raw, nbest if width == beam_size else decode(width), width)
    return summary


def summarize_answers(
    task: Task,
    raw: RawBatch,
    nbest: Sequence[Sequence[Sequence[str]]],
    seconds: float,
    beam_sizes: Sequence[int] = (),
) -> dict:
    """The summary of answers that did not come from a model (a baseline method's, with the
    wall time ``seconds`` it took in all): the same fields as :func:`evaluate`'s, so reports
    read both alike. Each width of ``beam_sizes`` adds ``<metric>_beam<b>`` over the first b
    hypotheses given (a method with one answer per example: that answer)."""
    summary = summarize(task, raw, nbest)
    summary["seconds_per_problem"] = round(seconds / max(raw_len(raw), 1), 6)
    summary["metric_info"]["seconds_per_problem"] = SECONDS_PER_PROBLEM_INFO
    for width in beam_sizes:
        add_beam_summary(summary, task, raw, nbest, width)
    return summary


def add_beam_summary(
    summary: dict, task: Task, raw: RawBatch, nbest: Sequence[Sequence[Sequence[str]]], width: int
) -> None:
    """Add to ``summary`` (overall and per group) every declared metric over the best of the
    ``width`` hypotheses as ``<name>_beam<width>``, and for the main metric (an accuracy)
    ``rank_<name>_beam<width>``: the mean rank (1 = best) of the first right hypothesis over
    the solved examples."""
    scores = task.score(raw, nbest)
    main = task.declared_metric(task.main_metric())
    suffix = f"_beam{width}"
    columns = {
        m.summary_name + suffix: (m, m.best_of(scores[m.name], width)) for m in task.metrics()
    }
    hits = np.asarray(scores[main.name])
    rank = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0).astype(float)

    def aggregate(index) -> dict:
        out = _aggregate(columns, index)
        if main.accuracy:
            solved = rank[index][rank[index] > 0]
            out[f"rank_{main.summary_name}{suffix}"] = float(solved.mean()) if len(solved) else None
        return out

    summary["metrics"].update(aggregate(slice(None)))
    summary["metric_info"].update({name: m.info() for name, (m, _) in columns.items()})
    if main.accuracy:
        summary["metric_info"][f"rank_{main.summary_name}{suffix}"] = {
            "aggregate": "mean",
            "higher_is_better": False,
            "format": "number",
            "accuracy": False,
        }
    for group, labels in task.groups(raw).items():
        labels = np.asarray(labels).astype(str)
        for label, values in summary["by_group"].get(group, {}).items():
            values.update(aggregate(labels == label))


@torch.inference_mode()
def teacher_forced_loss(model, encoded: EncodedSet, batch_size: int = 256, device="cpu") -> float:
    """Mean per-token cross-entropy of the targets under teacher forcing."""
    from synthmath.train.loss import sequence_loss

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        src, tgt = encoded.batch(np.arange(start, min(start + batch_size, len(encoded))))
        loss, n_tokens = sequence_loss(model, (src.to(device), tgt.to(device)))
        total += float(loss) * n_tokens
        count += n_tokens
    model.train(was_training)
    return total / max(count, 1)
