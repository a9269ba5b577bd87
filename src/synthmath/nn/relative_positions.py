"""Relative position variants: modules behind the attention-side hook of the Transformer.

One module per self-attention layer (see :mod:`synthmath.nn.positions` for the hooks). Queries
and keys are ``(B, H, T, hs)``; query ``r`` sits at absolute position ``q_start + r`` and key
``j`` at position ``j`` (the cached decoder feeds queries ``q_start..`` against all keys so far).
With ``d = j - i`` the distance from query position i to key position j:

- ``rpe_k`` (Shaw et al. 2018, relative embeddings on the key side):
  ``score_ij += q_i . a[d] / sqrt(hs)``.
- ``rpe_kq`` (after Huang et al. 2020, embeddings on the key and the query side):
  ``score_ij += (q_i . a[d] + k_j . a[d]) / sqrt(hs)``, one table ``a`` for both terms.
- ``alibi`` (Press et al. 2022): ``score_ij += -m_h |d|``, a fixed slope per head.
- ``rotary`` (Su et al. 2021): queries and keys rotated by angles proportional to their
  positions, so q.k depends on d only.

The tables ``a`` are learned per layer and shared by the heads (Shaw et al.'s choice);
distances cover -(max_len - 1) .. max_len - 1 (no clipping), or -K .. K with
``max_distance=K`` (larger distances use the entry of +-K).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class AttentionPositions(nn.Module):
    """Base of the attention-side hook (relative positions); one instance per layer.

    q, k are ``(B, H, T, hs)``; ``q_start`` is the position of the first query (keys always
    start at 0). The default is the identity, so a subclass overrides one method or both.
    """

    def rotate(self, q: Tensor, k: Tensor, q_start: int) -> tuple[Tensor, Tensor]:
        """Transform the new queries/keys (both at positions q_start..) before caching."""
        return q, k

    def bias(self, q: Tensor, k: Tensor, q_start: int) -> Tensor | None:
        """Additive term on the scaled scores q.k/sqrt(hs): (B|1, H|1, Tq, Tk) or None."""
        return None


def _check_span(q_end: int, n_keys: int, max_len: int) -> None:
    if q_end > max_len or n_keys > max_len:
        raise ValueError(
            f"attention over {max(q_end, n_keys)} positions exceeds model.max_len={max_len}"
        )


def _distances(q_start: int, n_queries: int, n_keys: int, device: torch.device) -> Tensor:
    """(Tq, Tk) key position minus query position."""
    q_pos = torch.arange(q_start, q_start + n_queries, device=device)
    return torch.arange(n_keys, device=device)[None, :] - q_pos[:, None]


class RelativePositions(AttentionPositions):
    """Learned relative embeddings: ``rpe_k`` (Shaw), or ``rpe_kq`` with ``query_side=True``.

    Only the table rows of the distances that occur are used: ``q @ a^T`` gives one score per
    (query, distance), (B, H, Tq, W) with W <= Tq + Tk - 1, and a gather along the last axis
    picks each (query, key) pair's distance; the key-side term does the same from ``k @ a^T``
    (or, for a few queries over many keys, as in cached decoding, multiplies each key by the
    rows of its pairs directly: O(Tq Tk) instead of O(Tk^2)). The cost is two small matmuls
    and a gather next to the q.k matmul; the (B, H, Tq, Tk) result goes to attention as a
    float mask.
    """

    def __init__(
        self,
        head_size: int,
        max_len: int,
        max_distance: int | None = None,
        query_side: bool = False,
    ):
        super().__init__()
        if max_distance is not None and max_distance < 1:
            raise ValueError(f"max_distance: expected an integer >= 1, got {max_distance!r}")
        self.reach = max_len - 1 if max_distance is None else min(max_distance, max_len - 1)
        self.max_len, self.query_side = max_len, query_side
        # row reach + d holds a[d]; an Embedding so that the model's initialisation covers it
        self.table = nn.Embedding(2 * self.reach + 1, head_size)

    def bias(self, q: Tensor, k: Tensor, q_start: int) -> Tensor:
        B, H, Tq, hs = q.shape
        Tk = k.size(-2)
        _check_span(q_start + Tq, Tk, self.max_len)
        reach = self.reach
        lowest = max(-(q_start + Tq - 1), -reach)  # smallest distance that occurs (clipped)
        highest = min(Tk - 1 - q_start, reach)
        rel = _distances(q_start, Tq, Tk, q.device).clamp(-reach, reach) - lowest  # (Tq, Tk)
        table = self.table.weight[lowest + reach : highest + reach + 1]  # (W, hs)
        scale = hs**-0.5
        by_distance = torch.matmul(q * scale, table.t().to(q.dtype))  # (B, H, Tq, W)
        bias = by_distance.gather(-1, rel.expand(B, H, Tq, Tk))  # (B, H, Tq, Tk)
        if self.query_side and 4 * Tq <= Tk:  # decoding steps: a[j - i] per pair is cheaper
            pair_table = table.to(k.dtype)[rel]  # (Tq, Tk, hs)
            bias = bias + torch.einsum("bhjd,ijd->bhij", k * scale, pair_table)
        elif self.query_side:
            key_by_distance = torch.matmul(k * scale, table.t().to(k.dtype))  # (B, H, Tk, W)
            key_term = key_by_distance.gather(-1, rel.t().expand(B, H, Tk, Tq))  # (B, H, Tk, Tq)
            bias = bias + key_term.transpose(-2, -1)
        return bias


def rotary_tables(head_size: int, max_len: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos and sin of the rotary angles, (max_len, head_size // 2) each.

    Pair p of a head (coordinates p and p + hs/2) turns by ``pos * base ** (-2p / hs)``.
    """
    inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float64) / head_size)
    angles = torch.arange(max_len, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each pair (x[..., p], x[..., p + hs/2]) of x (..., T, hs) by its (T, hs/2) angle."""
    first, second = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class RotaryPositions(AttentionPositions):
    """Rotary position embeddings (RoPE, Su et al. 2021) on every head, full head size.

    Queries and keys are rotated at their absolute positions before the keys are cached, so
    a cached key keeps its rotation; q_i . k_j then depends on j - i only. No parameters.
    """

    def __init__(self, head_size: int, max_len: int, base: float = 10000.0):
        super().__init__()
        if head_size % 2:
            raise ValueError(f"rotary positions need an even head size, got {head_size}")
        cos, sin = rotary_tables(head_size, max_len, base)
        self.register_buffer("cos", cos, persistent=False)  # deterministic: not in state_dict
        self.register_buffer("sin", sin, persistent=False)
        self.max_len = max_len

    def rotate(self, q: Tensor, k: Tensor, q_start: int) -> tuple[Tensor, Tensor]:
        T = q.size(-2)
        _check_span(q_start + T, 0, self.max_len)
        cos, sin = self.cos[q_start : q_start + T], self.sin[q_start : q_start + T]
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)


def alibi_slopes(n_heads: int) -> Tensor:
    """Head slopes of ALiBi: 2^(-8/n), 2^(-16/n), ... for n a power of two; otherwise those of
    the power of two below, then every other slope of the power of two above (Press et al.)."""

    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (h + 1) / n) for h in range(n)]

    below = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = geometric(below)
    if below < n_heads:
        slopes += geometric(2 * below)[0::2][: n_heads - below]
    return torch.tensor(slopes)


class AlibiPositions(AttentionPositions):
    """ALiBi: a fixed penalty ``-m_h |j - i|`` per head on the scores. No parameters.

    Symmetric in the encoder (keys on both sides); in the causal decoder only j <= i occur,
    which is the original causal ALiBi.
    """

    def __init__(self, n_heads: int, max_len: int):
        super().__init__()
        self.register_buffer("slopes", alibi_slopes(n_heads)[:, None, None], persistent=False)
        self.max_len = max_len

    def bias(self, q: Tensor, k: Tensor, q_start: int) -> Tensor:
        Tq, Tk = q.size(-2), k.size(-2)
        _check_span(q_start + Tq, Tk, self.max_len)
        distance = _distances(q_start, Tq, Tk, q.device).abs().to(q.dtype)  # (Tq, Tk)
        return (-self.slopes.to(q.dtype) * distance)[None]  # (1, H, Tq, Tk)
