"""Model-FLOPs accounting of :class:`synthmath.nn.model.Transformer`, and peak FLOP/s of devices.

:func:`forward_flops` counts the matrix multiplications of one forward pass analytically,
2 FLOPs per multiply-add, over each example's *true* (unpadded) lengths. With ``D`` =
d_model, ``F`` = ff_size, ``S`` the source length and ``T`` the decoder input length of an
example (``tgt[:, :-1]``, BOS included), per example:

- encoder layer: q/k/v/o projections ``8 S D^2``, QK^T and attention x V ``4 S^2 D``,
  FFN ``4 S D F``;
- decoder layer: self-attention ``8 T D^2 + 4 T^2 D`` (the full T x T square, causal mask or
  not: what the kernels compute and what ``torch.utils.flop_counter`` counts), cross-attention
  ``4 T D^2`` (q, o over the target) ``+ 4 S D^2`` (k, v over the source) ``+ 4 T S D``,
  FFN ``4 T D F``;
- output layer: ``2 T D V`` with V the target vocabulary (encoder-only: ``2 S D V``, the head
  also projects to the target vocabulary, at every source position);
- relative positions ``rpe_k``/``rpe_kq``: the per-layer products of queries (and, for
  rpe_kq, keys) with the W used rows of the distance table, ``2 L D W`` each, L the layer's
  sequence length and ``W = 2 min(L - 1, reach) + 1``;
- GPSA layers (``attention: gpsa``) count as plain self-attention: their positional scores
  (three numbers per query, key and head) are not matmuls over D.

Not counted (they are not matmuls, or are O(L D) next to O(L D^2)): embedding and position
lookups, the sqrt(D) and 1/sqrt(hs) scalings, biases, residual additions, LayerNorms,
activations, softmax, masking, dropout, rotary rotations, ALiBi and abacus terms, the
rpe gather, and the loss. Padding is not counted either: these are *model* FLOPs of the
tokens that exist, not the hardware FLOPs of a padded batch.

:func:`train_flops` is the usual convention of 3 x forward (the backward pass costs two
matmuls per forward matmul: gradients of the input and of the weight); recomputation
(activation checkpointing) is not counted. Model FLOPs utilisation (MFU) is then
``train_flops / time / peak``, with ``peak`` from :func:`peak_flops` (datasheet dense peaks
of known GPUs) or :func:`measured_matmul_peak` (CPUs, unknown GPUs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from synthmath.nn.config import ModelConfig

Lengths = np.ndarray | Sequence[int]

# dense (no sparsity) peak FLOP/s by device-name substring, first match wins; NVIDIA datasheets
_PEAKS: tuple[tuple[tuple[str, ...], dict[str, float]], ...] = (
    (("H200",), {"bf16": 989e12, "tf32": 494e12, "fp32": 67e12}),  # as the H100 SXM
    (("H100 PCIe",), {"bf16": 756e12, "tf32": 378e12, "fp32": 51e12}),
    (("H100 SXM", "H100 80GB HBM3"), {"bf16": 989e12, "tf32": 494e12, "fp32": 67e12}),
    (("A100",), {"bf16": 312e12, "tf32": 156e12, "fp32": 19.5e12}),
)


def _lengths(values: Lengths, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.int64).reshape(-1)
    if (arr < 0).any():
        raise ValueError(f"{name}: lengths must be >= 0")
    return arr


def _rpe_width(lengths: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """Rows of the distance table a self-attention over L positions uses (RelativePositions)."""
    reach = cfg.max_len - 1 if cfg.max_distance is None else min(cfg.max_distance, cfg.max_len - 1)
    return 2 * np.minimum(np.maximum(lengths - 1, 0), reach) + 1


def _self_attention(L: np.ndarray, cfg: ModelConfig) -> int:
    """One self-attention sublayer over sequences of lengths L: projections, scores, positions."""
    D = cfg.d_model
    total = int((8 * L * D * D).sum() + (4 * L * L * D).sum())  # qkv + o; QK^T + AV
    if cfg.positions in ("rpe_k", "rpe_kq"):
        sides = 2 if cfg.positions == "rpe_kq" else 1  # queries (and keys) x table rows
        total += sides * int((2 * L * D * _rpe_width(L, cfg)).sum())
    return total


def flops_breakdown(
    cfg: ModelConfig, src_lens: Lengths, tgt_lens: Lengths | None = None
) -> dict[str, int]:
    """Forward FLOPs by part: ``encoder``, ``decoder`` (both over all layers) and ``head``.

    ``src_lens``/``tgt_lens``: each example's true source length and decoder input length
    (ignored for ``encoder_only`` models). See the module docstring for what is counted.
    """
    S = _lengths(src_lens, "src_lens")
    D, F, V = cfg.d_model, cfg.ff_size, cfg.tgt_vocab_size
    ffn = 4 * D * F  # per position: two matmuls, D x F and F x D
    encoder = cfg.n_enc_layers * (_self_attention(S, cfg) + ffn * int(S.sum()))
    if cfg.arch == "encoder_only":
        return {"encoder": encoder, "decoder": 0, "head": 2 * D * V * int(S.sum())}
    if tgt_lens is None:
        raise ValueError("an encoder_decoder model needs tgt_lens (decoder input lengths)")
    T = _lengths(tgt_lens, "tgt_lens")
    if T.shape != S.shape:
        raise ValueError(f"src_lens and tgt_lens differ in length: {S.shape[0]} vs {T.shape[0]}")
    cross = int((4 * T * D * D + 4 * S * D * D + 4 * T * S * D).sum())  # q,o; k,v; QK^T + AV
    decoder = cfg.n_dec_layers * (_self_attention(T, cfg) + cross + ffn * int(T.sum()))
    return {"encoder": encoder, "decoder": decoder, "head": 2 * D * V * int(T.sum())}


def forward_flops(cfg: ModelConfig, src_lens: Lengths, tgt_lens: Lengths | None = None) -> int:
    """Model FLOPs of one forward pass of ``Transformer(cfg)`` over a batch of examples with
    true source lengths ``src_lens`` and decoder input lengths ``tgt_lens``."""
    return sum(flops_breakdown(cfg, src_lens, tgt_lens).values())


def train_flops(cfg: ModelConfig, src_lens: Lengths, tgt_lens: Lengths | None = None) -> int:
    """Model FLOPs of one training step (forward + backward = 3 x forward) over the batch."""
    return 3 * forward_flops(cfg, src_lens, tgt_lens)


def decode_flops(cfg: ModelConfig, src_lens: Lengths, steps: int, beams: int = 1) -> int:
    """Model FLOPs of encoding a batch and decoding ``steps`` tokens for ``beams`` hypotheses
    of each example over a KV cache (greedy: ``beams=1``), as :mod:`synthmath.eval.decoding`
    computes them: the encoder over each source, each decoder layer's cross-attention keys and
    values once per source, then per step and hypothesis the new position's projections,
    attention over the ``t`` positions fed so far (``4 t D``) and over the source
    (``4 S D``), FFN and output layer. Absolute and rotary / ALiBi positions only (the
    ``rpe_*`` distance products of a decoding step are not counted here).
    """
    if cfg.arch != "encoder_decoder":
        raise ValueError("decode_flops: an encoder_decoder model decodes")
    if cfg.positions in ("rpe_k", "rpe_kq"):
        raise ValueError(f"decode_flops: positions {cfg.positions!r} are not counted")
    if steps < 0 or beams < 1:
        raise ValueError(f"decode_flops: steps >= 0 and beams >= 1, got {steps}, {beams}")
    S = _lengths(src_lens, "src_lens")
    D, F, V, L = cfg.d_model, cfg.ff_size, cfg.tgt_vocab_size, cfg.n_dec_layers
    encoder = flops_breakdown(cfg, S, np.zeros_like(S))["encoder"]
    cross_kv = L * int((4 * S * D * D).sum())
    fed = steps * (steps + 1) // 2  # sum over steps of the positions attended (BOS included)
    per_layer = steps * (8 * D * D + 4 * D * D + 4 * D * F) + 4 * D * fed
    per_hypothesis = L * (per_layer * len(S) + 4 * D * steps * int(S.sum()))
    head = 2 * D * V * steps * len(S)
    return encoder + cross_kv + beams * (per_hypothesis + head)


def _precision_key(dtype: torch.dtype) -> str:
    if dtype in (torch.bfloat16, torch.float16):
        return "bf16"
    if dtype == torch.float32:
        tf32 = torch.backends.cuda.matmul.allow_tf32 or torch.get_float32_matmul_precision() != (
            "highest"
        )
        return "tf32" if tf32 else "fp32"
    return str(dtype)


def peak_flops(device: torch.device | str, dtype: torch.dtype) -> float | None:
    """Dense peak FLOP/s of a known CUDA GPU for matmuls in ``dtype``; None when unknown.

    bf16 and fp16 share their peak; fp32 matmuls count at the TF32 peak where TF32 is allowed
    (``torch.backends.cuda.matmul.allow_tf32`` or a float32 matmul precision below "highest").
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    for keys, peaks in _PEAKS:
        if any(key in name for key in keys):
            return peaks.get(_precision_key(dtype))
    return None


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing to wait for on a CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measured_matmul_peak(
    device: torch.device | str,
    dtype: torch.dtype,
    n: int = 2048,
    repeats: int = 5,
    min_time: float = 0.05,
) -> float:
    """Best FLOP/s of ``n x n`` matmuls in ``dtype`` on ``device`` (2 n^3 FLOPs each).

    Each of ``repeats`` measurements times enough back-to-back matmuls to last about
    ``min_time`` seconds (CUDA is synchronised before reading the clock).
    """
    device = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    out = torch.empty_like(a)

    def timed(count: int) -> float:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(count):
            torch.mm(a, b, out=out)
        synchronize(device)
        return max(time.perf_counter() - start, 1e-9)

    first = timed(1)  # warm-up (kernel selection, allocator)
    count = max(1, math.ceil(min_time / min(first, timed(1))))
    return max(2.0 * n**3 * count / timed(count) for _ in range(max(1, repeats)))
