"""The Transformer of "Linear algebra with transformers" (Charton 2021), and variants.

One network in two shapes: ``encoder_decoder`` (sequence to sequence, the paper's models)
and ``encoder_only`` (one output token per input position). Post-norm layers by default,
as in the original Transformer and Charton's code, whose embeddings are also layer-normed;
pre-norm as an option (a final LayerNorm then closes each stack). Attention goes through
``F.scaled_dot_product_attention``, except on CPU for decoding steps and bf16, where two
plain matmuls are several times faster (see :func:`attend`).

Positions are pluggable (see :mod:`synthmath.nn.positions`): absolute variants are added to
the token embeddings, relative ones act inside self-attention through one hook.

Inputs: token ids, or numeric points embedded one encoder position per point
(:mod:`synthmath.nn.embedders`; ``ModelConfig.input_embedder``).

Incremental decoding: :meth:`Transformer.init_cache` computes every layer's cross-attention
keys/values from the encoder output once; :meth:`Transformer.decode_step` feeds new target
tokens and appends their self-attention keys/values to a :class:`KVCache`; beam search
reorders the cache rows with :meth:`KVCache.reorder`.

Initialisation: every linear and embedding weight ~ N(0, 0.02), biases zero, LayerNorms
(1, 0). With sinusoidal positions the token embeddings are multiplied by sqrt(d_model).

``attention: gpsa`` (ConViT): the first ``gpsa_layers`` encoder layers use gated positional
self-attention over the input's 2-D grid (``src_grid``, from the task), locality-initialised
after the blanket initialisation (:mod:`synthmath.nn.gpsa`).
"""

from __future__ import annotations

from torch import Tensor, nn

from synthmath.core.vocab import PAD
from synthmath.nn.attention import CrossAttention, KVCache, SelfAttention
from synthmath.nn.config import ModelConfig
from synthmath.nn.embedders import PointEmbedder
from synthmath.nn.gpsa import GPSA
from synthmath.nn.positions import attention_positions, token_positions
from synthmath.nn.relative_positions import AttentionPositions


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


def _attention_positions(cfg: ModelConfig, encoder: bool = False) -> AttentionPositions | None:
    """A self-attention layer's own relative-position module (None for absolute variants).

    The encoder of a ``point_set`` input has none: its points have no order.
    """
    head_size = cfg.d_model // cfg.n_heads
    name = "none" if encoder and cfg.input_embedder == "point_set" else cfg.positions
    return attention_positions(
        name, cfg.n_heads, head_size, cfg.max_len, max_distance=cfg.max_distance
    )


class EncoderBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, gpsa: bool = False):
        super().__init__()
        if gpsa:  # ConViT: gated positional self-attention over the input's grid
            rows, cols, start = cfg.src_grid
            attn = GPSA(
                cfg.d_model,
                cfg.n_heads,
                (rows, cols),
                start,
                locality_strength=cfg.locality_strength,
            )
        else:
            attn = SelfAttention(cfg, causal=False, pos=_attention_positions(cfg, encoder=True))
        self.attn = Sublayer(cfg, attn)
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
        cross_keep: Tensor | None,
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


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        final_norm = (lambda: nn.LayerNorm(cfg.d_model)) if cfg.norm == "pre" else nn.Identity
        self.points = cfg.input_embedder != "tokens"
        self.src_embed: Embedder | PointEmbedder = (
            PointEmbedder(cfg, cfg.src_vocab_size)
            if self.points
            else Embedder(cfg, cfg.src_vocab_size, cfg.src_digit_ids)
        )
        n_gpsa = 0 if cfg.attention != "gpsa" else (cfg.gpsa_layers or cfg.n_enc_layers)
        self.encoder = nn.ModuleList(
            EncoderBlock(cfg, gpsa=i < n_gpsa) for i in range(cfg.n_enc_layers)
        )
        self.enc_norm = final_norm()
        if cfg.arch == "encoder_decoder":
            self.tgt_embed = Embedder(cfg, cfg.tgt_vocab_size, cfg.tgt_digit_ids)
            self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_dec_layers))
            self.dec_norm = final_norm()
        self.head = nn.Linear(cfg.d_model, cfg.tgt_vocab_size)  # target vocabulary only
        self.apply(self._init_weights)
        for module in self.modules():
            if isinstance(module, GPSA):
                module.locality_init()  # after the blanket N(0, 0.02)

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

        Points inputs (``cfg.input_embedder`` points / point_set): src (B, P, point_tokens),
        one encoder position per point; a padding point is all PAD.

        ``pos_state``: the token-side positions' per-example state (abacus offsets), drawn by
        :meth:`forward` and shared with :meth:`decode`; None draws its own.
        """
        src_pad_mask = PointEmbedder.padding(src) if self.points else src == PAD
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
