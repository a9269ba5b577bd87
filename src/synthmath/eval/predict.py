"""Predicted output tokens of a trained model for every example of a test set.

:func:`predict_nbest` gives the n-best list of every example (the beam, best first; one
hypothesis for greedy and encoder-only decoding), which :meth:`Task.score` scores;
:func:`predict_tokens` the first hypothesis only.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from synthmath.core.task import Task
from synthmath.core.vocab import PAD
from synthmath.train.batches import EncodedSet


def decode_steps(task: Task, encoded: EncodedSet, model: torch.nn.Module) -> int:
    """The most tokens decoded per hypothesis (EOS included).

    Fixed-format answers (:meth:`Task.answer_limit` None): the test set's longest reference
    answer plus EOS and two tokens of slack (``encoded.max_tgt_len`` counts BOS and EOS). Tasks
    whose right answers can be longer than the reference (an equivalent expression) allow their
    own limit, so such an answer is not cut and scored wrong; both within the model's positions
    (BOS and every fed token)."""
    longest = encoded.max_tgt_len + 1
    limit = task.answer_limit()
    positions = getattr(getattr(model, "cfg", None), "max_len", None)
    if limit is None or positions is None:
        return longest
    return max(longest, min(limit + 1, int(positions)))


@torch.inference_mode()
def predict_nbest(
    model: torch.nn.Module,
    task: Task,
    encoded: EncodedSet,
    *,
    batch_size: int = 256,
    beam_size: int = 1,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> list[list[list[str]]]:
    """The n-best predicted token lists of every example of ``encoded`` (in order).

    ``beam_size > 1`` (sequence to sequence): every beam, in rank order; otherwise one
    hypothesis per example.

    Sequence-to-sequence tasks: the decoded tokens up to EOS. Encoder-only tasks
    (``task.model_kind == "encoder_only"``): the argmax tokens at the answer positions
    (``encoded.tgt != PAD``, which the task's layout fixes from the input alone), in position
    order, whatever they are (a predicted PAD is the token ``<pad>``, a wrong digit).
    """
    from synthmath.eval.decoding import beam_decode, greedy_decode, predict_encoder_only

    was_training = model.training
    model.eval()
    vocab = task.tgt_vocab()
    n = len(encoded)
    predictions: list[list[list[str]] | None] = [None] * n
    order = np.argsort(encoded.src_len, kind="stable")  # similar lengths batch together
    max_len = decode_steps(task, encoded, model)
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
                predictions[i] = [[vocab.tokens[t] for t in ids[row][answer[row]].tolist()]]
            continue
        if arch == "encoder_only":
            ids, lengths = predict_encoder_only(model, src)
        elif beam_size > 1:
            ids, lengths = beam_decode(model, src, beam_size=beam_size, max_len=max_len)
        else:
            ids, lengths = greedy_decode(model, src, max_len=max_len)
        ids, lengths = ids.cpu().numpy(), lengths.cpu().numpy()
        if ids.ndim == 2:  # one hypothesis per example
            ids, lengths = ids[:, None], lengths[:, None]
        for row, i in enumerate(index):
            predictions[i] = [
                vocab.to_tokens(ids[row, k, : lengths[row, k]]) for k in range(ids.shape[1])
            ]
    model.train(was_training)
    return predictions  # type: ignore[return-value]


def predict_tokens(
    model: torch.nn.Module, task: Task, encoded: EncodedSet, **kwargs
) -> list[list[str]]:
    """The first (best) hypothesis of every example (arguments: :func:`predict_nbest`)."""
    return [hyps[0] for hyps in predict_nbest(model, task, encoded, **kwargs)]
