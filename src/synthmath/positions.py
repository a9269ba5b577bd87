"""Position encodings of the Transformer, as small modules behind two hooks.

Token-side hook (:class:`TokenPositions`): combines token embeddings with absolute
positions before the first layer. Implemented: ``learned`` (an ``nn.Embedding`` table),
``sinusoidal`` (a fixed buffer, as in Vaswani et al.) and ``none``. Abacus-style per-digit
positions plug in here: they read the token ids to compute each token's index inside its
number (and keep that running index in the decoder cache when decoding step by step).

Attention-side hook (:class:`AttentionPositions`): acts inside self-attention, once per
layer. ``rotate`` transforms the new queries and keys before the keys enter the KV cache
(rotary embeddings); ``bias`` returns an additive term on the attention scores computed
from the queries and all keys (Shaw-style relative embeddings on keys, relative embeddings
on keys and queries, ALiBi). Nothing uses it yet: every current variant returns ``None``
from :func:`attention_positions`.

A new variant: write the module, add its name to :data:`POSITIONS`, and return it from
:func:`token_positions` (absolute) or :func:`attention_positions` (relative); a relative
variant uses :class:`NoPositions` on the token side.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: allowed values of ``ModelConfig.positions``
POSITIONS = ("learned", "sinusoidal", "none")


class TokenPositions(nn.Module):
    """Base of the token-side hook: ``(tok_emb (B,T,D), ids (B,T), start) -> (B,T,D)``.

    ``start`` is the position of the first token (non-zero when the decoder is fed one
    token at a time with a KV cache).
    """

    def forward(self, tok_emb: Tensor, ids: Tensor, start: int = 0) -> Tensor:
        raise NotImplementedError


class NoPositions(TokenPositions):
    """No absolute positions (the model sees a bag of tokens unless attention adds them)."""

    def forward(self, tok_emb: Tensor, ids: Tensor, start: int = 0) -> Tensor:
        return tok_emb


class LearnedPositions(TokenPositions):
    """A trained ``(max_len, D)`` table added to the token embeddings (Charton's models)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.table = nn.Embedding(max_len, d_model)

    def forward(self, tok_emb: Tensor, ids: Tensor, start: int = 0) -> Tensor:
        T = tok_emb.size(1)
        pos = self.table.weight[start : start + T]  # (T, D)
        return tok_emb + pos


class SinusoidalPositions(TokenPositions):
    """Fixed sin/cos positions (Vaswani et al. 2017).

    Token embeddings are initialised with std 0.02, so they are multiplied by sqrt(D) (as in
    the original Transformer) to keep them on the scale of the unit-amplitude sinusoids.
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32)[:, None]  # (L, 1)
        freq = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
        )
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)  # deterministic: not in state_dict
        self.token_scale = math.sqrt(d_model)

    def forward(self, tok_emb: Tensor, ids: Tensor, start: int = 0) -> Tensor:
        T = tok_emb.size(1)
        return tok_emb * self.token_scale + self.pe[start : start + T].to(tok_emb.dtype)


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


def token_positions(name: str, max_len: int, d_model: int) -> TokenPositions:
    """The token-side module of position variant ``name``."""
    if name == "learned":
        return LearnedPositions(max_len, d_model)
    if name == "sinusoidal":
        return SinusoidalPositions(max_len, d_model)
    # "none" and (later) the relative variants, whose positions live in attention
    return NoPositions()


def attention_positions(
    name: str, n_heads: int, head_size: int, max_len: int
) -> AttentionPositions | None:
    """The attention-side module of variant ``name`` for one self-attention layer.

    Relative variants (Shaw-style RPE on keys, on keys and queries, rotary) return their
    module here; the absolute ones need nothing inside attention.
    """
    return None
