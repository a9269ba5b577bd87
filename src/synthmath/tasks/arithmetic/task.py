"""The ``arithmetic`` task: addition, N x M multiplication and modular addition of integers
(Jelassi et al. 2023, "Length generalization in arithmetic transformers").

An encoder-only task: the model reads ``a op b`` and predicts the answer digits at aligned
input positions (:mod:`synthmath.tasks.arithmetic.sequences` shows the layouts). Example
(op=add, 57 + 68, default layout)::

    src: 5 7 + 6 8        tgt: <pad> <pad> 1 2 5

Operands are drawn uniformly over the numbers of ``min_digits`` to ``max_digits`` digits
(``length_dist``), stored as digit arrays (:mod:`synthmath.tasks.arithmetic.digits`), and
written zero-padded (``pad``): both operands of add/modadd to their common width
``max(len a, len b)``; for mul the first operand with its own length and the second to
``max_digits2`` digits, as in "N x 3". ``pad_to=P`` writes the operands of add/modadd (the
first operand of mul) with at least ``P`` digits, so that every input up to ``P`` digits
has the same length and the same-place digits of ``a`` and ``b`` sit at the same distance,
``P + 1`` (what relative positions need to generalise to longer numbers). The answer is
always written with its largest width (add ``W + 1``, mul ``a_width + b_width``, modadd the
digits of ``modulus - 1``), so the answer positions depend on the input only. Without
``pad`` the operands carry no leading zeros.

Modular addition predicts ``(a + b) mod modulus``; its operands are uniform residues in
``[0, modulus)`` (``mod_operands="residues"``, Jelassi et al. sample from Z_q; min/max
digits are not used), or, with ``mod_operands="digits"``, numbers of ``min_digits`` to
``max_digits`` digits as for ``add`` (e.g. to test on long operands).

Size labels (:meth:`ArithmeticTask.groups`): ``"12"`` for add/modadd (the common operand
width), ``"12x3"`` for mul (written widths of both operands).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from synthmath.core.errors import ConfigError, DecodeError
from synthmath.core.metrics import Metric
from synthmath.core.task import Param, RawBatch, Task
from synthmath.tasks.arithmetic import digits as dg
from synthmath.tasks.arithmetic import sequences as seq

OPS = ("add", "mul", "modadd")
MOD_OPERANDS = ("residues", "digits")
MAX_DIGITS = 1000
MAX_MODULUS = 10**17


def _digits_check(value: Any) -> str | None:
    if value is None or 1 <= value <= MAX_DIGITS:
        return None
    return f"must be in 1..{MAX_DIGITS}"


def _modulus_check(value: Any) -> str | None:
    return None if 2 <= value <= MAX_MODULUS else f"must be in 2..{MAX_MODULUS}"


class ArithmeticTask(Task):
    """Integer arithmetic with aligned outputs (see module docstring)."""

    name = "arithmetic"
    model_kind = "encoder_only"
    capabilities = frozenset({"decode_answer", "digit_tokens"})
    PARAMS = {
        "op": Param("add", "add, mul (N x M digits) or modadd (a + b mod modulus)", str, OPS),
        "max_digits": Param(5, "most digits of the (first) operand", int, check=_digits_check),
        "min_digits": Param(1, "fewest digits of the (first) operand", int, check=_digits_check),
        "max_digits2": Param(
            None,
            "most digits of the second operand; default max_digits (add, modadd) or 3 (mul)",
            int,
            check=_digits_check,
        ),
        "min_digits2": Param(
            None,
            "fewest digits of the second operand; default min_digits (add, modadd) or 1 (mul)",
            int,
            check=_digits_check,
        ),
        "modulus": Param(100, "modadd: the modulus", int, check=_modulus_check),
        "length_dist": Param(
            "uniform_value",
            "uniform_value: operands uniform over all numbers of min..max digits (mostly the "
            "longest); uniform_length: digit count uniform, then the value",
            str,
            dg.LENGTH_DISTS,
        ),
        "pad": Param(True, "zero-pad the operands (see the module docstring)", bool),
        "pad_to": Param(
            None,
            "write the operands (mul: the first) with at least this many digits (needs pad)",
            int,
            check=_digits_check,
        ),
        "mod_operands": Param(
            "residues",
            "modadd operands: residues (uniform in [0, modulus)) or digits (min..max digits)",
            str,
            MOD_OPERANDS,
        ),
        "reversed": Param(
            False, "write every number least significant digit first", bool, data=False
        ),
        "layout": Param(
            "aligned",
            "aligned: answer on the input positions; slots: input ends with '=' and answer slots",
            str,
            seq.LAYOUTS,
            data=False,
        ),
    }

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str = "") -> dict[str, Any]:
        """Per-key checks, then digit ranges and whether a modadd answer fits its layout."""
        out = super().validate_params(params, where)
        prefix = f"{where}." if where else ""
        lo, hi, lo2, hi2 = _digit_ranges(out)
        if lo > hi:
            raise ConfigError(f"{prefix}min_digits: must be <= max_digits={hi} (got {lo})")
        if lo2 > hi2:
            key = "min_digits2" if out["min_digits2"] is not None else "max_digits2"
            raise ConfigError(
                f"{prefix}{key}: second operand needs min_digits2 <= max_digits2 "
                f"(got {lo2} > {hi2})"
            )
        if out["pad_to"] is not None and not out["pad"]:
            raise ConfigError(f"{prefix}pad_to: needs pad=true (got pad=false)")
        if out["op"] == "modadd" and out["layout"] == "aligned":
            answer = len(str(out["modulus"] - 1))
            if out["mod_operands"] == "residues":
                lo = lo2 = 1
            lo, lo2 = max(lo, out["pad_to"] or 0), max(lo2, out["pad_to"] or 0)
            shortest = (2 * max(lo, lo2) if out["pad"] else lo + lo2) + 1
            if answer > shortest:
                fix = "pad_to" if out["mod_operands"] == "residues" else "min_digits"
                raise ConfigError(
                    f"{prefix}modulus: its {answer}-digit answers do not fit on inputs of "
                    f"{shortest} tokens; raise {fix} or use layout=slots (got "
                    f"{out['modulus']})"
                )
        return out

    def generator_params(self) -> dict[str, Any]:
        """Data parameters, without ``modulus`` and ``mod_operands`` unless op is modadd, and
        without ``pad_to`` unless set (same data, one dataset; older dataset ids unchanged)."""
        out = super().generator_params()
        if out["op"] != "modadd":
            out.pop("modulus")
            out.pop("mod_operands")
        if out["pad_to"] is None:
            out.pop("pad_to")
        return out

    # ---- data -------------------------------------------------------------------------------
    @property
    def op(self) -> str:
        return self.params["op"]

    @property
    def reverse(self) -> bool:
        return self.params["reversed"]

    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        """Operands, answer (digit arrays, least significant first) and written widths."""
        lo, hi, lo2, hi2 = _digit_ranges(self.params)
        dist = self.params["length_dist"]
        if self.op == "modadd" and self.params["mod_operands"] == "residues":
            modulus = self.params["modulus"]
            width = len(str(modulus - 1))
            a = dg.from_int64(rng.integers(0, modulus, size=n), width)
            b = dg.from_int64(rng.integers(0, modulus, size=n), width)
        else:
            a = dg.sample_numbers(n, lo, hi, dist, rng)
            b = dg.sample_numbers(n, lo2, hi2, dist, rng)
        a_len, b_len = dg.digit_count(a), dg.digit_count(b)
        pad_to = self.params["pad_to"] or 0
        if not self.params["pad"]:
            a_width, b_width = a_len, b_len
        elif self.op == "mul":
            a_width, b_width = np.maximum(a_len, pad_to), np.full(n, hi2)
        else:
            a_width = b_width = np.maximum(np.maximum(a_len, b_len), pad_to)
        if pad_to:  # written digits past the sampled ones are zeros: widen the arrays
            a, b = _widen(a, pad_to), (b if self.op == "mul" else _widen(b, pad_to))
        if self.op == "mul":
            answer, answer_width = dg.multiply(a, b), a_width + b_width
        elif self.op == "add":
            answer, answer_width = dg.add(a, b), np.maximum(a_width, b_width) + 1
        else:
            modulus = self.params["modulus"]
            width = len(str(modulus - 1))
            answer = dg.from_int64(dg.modulo(dg.add(a, b), modulus), width)
            answer_width = np.full(n, width)
        return {
            "a": a,
            "b": b,
            "answer": answer,
            "a_width": a_width.astype(np.int16),
            "b_width": b_width.astype(np.int16),
            "answer_width": answer_width.astype(np.int16),
        }

    @cached_property
    def _src_vocab(self):
        return seq.make_src_vocab()

    @cached_property
    def _tgt_vocab(self):
        return seq.make_tgt_vocab()

    def src_vocab(self):
        return self._src_vocab

    def tgt_vocab(self):
        return self._tgt_vocab

    def digit_token_ids(self) -> tuple[list[int], list[int]]:
        """Ids of the digit tokens ``0..9`` in the source and target vocabularies (Abacus)."""
        return self._src_vocab.ids(seq.DIGITS), self._tgt_vocab.ids(seq.DIGITS)

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        return seq.encode_src(raw, self.op, self.params["layout"], self.reverse, self._src_vocab)

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        """Aligned with :meth:`encode_src`: same shape, PAD off the answer positions."""
        return seq.encode_tgt(raw, self.params["layout"], self.reverse)

    # ---- predictions -------------------------------------------------------------------------
    def decode_answer(self, tokens: Sequence[str]) -> int:
        """The number written by predicted answer tokens (in position order)."""
        if not tokens or any(t not in seq.DIGITS for t in tokens):
            raise DecodeError(f"not a number: {' '.join(tokens)!r}")
        text = "".join(tokens)
        return int(text[::-1] if self.reverse else text)

    def metrics(self) -> tuple[Metric, ...]:
        return (
            Metric.acc("acc", "every answer digit right"),
            Metric.fraction("digit_acc", "fraction of right answer digits"),
        )

    def score_predictions(
        self, raw: RawBatch, predictions: Sequence[Sequence[str]]
    ) -> dict[str, np.ndarray]:
        """``acc``: every answer digit right; ``digit_acc``: fraction of right answer digits.

        ``predictions`` are the tokens predicted at the answer positions, in position order
        (see :meth:`Task.score`); a missing or extra token counts as a wrong digit.
        """
        expected = seq.answer_strings(raw, self.reverse)
        acc = np.zeros(len(expected), dtype=bool)
        digit_acc = np.zeros(len(expected), dtype=np.float64)
        for i, (truth, pred) in enumerate(zip(expected, predictions)):
            pred = list(pred)
            acc[i] = pred == truth
            right = sum(p == t for p, t in zip(pred, truth))
            digit_acc[i] = right / max(len(truth), len(pred))
        return {"acc": acc, "digit_acc": digit_acc}

    def main_metric(self) -> str:
        return "acc"

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        """``size``: operand length, ``"12"`` (add, modadd: the longer operand's digit count)
        or ``"12x3"`` (mul: digits of the first operand x written width of the second).

        Digit counts rather than written widths, so that ``pad_to`` does not merge the sizes
        (without ``pad_to`` the two agree)."""
        a_len = dg.digit_count(raw["a"]).tolist()
        if self.op == "mul":
            labels = [f"{wa}x{wb}" for wa, wb in zip(a_len, raw["b_width"].tolist())]
        else:
            b_len = dg.digit_count(raw["b"]).tolist()
            labels = [str(max(wa, wb)) for wa, wb in zip(a_len, b_len)]
        return {"size": np.array(labels)}

    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        row = slice(i, i + 1)
        a, b, answer = (dg.to_ints(raw[k][row])[0] for k in ("a", "b", "answer"))
        return {"problem": [a, b], "answer": answer}


def _widen(digits: np.ndarray, width: int) -> np.ndarray:
    """The digit array with zero columns added up to ``width`` (never narrower)."""
    extra = width - digits.shape[1]
    return np.pad(digits, ((0, 0), (0, extra))) if extra > 0 else digits


def _digit_ranges(params: dict[str, Any]) -> tuple[int, int, int, int]:
    """(min, max) digits of the first and of the second operand, defaults resolved."""
    lo, hi = params["min_digits"], params["max_digits"]
    mul = params["op"] == "mul"
    hi2 = params["max_digits2"] if params["max_digits2"] is not None else (3 if mul else hi)
    lo2 = params["min_digits2"] if params["min_digits2"] is not None else (1 if mul else lo)
    return lo, hi, lo2, hi2
