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

from dataclasses import dataclass

from torch import Tensor, nn

from synthmath.attention import (  # noqa: F401 (attend, _attend_matmul: re-exported)
    CrossAttention,
    KVCache,
    SelfAttention,
    _attend_matmul,
    attend,
)
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
