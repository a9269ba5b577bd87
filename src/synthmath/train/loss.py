"""The training loss of sequence-to-sequence and encoder-only models."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synthmath.core.vocab import PAD
from synthmath.train.checkpoint import (
    unwrap_model,
)

Batch = tuple[torch.Tensor, torch.Tensor]


def sequence_loss(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
    """Mean token cross-entropy over non-PAD targets and the number of those targets.

    ``model.cfg.arch == "encoder_decoder"``: predict ``tgt[:, 1:]`` from ``model(src,
    tgt[:, :-1])`` (teacher forcing; tgt is ``BOS ... EOS`` then PAD). ``"encoder_only"``:
    ``model(src)`` gives logits at every source position, scored against the aligned ``tgt``
    (PAD where there is no target).
    """
    src, tgt = batch
    arch = getattr(getattr(unwrap_model(model), "cfg", None), "arch", None)
    if arch == "encoder_decoder":
        logits, targets = model(src, tgt[:, :-1]), tgt[:, 1:]  # (B, T-1, V), (B, T-1)
    elif arch == "encoder_only":
        logits, targets = model(src), tgt  # (B, S, V), (B, S)
    else:
        raise ValueError(f"model.cfg.arch: expected encoder_decoder or encoder_only, got {arch!r}")
    mask = targets != PAD
    loss_sum = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        targets.reshape(-1),
        ignore_index=PAD,
        reduction="sum",
    )
    n_tokens = mask.sum()
    return loss_sum / n_tokens.clamp(min=1), int(n_tokens)
