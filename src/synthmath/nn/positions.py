"""Position encodings of the Transformer, as small modules behind two hooks.

Token-side hook (:class:`TokenPositions`): combines token embeddings with positions before
the first layer. ``learned`` (an ``nn.Embedding`` table), ``sinusoidal`` (a fixed buffer, as
in Vaswani et al.), ``none``, and ``abacus`` (McLeish et al. 2024): each digit token gets an
embedding of its index inside its number, read from the token ids (see
:class:`AbacusPositions`). A variant whose embedding depends on earlier tokens keeps a small
state between incremental decoding steps (:meth:`TokenPositions.step`); the decoder's KV
cache carries it and reorders it with the beams.

Attention-side hook (:class:`AttentionPositions`): acts inside self-attention, one module per
layer (encoder and decoder each). ``rotate`` transforms the new queries and keys before the
keys enter the KV cache (``rotary``); ``bias`` returns an additive term on the scaled
attention scores q.k/sqrt(hs), computed from the queries and all keys (``rpe_k``, ``rpe_kq``,
``alibi``; see :mod:`synthmath.nn.relative_positions`). The attention adds it to the scores,
and masked entries (padding, causal) stay at -inf.

Every variant covers positions 0 .. ``max_len`` - 1 (relative ones: distances up to
``max_len`` - 1), so a model trained on short sequences runs on any length up to
``model.max_len``; a longer input is an error that names ``model.max_len``.

A new variant: write the module, add its name to :data:`POSITIONS`, and return it from
:func:`token_positions` (absolute) or :func:`attention_positions` (relative); a relative
variant uses :class:`NoPositions` on the token side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from synthmath.nn.relative_positions import (
    AlibiPositions,
    AttentionPositions,
    RelativePositions,
    RotaryPositions,
)

#: allowed values of ``ModelConfig.positions``
POSITIONS = ("learned", "sinusoidal", "none", "rpe_k", "rpe_kq", "rotary", "alibi", "abacus")


class TokenPositions(nn.Module):
    """Base of the token-side hook: ``(tok_emb (B,T,D), ids (B,T), start) -> (B,T,D)``.

    ``start`` is the position of the first token (non-zero when the decoder is fed one
    token at a time with a KV cache). ``state`` is a per-row tensor that stateful variants
    (abacus) use: from :meth:`initial_state` (the model passes the same one to its encoder
    and decoder, so both sides of an example share its random offset) or from the previous
    :meth:`step`. Stateless variants ignore it.
    """

    def forward(
        self, tok_emb: Tensor, ids: Tensor, start: int = 0, state: Tensor | None = None
    ) -> Tensor:
        raise NotImplementedError

    def initial_state(self, rows: int, device: torch.device) -> Tensor | None:
        """The state of ``rows`` fresh sequences (None for stateless variants)."""
        return None

    def step(
        self, tok_emb: Tensor, ids: Tensor, start: int, state: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """One incremental decoding step: like ``forward`` for tokens at ``start..``.

        ``state`` is what the previous step returned (None at the first step), one row per
        decoder row; the cache reorders its rows with the beams. Stateless variants keep None.
        """
        return self(tok_emb, ids, start, state), None


class NoPositions(TokenPositions):
    """No absolute positions (the model sees a bag of tokens unless attention adds them)."""

    def forward(
        self, tok_emb: Tensor, ids: Tensor, start: int = 0, state: Tensor | None = None
    ) -> Tensor:
        return tok_emb


class LearnedPositions(TokenPositions):
    """A trained ``(max_len, D)`` table added to the token embeddings (Charton's models)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.table = nn.Embedding(max_len, d_model)

    def forward(
        self, tok_emb: Tensor, ids: Tensor, start: int = 0, state: Tensor | None = None
    ) -> Tensor:
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

    def forward(
        self, tok_emb: Tensor, ids: Tensor, start: int = 0, state: Tensor | None = None
    ) -> Tensor:
        T = tok_emb.size(1)
        return tok_emb * self.token_scale + self.pe[start : start + T].to(tok_emb.dtype)


def digit_run_index(is_digit: Tensor, carry: Tensor | None = None) -> Tensor:
    """Index of each token inside its run of consecutive digits: 1, 2, 3, ...; 0 elsewhere.

    ``is_digit`` is (B, T) bool. ``carry`` (B,) is the length of the digit run that ends just
    before the first column (incremental decoding); a run that continues it keeps counting.
    Example: ``d d x d d d`` -> ``1 2 0 1 2 3``; with carry 4, ``d x`` -> ``5 0``.
    """
    count = is_digit.long().cumsum(dim=1)  # digits seen so far
    # at each non-digit, the count so far; its running maximum is the count at the last reset
    last_reset = torch.where(is_digit, 0, count).cummax(dim=1).values
    index = count - last_reset
    if carry is not None:
        unbroken = is_digit.long().cumprod(dim=1)  # 1 while no non-digit since column 0
        index = index + unbroken * carry[:, None]
    return index


class AbacusPositions(TokenPositions):
    """Abacus digit positions (McLeish et al. 2024), added to the token embeddings.

    A digit token at index n >= 1 inside its number (a maximal run of digit tokens, counted
    from the run's first token, whatever the digit order of the task) gets row n - 1 of a
    learned table; every other token gets nothing (no absolute position at all: attention
    without positions treats them as a bag, as Abacus-with-NoPE does). In training mode a
    random offset, uniform in 0 .. ``max_offset`` and drawn per sequence, is added to every
    index of the sequence, so that the rows needed by numbers longer than the training ones
    are trained too; in eval mode the offset is 0. An encoder-decoder model draws it once
    per example for both sides (the state given to ``forward``), so that operand digits and
    answer digits of the same rank keep matching embeddings, as in McLeish et al.'s single
    sequence. The table has ``max_len + max_offset`` rows, enough for a run filling the
    whole sequence plus the largest offset.

    In the decoder, indices continue across incremental decoding steps: the state (one row
    per decoder row) holds the run length so far and the row's offset.
    """

    def __init__(
        self,
        max_len: int,
        d_model: int,
        digit_ids: Sequence[int],
        vocab_size: int,
        max_offset: int = 0,
    ):
        super().__init__()
        self.table = nn.Embedding(max_len + max_offset, d_model)
        is_digit = torch.zeros(vocab_size, dtype=torch.bool)
        is_digit[torch.as_tensor(list(digit_ids), dtype=torch.long)] = True
        self.register_buffer("is_digit", is_digit, persistent=False)  # derived from the config
        self.max_offset = max_offset

    def initial_state(self, rows: int, device: torch.device) -> Tensor:
        """(rows, 2): the digit run length before the first token (0), and the row's offset:
        random in 0 .. max_offset in training mode, 0 in eval mode."""
        offset = torch.zeros(rows, dtype=torch.long, device=device)
        if self.training and self.max_offset > 0:
            offset = torch.randint(0, self.max_offset + 1, (rows,), device=device)
        return torch.stack([torch.zeros_like(offset), offset], dim=1)

    def step(
        self, tok_emb: Tensor, ids: Tensor, start: int, state: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        if state is None:
            state = self.initial_state(ids.size(0), ids.device)
        index = digit_run_index(self.is_digit[ids], carry=state[:, 0])  # (B, T)
        row = (index + state[:, 1:] - 1).clamp(min=0)  # index n -> row n - 1 + offset
        emb = self.table(row) * (index > 0).unsqueeze(-1).to(tok_emb.dtype)  # (B, T, D)
        return tok_emb + emb, torch.stack([index[:, -1], state[:, 1]], dim=1)

    def forward(
        self, tok_emb: Tensor, ids: Tensor, start: int = 0, state: Tensor | None = None
    ) -> Tensor:
        return self.step(tok_emb, ids, start, state)[0]


def token_positions(
    name: str,
    max_len: int,
    d_model: int,
    *,
    vocab_size: int | None = None,
    digit_ids: Sequence[int] | None = None,
    abacus_offset: int = 0,
) -> TokenPositions:
    """The token-side module of position variant ``name``.

    ``abacus`` needs the vocabulary size and the ids of its digit tokens.
    """
    if name == "learned":
        return LearnedPositions(max_len, d_model)
    if name == "sinusoidal":
        return SinusoidalPositions(max_len, d_model)
    if name == "abacus":
        if not digit_ids or vocab_size is None:
            raise ValueError("abacus positions need vocab_size and the digit token ids")
        return AbacusPositions(max_len, d_model, digit_ids, vocab_size, abacus_offset)
    # "none" and the relative variants, whose positions live in attention
    return NoPositions()


def attention_positions(
    name: str, n_heads: int, head_size: int, max_len: int, max_distance: int | None = None
) -> AttentionPositions | None:
    """The attention-side module of variant ``name`` for one self-attention layer.

    Relative variants return their module here (``max_distance`` clips rpe_k/rpe_kq
    distances); the absolute ones need nothing inside attention.
    """
    if name in ("rpe_k", "rpe_kq"):
        return RelativePositions(head_size, max_len, max_distance, query_side=name == "rpe_kq")
    if name == "rotary":
        return RotaryPositions(head_size, max_len)
    if name == "alibi":
        return AlibiPositions(n_heads, max_len)
    return None
