"""Attention of :mod:`synthmath.nn.model`: self- and cross-attention sublayers, the attention
kernel choice (:func:`attend`) and the decoder's key/value cache (:class:`KVCache`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthmath.nn.config import ModelConfig
from synthmath.nn.relative_positions import AttentionPositions

# ---- attention ----------------------------------------------------------------------------


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    keep: Tensor | None = None,
    causal: bool = False,
    bias: Tensor | None = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """Attention of (B, H, Tq, hs) queries over (B, H, Tk, hs) keys/values.

    ``keep`` is a boolean mask broadcastable to (B, H, Tq, Tk), True where attention is
    allowed; callers guarantee every query row keeps at least one key (no NaN). ``causal``
    aligns the last query with the last key (queries are the newest Tq positions).
    """
    Tq, Tk = q.size(-2), k.size(-2)
    if causal and Tq > 1:
        if keep is None and bias is None and Tq == Tk and not _use_matmul(q, Tk, dropout_p):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
        tri = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(diagonal=Tk - Tq)
        keep = tri if keep is None else keep & tri
    mask = keep
    if bias is not None:  # additive relative-position term; masked entries get -inf
        bias = bias.to(q.dtype)
        mask = bias if keep is None else torch.where(keep, bias, float("-inf"))
    if _use_matmul(q, Tk, dropout_p):
        return _attend_matmul(q, k, v, mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


def _use_matmul(q: Tensor, Tk: int, dropout_p: float) -> bool:
    """Whether to bypass SDPA: on CPU only, where its kernels are slow for decoding steps
    (a few queries) and for bf16 (measured 1.5-4x slower than two matmuls, torch 2.13)."""
    if q.device.type != "cpu" or dropout_p > 0.0:
        return False
    Tq = q.size(-2)
    return Tq <= 8 or (q.dtype != torch.float32 and Tq * Tk <= 65536)


def _attend_matmul(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """softmax(q k^T / sqrt(hs) + mask) v; same contract as SDPA (softmax accumulates in fp32)."""
    scores = torch.matmul(q * (q.size(-1) ** -0.5), k.transpose(-2, -1))  # (B, H, Tq, Tk)
    if mask is not None and mask.dtype == torch.bool:
        scores.masked_fill_(~mask, float("-inf"))  # in place: matmul's backward needs q, k only
    elif mask is not None:
        scores = scores + mask
    return torch.matmul(scores.softmax(dim=-1), v)  # (B, H, Tq, hs)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection and an optional KV cache."""

    def __init__(self, cfg: ModelConfig, causal: bool, pos: AttentionPositions | None = None):
        super().__init__()
        self.n_heads, self.causal, self.dropout = cfg.n_heads, causal, cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.pos = pos  # relative positions (rotary, Shaw-style RPE) plug in here

    def forward(
        self,
        x: Tensor,
        keep: Tensor | None = None,
        cache: KVCache | None = None,
        layer_idx: int = 0,
    ) -> Tensor:
        B, T, D = x.shape
        H = self.n_heads
        qkv = self.qkv(x).view(B, T, 3, H, D // H)
        q, k, v = qkv.transpose(1, 3).unbind(2)  # each (B, H, T, hs)
        start = 0 if cache is None else cache.length
        bias = None
        if self.pos is not None:
            q, k = self.pos.rotate(q, k, start)
        if cache is not None:
            k, v = cache.append(layer_idx, k, v)  # (B, H, start + T, hs)
        if self.pos is not None:
            bias = self.pos.bias(q, k, start)
        dropout_p = self.dropout if self.training else 0.0
        y = attend(q, k, v, keep, self.causal, bias, dropout_p)  # (B, H, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class CrossAttention(nn.Module):
    """Decoder-to-encoder attention; keys/values come from the encoder output.

    The queries may hold ``g`` rows per encoder row (beam search: rows b*g .. b*g+g-1 share
    source b); they are folded into the query-length axis so the memory is never repeated.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        B, S, D = memory.shape
        kv = self.kv(memory).view(B, S, 2, self.n_heads, D // self.n_heads)
        k, v = kv.permute(2, 0, 3, 1, 4).contiguous().unbind(0)  # each (B, H, S, hs)
        return k, v  # contiguous: decoding steps reuse them without copies

    def forward(self, x: Tensor, k: Tensor, v: Tensor, keep: Tensor | None) -> Tensor:
        rows, T, D = x.shape
        B = k.size(0)
        g = rows // B  # decoder rows per source (beams)
        q = (
            self.q(x).view(B, g * T, self.n_heads, D // self.n_heads).transpose(1, 2)
        )  # (B, H, g*T, hs)
        dropout_p = self.dropout if self.training else 0.0
        y = attend(q, k, v, keep, dropout_p=dropout_p)  # (B, H, g*T, hs)
        return self.proj(y.transpose(1, 2).reshape(rows, T, D))


class KVCache:
    """Decoder state for incremental decoding.

    Self-attention keys/values of the positions fed so far are kept as contiguous
    (rows, H, length, hs) tensors, since batched matmuls over strided views of a longer
    buffer run several times slower on CPU. Each step writes prefix and new position into
    the other of two preallocated flat buffers (one pass; a pending beam reorder is applied
    in the same pass). Cross-attention keys/values are computed once from the memory.
    """

    def __init__(
        self, cross_kv: list[tuple[Tensor, Tensor]], cross_keep: Tensor, rows: int, max_len: int
    ):
        self.cross_kv = cross_kv  # per layer, (B, H, S, hs) each
        # (B, 1, 1, S) bool, True = attend; None when no source position is padding (no mask)
        self.cross_keep = None if bool(cross_keep.all()) else cross_keep
        self.rows, self.max_len, self.length = rows, max_len, 0
        n_layers = len(cross_kv)
        self.kv: list[list[Tensor | None]] = [[None, None] for _ in range(n_layers)]  # current k, v
        self.flat: list[list[tuple[Tensor, Tensor] | None]] = [
            [None, None] for _ in range(n_layers)
        ]
        self.index: Tensor | None = None  # pending reorder of the rows
        self.token_state: Tensor | None = None  # token-side positions' state (abacus), per row

    def append(self, layer_idx: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add new (rows, H, T, hs) keys/values; return all of them so far (rows, H, length+T, hs)."""
        n, T = self.length, k.size(2)
        for j, new in enumerate((k, v)):
            if self.flat[layer_idx][j] is None:  # two buffers: the current tensor lives in one
                size = self.rows * new.size(1) * self.max_len * new.size(3)
                self.flat[layer_idx][j] = (new.new_empty(size), new.new_empty(size))
            old = self.kv[layer_idx][j]
            a, b = self.flat[layer_idx][j]
            store = b if old is not None and old.data_ptr() == a.data_ptr() else a
            shape = (self.rows, new.size(1), n + T, new.size(3))
            cur = store[: math.prod(shape)].view(shape)
            if n and self.index is not None:
                torch.index_select(old, 0, self.index, out=cur[:, :, :n])
            elif n:
                cur[:, :, :n] = old
            cur[:, :, n:] = new
            self.kv[layer_idx][j] = cur
        return self.kv[layer_idx][0], self.kv[layer_idx][1]

    def pending_token_state(self) -> Tensor | None:
        """The token-side positions' state with the pending beam reorder applied."""
        if self.token_state is None or self.index is None:
            return self.token_state
        return self.token_state.index_select(0, self.index)

    def advance(self, n_new: int) -> None:
        """Close a step: every layer has appended ``n_new`` positions."""
        self.length += n_new
        self.index = None

    def reorder(self, index: Tensor) -> None:
        """Make row i continue from row index[i] (beam search); applied at the next append.

        Only the self-attention cache moves: ``index`` must keep each row among the rows of
        its own source example, whose cross-attention keys/values are shared.
        """
        self.index = index if self.index is None else self.index.index_select(0, index)
