"""Architecture settings of :class:`synthmath.nn.model.Transformer`.

:class:`ModelSettings` are the settings a config file chooses (declared once here: type,
default, allowed values, doc; the config schema is generated from them). :class:`ModelConfig`
adds what comes from the task instead: the vocabulary sizes and the digit token ids.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from synthmath.core.settings import SettingProblem, revalidate, settings_class, values
from synthmath.nn.positions import POSITIONS

ARCHS = ("encoder_decoder", "encoder_only")


NORMS = ("post", "pre")


ACTIVATIONS = ("relu", "gelu")
#: how the encoder reads its input: token ids, or numeric points (one encoder position per
#: point, see :mod:`synthmath.nn.embedders`) as an ordered sequence or as an unordered set
INPUT_EMBEDDERS = ("tokens", "points", "point_set")
#: encoder self-attention: plain softmax, or gated positional self-attention (ConViT) over
#: inputs on a 2-D grid (see :mod:`synthmath.nn.gpsa`)
ATTENTIONS = ("softmax", "gpsa")


def _doc(text: str, **constraints) -> Field:
    return Field(description=text, **constraints)


@settings_class
class ModelSettings:
    """The Transformer's hyper-parameters as a config file sets them (``model:``)."""

    arch: Annotated[
        Literal[ARCHS] | None,
        _doc("encoder_decoder or encoder_only; null: the task's kind."),
    ] = None
    n_enc_layers: Annotated[int, _doc("Encoder layers.", ge=1)] = 1
    n_dec_layers: Annotated[int, _doc("Decoder layers (0 for encoder_only).", ge=0)] = 1
    d_model: Annotated[int, _doc("Width of the residual stream.", ge=1)] = 256
    n_heads: Annotated[int, _doc("Attention heads; must divide d_model.", ge=1)] = 8
    d_ff: Annotated[int | None, _doc("Feed-forward width; null: 4 * d_model.", ge=1)] = None
    dropout: Annotated[float, _doc("Dropout probability, in [0, 1).", ge=0, lt=1)] = 0.0
    positions: Annotated[
        Literal[POSITIONS],
        _doc(
            "Absolute (learned, sinusoidal, abacus digit indices), relative (rpe_k: Shaw keys; "
            "rpe_kq: keys and queries; rotary; alibi) or none. See synthmath.nn.positions."
        ),
    ] = "learned"
    norm: Annotated[Literal[NORMS], _doc("Layer norm after (post, the paper) or before.")] = "post"
    activation: Annotated[Literal[ACTIVATIONS], _doc("Feed-forward activation.")] = "relu"
    max_len: Annotated[int, _doc("Longest sequence (positions, BOS/EOS included).", ge=1)] = 1024
    max_distance: Annotated[
        int | None,
        _doc("rpe_k/rpe_kq: clip relative distances to +-max_distance (null: none).", ge=1),
    ] = None
    abacus_offset: Annotated[
        int,
        _doc(
            "abacus: training adds a random offset in 0..abacus_offset to the digit indices of "
            "each sequence (0 at evaluation), to train the rows longer numbers use.",
            ge=0,
        ),
    ] = 0
    attention: Annotated[
        Literal[ATTENTIONS],
        _doc(
            "Encoder self-attention: softmax, or gpsa (ConViT's gated positional "
            "self-attention, initialised as a convolution; inputs on a 2-D grid only, "
            "n_heads a square: one head per offset of a sqrt(n_heads)-wide kernel; its layers "
            "use their own 2-D relative positions, not the relative variants of positions)."
        ),
    ] = "softmax"
    gpsa_layers: Annotated[
        int | None,
        _doc("gpsa: the first gpsa_layers encoder layers use it (null: all).", ge=1),
    ] = None
    locality_strength: Annotated[
        float,
        _doc("gpsa: alpha of the locality init (larger: attention closer to one cell).", gt=0),
    ] = 1.0

    @property
    def ff_size(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    @model_validator(mode="after")
    def _cross_checks(self):
        if self.d_model % self.n_heads:
            raise SettingProblem(
                "n_heads", f"must divide d_model={self.d_model} (got {self.n_heads})"
            )
        if self.positions == "rotary" and (self.d_model // self.n_heads) % 2:
            raise SettingProblem(
                "n_heads",
                f"rotary positions need an even head size d_model/n_heads (got {self.n_heads})",
            )
        if self.attention == "gpsa" and math.isqrt(self.n_heads) ** 2 != self.n_heads:
            raise SettingProblem(
                "n_heads",
                f"gpsa's locality init needs a square number of heads (got {self.n_heads})",
            )
        if self.gpsa_layers is not None and self.gpsa_layers > self.n_enc_layers:
            raise SettingProblem(
                "gpsa_layers",
                f"must be <= n_enc_layers={self.n_enc_layers} (got {self.gpsa_layers})",
            )
        if self.arch == "encoder_decoder" and self.n_dec_layers < 1:
            raise SettingProblem(
                "n_dec_layers", f"encoder_decoder needs >= 1 (got {self.n_dec_layers})"
            )
        return self

    def validate(self, where: str = "") -> None:
        """Raise :class:`ConfigError` (a ValueError) naming the field and what is allowed."""
        revalidate(self, where)


@settings_class(kw_only=False)
class ModelConfig(ModelSettings):
    """The settings plus what the task decides (vocabulary sizes, digit token ids):
    ``ModelConfig(src_vocab_size, tgt_vocab_size, d_model=..., ...)``."""

    src_vocab_size: Annotated[int, Field(ge=3)]  # PAD, BOS, EOS and at least nothing else
    tgt_vocab_size: Annotated[int, Field(ge=3)]
    arch: Literal[ARCHS] = Field(default="encoder_decoder", kw_only=True)
    # abacus: ids of the digit tokens (from the task's digit_token_ids(), not the config)
    src_digit_ids: Annotated[list[int] | None, Field(strict=False)] = None
    tgt_digit_ids: Annotated[list[int] | None, Field(strict=False)] = None
    # tokens | points | point_set (from the task's input_kind, not the config)
    input_embedder: Literal[INPUT_EMBEDDERS] = "tokens"
    # points: tokens per point (from task.tokens_per_point())
    point_tokens: Annotated[int | None, Field(ge=1)] = None
    # gpsa: [rows, cols, start]: encoder positions start .. start + rows*cols - 1 are the cells
    # of a rows x cols grid, row-major (from the task's input_grid(), not the config)
    src_grid: Annotated[list[int] | None, Field(strict=False, min_length=3, max_length=3)] = None

    @model_validator(mode="after")
    def _grid(self):
        if self.attention == "gpsa" and self.src_grid is None:
            raise SettingProblem(
                "attention",
                "gpsa needs inputs on a 2-D grid (the task's input_grid()); this input has none",
            )
        if self.src_grid is not None and (
            min(self.src_grid[:2]) < 1
            or self.src_grid[2] < 0
            or self.src_grid[0] * self.src_grid[1] + self.src_grid[2] > self.max_len
        ):
            raise SettingProblem(
                "src_grid",
                f"expected rows, cols >= 1 and start >= 0 within max_len (got {self.src_grid})",
            )
        return self

    @model_validator(mode="after")
    def _digit_ids(self):
        if self.input_embedder != "tokens":
            if self.point_tokens is None:
                raise SettingProblem("point_tokens", "points inputs need the tokens per point")
            if self.positions == "abacus":
                raise SettingProblem(
                    "positions", "abacus positions count digits of token inputs, not points"
                )
        sides = [("src_digit_ids", self.src_vocab_size)] if self.input_embedder == "tokens" else []
        if self.arch == "encoder_decoder":
            sides.append(("tgt_digit_ids", self.tgt_vocab_size))
        for key, vocab_size in sides:
            ids = getattr(self, key)
            if ids is None and self.positions == "abacus":
                raise SettingProblem(
                    key, "abacus positions need the digit token ids (task.digit_token_ids())"
                )
            if ids is not None and (not ids or not all(3 <= i < vocab_size for i in ids)):
                raise SettingProblem(
                    key,
                    f"expected a non-empty list of token ids in 3..{vocab_size - 1} (got {ids})",
                )
        return self

    @classmethod
    def from_settings(cls, settings: ModelSettings, **task_fields) -> ModelConfig:
        """``settings`` plus the task-derived fields (vocabulary sizes, digit ids)."""
        return cls(**values(settings), **task_fields)
