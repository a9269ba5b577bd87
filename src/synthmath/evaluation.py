"""Decode a test set with a trained model and score it with the task.

The summary is what the workflow stores in ``eval/<test_set>.json`` and what reports read:

    {"n": 1000, "metrics": {"acc_tol5": 0.97, ...}, "by_group": {"size": {"5x5": {...}}},
     "examples": [{"problem": ..., "answer": ..., "predicted": "...", "acc_tol5": true}, ...]}
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from synthmath.data import EncodedSet, raw_len, take
from synthmath.tasks.base import PAD, RawBatch, Task


@torch.inference_mode()
def predict_tokens(
    model: torch.nn.Module,
    task: Task,
    encoded: EncodedSet,
    *,
    batch_size: int = 256,
    beam_size: int = 1,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[list[str]]:
    """Predicted output token strings for every example of ``encoded`` (in order).

    Sequence-to-sequence tasks: the decoded tokens up to EOS. Encoder-only tasks
    (``task.model_kind == "encoder_only"``): the argmax tokens at the answer positions
    (``encoded.tgt != PAD``, which the task's layout fixes from the input alone), in position
    order, whatever they are (a predicted PAD is the token ``<pad>``, a wrong digit).
    """
    from synthmath.decoding import beam_decode, greedy_decode, predict_encoder_only

    was_training = model.training
    model.eval()
    vocab = task.tgt_vocab()
    n = len(encoded)
    predictions: list[list[str] | None] = [None] * n
    order = np.argsort(encoded.src_len, kind="stable")  # similar lengths batch together
    max_len = encoded.max_tgt_len + 1
    arch = getattr(getattr(model, "cfg", None), "arch", "encoder_decoder")
    aligned = task.model_kind == "encoder_only"
    if aligned and arch != "encoder_only":
        raise ValueError(
            f"task {task.name!r} predicts aligned outputs: needs an encoder_only model"
        )
    batches = range(0, n, batch_size)
    for start in tqdm(batches, desc="decode", disable=not progress, leave=False):
        index = order[start : start + batch_size]
        src, _ = encoded.batch(index)
        src = src.to(device)
        if aligned:
            ids = predict_encoder_only(model, src, aligned=True)[0].cpu().numpy()
            answer = encoded.tgt[index, : ids.shape[1]] != PAD
            for row, i in enumerate(index):
                predictions[i] = [vocab.tokens[t] for t in ids[row][answer[row]].tolist()]
            continue
        if arch == "encoder_only":
            ids, lengths = predict_encoder_only(model, src)
        elif beam_size > 1:
            ids, lengths = beam_decode(model, src, beam_size=beam_size, max_len=max_len)
        else:
            ids, lengths = greedy_decode(model, src, max_len=max_len)
        ids, lengths = ids.cpu().numpy(), lengths.cpu().numpy()
        for row, i in enumerate(index):
            predictions[i] = vocab.to_tokens(ids[row, : lengths[row]])
    model.train(was_training)
    return predictions  # type: ignore[return-value]


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
                out[name] = float(v.mean()) if len(v) else math.nan
            else:
                finite = v[np.isfinite(v)]
                out[f"median_{name}"] = float(np.median(finite)) if len(finite) else math.inf
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
            ex[name] = bool(value) if value.dtype == bool else float(value)
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
    from synthmath.training import sequence_loss

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
