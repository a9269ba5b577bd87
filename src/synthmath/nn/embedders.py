"""The encoder's embedder of numeric-points inputs (symbolic regression, ODEFormer, Boolformer).

A points input holds up to P points per example, each written as ``point_tokens`` tokens (the
encoded coordinates: for symbolic regression ``x1..xd, y`` in P10000, three tokens a number;
a padding point is all PAD). One encoder position per point: the point's tokens are embedded
(:data:`TOKEN_DIM` each), concatenated, and mapped to ``d_model`` by a 2-layer MLP with SiLU
(spec regression.md, after Kamienny et al. 2022).

``point_set`` inputs get no encoder positions at all: the encoder (no positions, no causal
mask) is then equivariant and the decoder's cross-attention invariant to the order of the
points, so the model's output does not depend on it. ``points`` (an ordered sequence) adds
the configured absolute positions here (relative ones act in the encoder's attention).
"""

from __future__ import annotations

from torch import Tensor, nn

from synthmath.core.vocab import PAD
from synthmath.nn.config import ModelConfig
from synthmath.nn.positions import token_positions

TOKEN_DIM = 64  # embedding size of one token of a point


class PointEmbedder(nn.Module):
    """ids ``(B, P, point_tokens)`` -> ``(B, P, d_model)``, one vector per point."""

    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        if cfg.point_tokens is None:
            raise ValueError("a points embedder needs cfg.point_tokens")
        self.point_tokens = cfg.point_tokens
        self.tok = nn.Embedding(vocab_size, TOKEN_DIM)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.point_tokens * TOKEN_DIM, cfg.d_model),
            nn.SiLU(),
            nn.Linear(cfg.d_model, cfg.d_model),
        )
        ordered = cfg.input_embedder == "points"
        self.pos = token_positions(cfg.positions if ordered else "none", cfg.max_len, cfg.d_model)
        self.ln = nn.LayerNorm(cfg.d_model) if cfg.norm == "post" else nn.Identity()
        self.drop = nn.Dropout(cfg.dropout)
        self.max_len = cfg.max_len

    @staticmethod
    def padding(ids: Tensor) -> Tensor:
        """(B, P) True at padding points (all PAD)."""
        return (ids == PAD).all(dim=-1)

    def forward(self, ids: Tensor, start: int = 0, state: Tensor | None = None) -> Tensor:
        if ids.dim() != 3 or ids.size(2) != self.point_tokens:
            raise ValueError(
                f"points input: expected ids (batch, points, {self.point_tokens}), got "
                f"{tuple(ids.shape)}"
            )
        if ids.size(1) > self.max_len:
            raise ValueError(f"{ids.size(1)} points exceed model.max_len={self.max_len}")
        x = self.mlp(self.tok(ids).flatten(2))  # (B, P, D)
        x = self.pos(x, ids[..., 0], start, state)
        return self.drop(self.ln(x))
