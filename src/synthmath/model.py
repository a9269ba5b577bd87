"""The Transformer of "Linear algebra with transformers" (Charton 2021), and variants.

One network in two shapes: ``encoder_decoder`` (sequence to sequence, the paper's models)
and ``encoder_only`` (one output token per input position). Post-norm layers by default,
as in the original Transformer and Charton's code, whose embeddings are also layer-normed;
pre-norm as an option (a final LayerNorm then closes each stack). Attention goes through
``F.scaled_dot_product_attention``, except on CPU for decoding steps and bf16, where two
plain matmuls are several times faster (see :func:`attend`).

Positions are pluggable (see :mod:`synthmath.positions`): absolute variants are added to
the token embeddings, relative ones act inside self-attention through one hook.

Incremental decoding: :meth:`Transformer.init_cache` computes every layer's cross-attention
keys/values from the encoder output once; :meth:`Transformer.decode_step` feeds new target
tokens and appends their self-attention keys/values to a :class:`KVCache`; beam search
reorders the cache rows with :meth:`KVCache.reorder`.

Initialisation: every linear and embedding weight ~ N(0, 0.02), biases zero, LayerNorms
(1, 0). With sinusoidal positions the token embeddings are multiplied by sqrt(d_model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthmath.positions import (
    POSITIONS,
    AttentionPositions,
    attention_positions,
    token_positions,
)
from synthmath.tasks.base import PAD, ConfigError

ARCHS = ("encoder_decoder", "encoder_only")
NORMS = ("post", "pre")
ACTIVATIONS = ("relu", "gelu")


@dataclass
class ModelConfig:
    """Architecture hyper-parameters; :meth:`validate` checks them (the model calls it)."""

    src_vocab_size: int
    tgt_vocab_size: int
    arch: str = "encoder_decoder"  # or "encoder_only"
    n_enc_layers: int = 1
    n_dec_layers: int = 1
    d_model: int = 256
    n_heads: int = 8
    d_ff: int | None = None  # default 4 * d_model
    dropout: float = 0.0
    positions: str = "learned"  # see synthmath.positions.POSITIONS
    norm: str = "post"  # post (the paper) | pre
    activation: str = "relu"  # relu | gelu
    max_len: int = 1024  # max positions (src and tgt each)
    max_distance: int | None = None  # rpe_k/rpe_kq: clip distances to +-max_distance
    abacus_offset: int = 0  # abacus: largest random index offset in training
    # abacus: ids of the digit tokens (filled from the task's digit_token_ids(), not the config)
    src_digit_ids: list[int] | None = None
    tgt_digit_ids: list[int] | None = None

    @property
    def ff_size(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    def validate(self, where: str = "") -> None:
        """Raise :class:`ConfigError` (a ValueError) naming the field and what is allowed."""
        prefix = f"{where}." if where else ""

        def fail(key: str, problem: str) -> None:
            raise ConfigError(f"{prefix}{key}: {problem} (got {getattr(self, key)!r})")

        def positive_int(key: str, minimum: int = 1) -> None:
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                fail(key, f"expected an integer >= {minimum}")

        for key, allowed in (
            ("arch", ARCHS),
            ("positions", POSITIONS),
            ("norm", NORMS),
            ("activation", ACTIVATIONS),
        ):
            if getattr(self, key) not in allowed:
                fail(key, f"allowed: {', '.join(allowed)}")
        positive_int("src_vocab_size", 3)  # PAD, BOS, EOS and at least nothing else
        positive_int("tgt_vocab_size", 3)
        positive_int("n_enc_layers")
        positive_int("n_dec_layers", 1 if self.arch == "encoder_decoder" else 0)
        positive_int("d_model")
        positive_int("n_heads")
        if self.d_model % self.n_heads:
            fail("n_heads", f"must divide d_model={self.d_model}")
        if self.d_ff is not None:
            positive_int("d_ff")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            fail("dropout", "expected a number in [0, 1)")
        positive_int("max_len")
        if self.max_distance is not None:
            positive_int("max_distance")
        positive_int("abacus_offset", 0)
        if self.positions == "rotary" and (self.d_model // self.n_heads) % 2:
            fail("n_heads", "rotary positions need an even head size d_model/n_heads")
        sides = [("src_digit_ids", self.src_vocab_size)]
        if self.arch == "encoder_decoder":
            sides.append(("tgt_digit_ids", self.tgt_vocab_size))
        for key, vocab_size in sides:
            ids = getattr(self, key)
            if ids is None and self.positions == "abacus":
                fail(key, "abacus positions need the digit token ids (task.digit_token_ids())")
            if ids is not None and (
                not isinstance(ids, list | tuple)
                or not ids
                or not all(isinstance(i, int) and 3 <= i < vocab_size for i in ids)
            ):
                fail(key, f"expected a non-empty list of token ids in 3..{vocab_size - 1}")


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

    def forward(self, x: Tensor, k: Tensor, v: Tensor, keep: Tensor) -> Tensor:
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
        self.cross_keep = cross_keep  # (B, 1, 1, S) bool, True = attend
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


# ---- blocks -------------------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.ff_size)
        self.act = nn.ReLU() if cfg.activation == "relu" else nn.GELU()
        self.proj = nn.Linear(cfg.ff_size, cfg.d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.act(self.fc(x)))


class Sublayer(nn.Module):
    """A residual connection around ``fn`` with its LayerNorm before (pre) or after (post)."""

    def __init__(self, cfg: ModelConfig, fn: nn.Module):
        super().__init__()
        self.fn, self.ln, self.drop = fn, nn.LayerNorm(cfg.d_model), nn.Dropout(cfg.dropout)
        self.pre = cfg.norm == "pre"

    def forward(self, x: Tensor, *args, **kwargs) -> Tensor:
        if self.pre:
            return x + self.drop(self.fn(self.ln(x), *args, **kwargs))
        return self.ln(x + self.drop(self.fn(x, *args, **kwargs)))


def _attention_positions(cfg: ModelConfig) -> AttentionPositions | None:
    """A self-attention layer's own relative-position module (None for absolute variants)."""
    head_size = cfg.d_model // cfg.n_heads
    return attention_positions(
        cfg.positions, cfg.n_heads, head_size, cfg.max_len, max_distance=cfg.max_distance
    )


class EncoderBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        pos = _attention_positions(cfg)
        self.attn = Sublayer(cfg, SelfAttention(cfg, causal=False, pos=pos))
        self.mlp = Sublayer(cfg, MLP(cfg))

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        return self.mlp(self.attn(x, keep))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        pos = _attention_positions(cfg)
        self.self_attn = Sublayer(cfg, SelfAttention(cfg, causal=True, pos=pos))
        self.cross_attn = Sublayer(cfg, CrossAttention(cfg))
        self.mlp = Sublayer(cfg, MLP(cfg))

    def forward(
        self,
        x: Tensor,
        cross_k: Tensor,
        cross_v: Tensor,
        cross_keep: Tensor,
        cache: KVCache | None = None,
        layer_idx: int = 0,
    ) -> Tensor:
        x = self.self_attn(x, cache=cache, layer_idx=layer_idx)
        x = self.cross_attn(x, cross_k, cross_v, cross_keep)
        return self.mlp(x)


class Embedder(nn.Module):
    """Token embeddings combined with (absolute) positions; layer-normed in post-norm models."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, digit_ids: list[int] | None = None):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, cfg.d_model)
        # absolute positions and Abacus per-digit ones plug in here
        self.pos = token_positions(
            cfg.positions,
            cfg.max_len,
            cfg.d_model,
            vocab_size=vocab_size,
            digit_ids=digit_ids,
            abacus_offset=cfg.abacus_offset,
        )
        # post-norm: the first sublayer's input is otherwise never normalised (Charton/XLM do this)
        self.ln = nn.LayerNorm(cfg.d_model) if cfg.norm == "post" else nn.Identity()
        self.drop = nn.Dropout(cfg.dropout)
        self.max_len = cfg.max_len

    def _check_length(self, ids: Tensor, start: int) -> None:
        if start + ids.size(1) > self.max_len:
            raise ValueError(
                f"sequence of {start + ids.size(1)} positions exceeds model.max_len="
                f"{self.max_len} (positions are defined up to max_len; raise it to go further)"
            )

    def forward(self, ids: Tensor, start: int = 0, state: Tensor | None = None) -> Tensor:
        """ids (B, T) at positions start.. -> (B, T, D); ``state``: see TokenPositions."""
        self._check_length(ids, start)
        return self.drop(self.ln(self.pos(self.tok(ids), ids, start, state)))  # (B, T, D)

    def step(self, ids: Tensor, start: int, state: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Incremental decoding: embed tokens at ``start..`` with the positions' carried state."""
        self._check_length(ids, start)
        x, state = self.pos.step(self.tok(ids), ids, start, state)
        return self.drop(self.ln(x)), state


# ---- the model ----------------------------------------------------------------------------


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        final_norm = (lambda: nn.LayerNorm(cfg.d_model)) if cfg.norm == "pre" else nn.Identity
        self.src_embed = Embedder(cfg, cfg.src_vocab_size, cfg.src_digit_ids)
        self.encoder = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_enc_layers))
        self.enc_norm = final_norm()
        if cfg.arch == "encoder_decoder":
            self.tgt_embed = Embedder(cfg, cfg.tgt_vocab_size, cfg.tgt_digit_ids)
            self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_dec_layers))
            self.dec_norm = final_norm()
        self.head = nn.Linear(cfg.d_model, cfg.tgt_vocab_size)  # target vocabulary only
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def _keep(src_pad_mask: Tensor) -> Tensor:
        """(B, S) True at PAD -> (B, 1, 1, S) True where attention is allowed.

        A row of PAD only (an empty source) attends everywhere, so that no softmax row is
        fully masked; its outputs are meaningless but finite.
        """
        keep = ~src_pad_mask
        keep = keep | ~keep.any(dim=1, keepdim=True)
        return keep[:, None, None, :]

    def encode(self, src: Tensor, pos_state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """src (B, S) -> memory (B, S, D), src_pad_mask (B, S) True at PAD.

        ``pos_state``: the token-side positions' per-example state (abacus offsets), drawn by
        :meth:`forward` and shared with :meth:`decode`; None draws its own.
        """
        src_pad_mask = src == PAD
        keep = self._keep(src_pad_mask)
        x = self.src_embed(src, state=pos_state)
        for block in self.encoder:
            x = block(x, keep)
        return self.enc_norm(x), src_pad_mask

    def decode(
        self,
        tgt_in: Tensor,
        memory: Tensor,
        src_pad_mask: Tensor,
        pos_state: Tensor | None = None,
    ) -> Tensor:
        """Teacher-forced decoder: tgt_in (B, T) starting with BOS -> logits (B, T, V)."""
        keep = self._keep(src_pad_mask)
        x = self.tgt_embed(tgt_in, state=pos_state)
        for block in self.decoder:
            x = block(x, *block.cross_attn.fn.memory_kv(memory), keep)
        return self.head(self.dec_norm(x))

    def forward(self, src: Tensor, tgt_in: Tensor | None = None) -> Tensor:
        """encoder_decoder: logits (B, T, V) for tgt_in; encoder_only: logits (B, S, V)."""
        if self.cfg.arch == "encoder_decoder" and tgt_in is None:
            raise ValueError("an encoder_decoder model needs tgt_in")
        # one state per example for both sides (abacus: the same random offset)
        pos_state = self.src_embed.pos.initial_state(src.size(0), src.device)
        memory, src_pad_mask = self.encode(src, pos_state)
        if self.cfg.arch == "encoder_only":
            return self.head(memory)
        return self.decode(tgt_in, memory, src_pad_mask, pos_state)

    # ---- incremental decoding ---------------------------------------------------------------
    def init_cache(
        self, memory: Tensor, src_pad_mask: Tensor, max_len: int, beams: int = 1
    ) -> KVCache:
        """A cache for ``beams`` decoder rows per source (rows b*beams .. b*beams+beams-1).

        ``max_len`` counts decoder input positions (BOS included).
        """
        if max_len > self.cfg.max_len:
            raise ValueError(
                f"max_len={max_len} decoder positions exceeds the model's max_len={self.cfg.max_len}"
            )
        cross_kv = [block.cross_attn.fn.memory_kv(memory) for block in self.decoder]
        return KVCache(cross_kv, self._keep(src_pad_mask), memory.size(0) * beams, max_len)

    def decode_step(self, tgt: Tensor, cache: KVCache) -> Tensor:
        """Feed the next target tokens (rows, T) (usually T=1); logits (rows, T, V)."""
        if cache.length + tgt.size(1) > cache.max_len:
            raise ValueError(
                f"the cache holds {cache.max_len} positions; cannot add {tgt.size(1)} to {cache.length}"
            )
        x, cache.token_state = self.tgt_embed.step(tgt, cache.length, cache.pending_token_state())
        for i, block in enumerate(self.decoder):
            x = block(x, *cache.cross_kv[i], cache.cross_keep, cache=cache, layer_idx=i)
        cache.advance(tgt.size(1))
        return self.head(self.dec_norm(x))
