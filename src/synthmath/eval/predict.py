"""Predicted output tokens of a trained model for every example of a test set."""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from synthmath.core.task import Task
from synthmath.core.vocab import PAD
from synthmath.train.batches import EncodedSet


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
    from synthmath.eval.decoding import beam_decode, greedy_decode, predict_encoder_only

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
