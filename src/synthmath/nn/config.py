"""Architecture settings of :class:`synthmath.nn.model.Transformer` (:class:`ModelConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from synthmath.core.errors import ConfigError
from synthmath.nn.positions import POSITIONS

ARCHS = ("encoder_decoder", "encoder_only")


NORMS = ("post", "pre")


ACTIVATIONS = ("relu", "gelu")

#: how the encoder reads its input: token ids, or numeric points (one encoder position per
#: point, see :mod:`synthmath.nn.embedders`) as an ordered sequence or as an unordered set
INPUT_EMBEDDERS = ("tokens", "points", "point_set")


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
    positions: str = "learned"  # see synthmath.nn.positions.POSITIONS
    norm: str = "post"  # post (the paper) | pre
    activation: str = "relu"  # relu | gelu
    max_len: int = 1024  # max positions (src and tgt each)
    max_distance: int | None = None  # rpe_k/rpe_kq: clip distances to +-max_distance
    abacus_offset: int = 0  # abacus: largest random index offset in training
    # abacus: ids of the digit tokens (filled from the task's digit_token_ids(), not the config)
    src_digit_ids: list[int] | None = None
    tgt_digit_ids: list[int] | None = None
    # tokens | points | point_set (filled from the task's input_kind, not the config)
    input_embedder: str = "tokens"
    point_tokens: int | None = None  # points: tokens per point (from task.tokens_per_point())

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
            ("input_embedder", INPUT_EMBEDDERS),
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
        if self.input_embedder != "tokens":
            positive_int("point_tokens")
            if self.positions == "abacus":
                fail("positions", "abacus positions count digits of token inputs, not points")
        sides = [("src_digit_ids", self.src_vocab_size)] if self.input_embedder == "tokens" else []
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
