"""The ``linalg`` task: nine operations on random matrices (Charton 2021).

Example (op=transpose, dim=2, P1000 both sides)::

    src: V2 V2 + 314 E-2 - 100 E-2 + 0 E0 + 250 E-1          M   = [[3.14, -1], [0, 25]]
    tgt: V2 V2 + 314 E-2 + 0 E0 - 100 E-2 + 250 E-1          M^T = [[3.14, 0], [-1, 25]]

Two operands are two blocks one after the other (``V.. V.. A  V.. V.. B``); a vector is a
``k x 1`` matrix; eigenvectors are written ``lambda`` then Q (eigenvectors as columns), svd
``s`` then U then V. Layout of raw batches: :mod:`synthmath.tasks.linalg.ops`; sequences:
:mod:`synthmath.tasks.linalg.sequences`; scoring: :mod:`synthmath.tasks.linalg.scoring`.

Size labels (:meth:`LinalgTask.groups`): ``"RxC"``, the rows and columns of the input matrix
(``"5x5"`` for a 5 x 5 square op), and ``"MxKxN"`` for matmul (A is M x K, B is K x N).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from synthmath.codecs.numbers import ENCODING_NAMES, NumberEncoding, get_encoding
from synthmath.core.errors import ConfigError, DecodeError
from synthmath.core.metrics import Metric
from synthmath.core.task import Param, RawBatch, Task
from synthmath.core.vocab import Vocab
from synthmath.tasks.linalg.distributions import COEFF_LAWS, SPECTRUM_LAWS
from synthmath.tasks.linalg.ops import OP_NAMES, OPS, GeneratorConfig, OpSpec, sample_batch
from synthmath.tasks.linalg.scoring import declared_metrics, score_decoded
from synthmath.tasks.linalg.sequences import decode_blocks, encode_blocks, make_vocab

_ALL_LAWS = tuple(dict.fromkeys((*SPECTRUM_LAWS, *COEFF_LAWS)))
_RECTANGULAR_OPS = tuple(name for name, spec in OPS.items() if spec.rectangular)


def _positive(value: Any) -> str | None:
    return None if value is None or value > 0 else "must be > 0"


def _at_least_one(value: Any) -> str | None:
    return None if value is None or value >= 1 else "must be >= 1"


def _check_dist(value: str) -> str | None:
    laws = [s.strip() for s in value.split(",")]
    bad = [s for s in laws if s not in (*_ALL_LAWS, "auto")]
    if bad or ("auto" in laws and len(laws) > 1):
        return f"unknown law {(bad or ['auto'])[0]!r}; allowed: auto, {', '.join(_ALL_LAWS)}"
    return None


class LinalgTask(Task):
    """Linear algebra on random matrices: transpose ... inverse (see module docstring)."""

    name = "linalg"
    capabilities = frozenset({"decode_answer"})
    PARAMS = {
        "op": Param("transpose", "operation", str, choices=OP_NAMES),
        "dim": Param(5, "matrix size when dim_min/dim_max are unset", int, check=_at_least_one),
        "dim_min": Param(
            None, "smallest size of a size range (with dim_max)", int, check=_at_least_one
        ),
        "dim_max": Param(
            None, "largest size of a size range (with dim_min)", int, check=_at_least_one
        ),
        "rectangular": Param(False, "draw rows and columns independently in the size range", bool),
        "dist": Param(
            "auto",
            "spectrum law(s) for eigen ops (comma list: per-example "
            "mixture), coefficient law otherwise; auto = semicircle / uniform",
            str,
            check=_check_dist,
        ),
        "coeff_range": Param(
            10.0, "A: coefficients in [-A, A] (or std A/sqrt 3)", float, check=_positive
        ),
        "noise": Param(
            0.0,
            "std of input noise, in units of A/sqrt 3",
            float,
            check=lambda v: None if v >= 0 else "must be >= 0",
        ),
        "max_cond": Param(
            100.0,
            "inverse: largest condition number kept (a correct 3-digit answer passes the "
            "reconstruction check at 5% for about 98% of 5x5 matrices at 100, 93% at 1000)",
            float,
            check=lambda v: None if v >= 1 else "must be >= 1",
        ),
        "dim_tokens": Param(
            30,
            "dimension tokens V1..V<n> in the vocabularies (at least the largest size), so "
            "that models trained on small matrices can be grown to larger ones",
            int,
            check=_at_least_one,
            data=False,
        ),
        "encoding": Param(
            "P10", "number encoding of inputs and outputs", str, choices=ENCODING_NAMES, data=False
        ),
        "input_encoding": Param(
            None,
            "overrides encoding for the inputs",
            str,
            choices=(None, *ENCODING_NAMES),
            data=False,
        ),
        "output_encoding": Param(
            None,
            "overrides encoding for the outputs",
            str,
            choices=(None, *ENCODING_NAMES),
            data=False,
        ),
    }

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str = "") -> dict[str, Any]:
        """Per-key checks (base class), then the checks that involve several keys."""
        out = super().validate_params(params, where)
        prefix = f"{where}." if where else ""
        lo, hi, op = out["dim_min"], out["dim_max"], out["op"]
        if (lo is None) != (hi is None):
            missing = "dim_max" if hi is None else "dim_min"
            raise ConfigError(f"{prefix}{missing}: dim_min and dim_max must be set together")
        if lo is not None and lo > hi:
            raise ConfigError(f"{prefix}dim_min: must be <= dim_max={hi} (got {lo})")
        if out["rectangular"]:
            if op not in _RECTANGULAR_OPS:
                raise ConfigError(
                    f"{prefix}rectangular: op {op!r} needs square matrices; rectangular is "
                    f"allowed for: {', '.join(_RECTANGULAR_OPS)}"
                )
            if lo is None or lo == hi:
                raise ConfigError(
                    f"{prefix}rectangular: needs a size range (dim_min < dim_max) to draw "
                    "rows and columns from"
                )
        laws = [s.strip() for s in out["dist"].split(",")]
        allowed = ("auto", *SPECTRUM_LAWS) if OPS[op].eigen else ("auto", *COEFF_LAWS)
        bad = [s for s in laws if s not in allowed]
        if bad or (not OPS[op].eigen and len(laws) > 1):
            kind = "spectrum" if OPS[op].eigen else "coefficient (one)"
            raise ConfigError(
                f"{prefix}dist: {out['dist']!r} is not a {kind} law for op {op!r}; "
                f"allowed: {', '.join(allowed)}"
            )
        return out

    # ---- resolved parameters ----------------------------------------------------------------
    @property
    def spec(self) -> OpSpec:
        return OPS[self.params["op"]]

    @property
    def max_dim(self) -> int:
        """Largest matrix size: dim, or dim_max for a size range (dimension tokens V1..)."""
        return self.params["dim_max"] or self.params["dim"]

    @cached_property
    def laws(self) -> tuple[str, ...]:
        dist = self.params["dist"]
        if dist == "auto":
            return ("semicircle",) if self.spec.eigen else ("uniform",)
        return tuple(s.strip() for s in dist.split(","))

    @cached_property
    def generator_config(self) -> GeneratorConfig:
        p = self.params
        lo = p["dim_min"] if p["dim_min"] is not None else p["dim"]
        return GeneratorConfig(
            op=p["op"],
            lo=lo,
            hi=self.max_dim,
            rectangular=p["rectangular"],
            laws=self.laws,
            scale=p["coeff_range"],
            noise=p["noise"],
            max_cond=p["max_cond"],
        )

    @cached_property
    def input_encoding(self) -> NumberEncoding:
        return get_encoding(self.params["input_encoding"] or self.params["encoding"])

    @cached_property
    def output_encoding(self) -> NumberEncoding:
        return get_encoding(self.params["output_encoding"] or self.params["encoding"])

    # ---- data -----------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        return sample_batch(self.generator_config, n, rng)

    @cached_property
    def _src_vocab(self) -> Vocab:
        return make_vocab(max(self.max_dim, self.params["dim_tokens"]), self.input_encoding)

    @cached_property
    def _tgt_vocab(self) -> Vocab:
        return make_vocab(max(self.max_dim, self.params["dim_tokens"]), self.output_encoding)

    def input_grid(self) -> tuple[int, int, int] | None:
        """The first operand's entries after its two dimension tokens, when every example is
        one fixed square matrix size (no dim range, not rectangular) written one token per
        entry (FP15 inputs); None otherwise (a second operand stays off the grid)."""
        p = self.params
        if (
            p["dim_min"] is not None
            or p["rectangular"]
            or self.input_encoding.tokens_per_number != 1
        ):
            return None
        return (p["dim"], p["dim"], 2)

    def src_vocab(self) -> Vocab:
        return self._src_vocab

    def tgt_vocab(self) -> Vocab:
        return self._tgt_vocab

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        keys = ("a", "b")[: len(self.spec.operands)]
        blocks = [(raw[k], raw[f"{k}_shape"]) for k in keys]
        return encode_blocks(blocks, self.input_encoding, self._src_vocab)

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        keys = [f"answer_{name}" for name, _ in self.spec.outputs]
        blocks = [(raw[k], raw[f"{k}_shape"]) for k in keys]
        return encode_blocks(blocks, self.output_encoding, self._tgt_vocab)

    # ---- predictions ------------------------------------------------------------------------
    def decode_answer(self, tokens: Sequence[str]) -> dict[str, np.ndarray]:
        """The outputs written in ``tokens`` (output encoding), by name as in ``answer_<name>``.

        Vectors come back 1-D, matrices 2-D: e.g. ``{"eigenvalues": (k,), "eigenvectors":
        (k, k)}``, svd ``{"s": (k,), "U": (m, k), "V": (n, k)}``. Raises
        :class:`DecodeError` on a malformed sequence or inconsistent shapes.
        """
        kinds = [kind for _, kind in self.spec.outputs]
        values = decode_blocks(tokens, kinds, self.output_encoding, self.max_dim)
        out = {name: v for (name, _), v in zip(self.spec.outputs, values)}
        op = self.spec.name
        if op == "eigenvectors":
            k = len(out["eigenvalues"])
            if out["eigenvectors"].shape != (k, k):
                raise DecodeError(f"eigenvectors must be {k}x{k}")
        elif op == "svd":
            k = len(out["s"])
            if out["U"].shape[1] != k or out["V"].shape[1] != k:
                raise DecodeError(f"U and V must have {k} columns")
        elif op == "inverse" and out["inverse"].shape[0] != out["inverse"].shape[1]:
            raise DecodeError("an inverse must be square")
        return out

    def metrics(self) -> tuple[Metric, ...]:
        return declared_metrics(self.spec)

    def score_predictions(
        self, raw: RawBatch, predictions: Sequence[Sequence[str]]
    ) -> dict[str, np.ndarray]:
        decoded: list[dict[str, np.ndarray] | None] = []
        for tokens in predictions:
            try:
                decoded.append(self.decode_answer(tokens))
            except DecodeError:
                decoded.append(None)
        return score_decoded(self.spec, raw, decoded)

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        dims = raw["a_shape"]
        if self.spec.name == "matmul":
            dims = np.concatenate([dims, raw["b_shape"][:, 1:]], axis=1)
        out = {"size": np.array(["x".join(map(str, row)) for row in dims.tolist()])}
        if self.spec.eigen and len(set(self.laws)) > 1:
            out["dist"] = raw["spectrum"]
        return out

    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        kinds = self.spec.operands
        operands = [_block_json(raw, k, i, kind) for k, kind in zip(("a", "b"), kinds)]
        outputs = {
            name: _block_json(raw, f"answer_{name}", i, kind) for name, kind in self.spec.outputs
        }
        answer = next(iter(outputs.values())) if len(outputs) == 1 else outputs
        return {"problem": operands[0] if len(operands) == 1 else operands, "answer": answer}


def _block_json(raw: RawBatch, key: str, i: int, kind: str) -> list:
    r, c = (int(x) for x in raw[f"{key}_shape"][i])
    block = raw[key][i, :r, :c]
    return block[:, 0].tolist() if kind == "vector" else block.tolist()
