"""Decode a test set with a trained model and score it with the task.

The summary is what the workflow stores in ``eval/<test_set>.json`` and what reports read:

    {"n": 1000, "metrics": {"acc_tol5": 0.97, ...}, "by_group": {"size": {"5x5": {...}}},
     "examples": [{"problem": ..., "answer": ..., "predicted": "...", "acc_tol5": true}, ...]}

A metric without a finite value (a median over examples none of which has a finite error) and
an example's non-finite score are ``None`` (JSON null): the files are strict JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from synthmath.core.files import finite_or_none
from synthmath.core.raw import raw_len, take
from synthmath.core.task import RawBatch, Task
from synthmath.eval.predict import predict_tokens
from synthmath.train.batches import EncodedSet


def summarize(
    task: Task, raw: RawBatch, predictions: Sequence[Sequence[str]], n_examples: int = 8
) -> dict:
    """Aggregate per-example scores: overall means, per-group means and a few examples."""
    scores = task.score(raw, predictions)
    n = raw_len(raw)

    def means(index) -> dict[str, float]:
        out = {}
        for name, values in scores.items():
            v = np.asarray(values)[index]
            if v.dtype == bool or name.endswith("_acc") or name.startswith("frac_"):
                # accuracies and fractions (e.g. of components within tolerance): mean
                out[name] = float(v.mean()) if len(v) else None
            else:
                # None (JSON null) when no example has a finite value: strict JSON has no inf
                finite = v[np.isfinite(v)]
                out[f"median_{name}"] = float(np.median(finite)) if len(finite) else None
        return out

    summary = {"n": n, "metrics": means(slice(None)), "by_group": {}}
    for group, labels in task.groups(raw).items():
        labels = np.asarray(labels).astype(str)
        per = {}
        for label in sorted(set(labels), key=_natural_key):
            index = labels == label
            per[label] = {"n": int(index.sum()), **means(index)}
        summary["by_group"][group] = per
    examples = []
    for i in range(min(n_examples, n)):
        ex = task.to_json(take(raw, slice(i, i + 1)), 0)
        ex["predicted"] = " ".join(predictions[i])
        for name, values in scores.items():
            value = np.asarray(values)[i]
            ex[name] = bool(value) if value.dtype == bool else finite_or_none(value)
        examples.append(ex)
    summary["examples"] = examples
    return summary


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
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict:
    """Decode and score ``raw``; returns the summary dict (see module docstring)."""
    encoded = EncodedSet(task, raw)
    preds = predict_tokens(
        model,
        task,
        encoded,
        batch_size=batch_size,
        beam_size=beam_size,
        device=device,
        progress=progress,
    )
    return summarize(task, raw, preds)


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
