"""Number encodings of Charton (2021): P10, P1000, B1999 and FP15; P10000 (4 digits).

Every encoding writes a real number rounded to its ``precision`` significant digits (3 unless
said otherwise), ``x ~ m * 10**e`` with an integer mantissa ``100 <= |m| <= 999`` at
precision 3 (``10**(p-1) <= |m| < 10**p`` at precision p; zero is ``m = e = 0``):

====== ================ ================= ==========================================
name   3.14 is written  tokens per number vocabulary (in this order, each a block)
====== ================ ================= ==========================================
P10    ``+ 3 1 4 E-2``  5                 ``+ -``, ``0..9``, ``E-100..E100``, ``NaN``
P1000  ``+ 314 E-2``    3                 ``+ -``, ``0..999``, ``E-100..E100``, ``NaN``
B1999  ``N314 E-2``     2                 ``N-999..N999``, ``E-100..E100``, ``NaN``
FP15   ``N314e7``       1                 ``N0e0``, ``N{m}e{e+9}`` (e in -9..6), ``NaN``
P10000 ``+ N3140 E-3``  3                 ``+ -``, ``N0000..N9999``, ``E-100..E100``, ``NaN``
====== ================ ================= ==========================================

P10000 is the encoding of the symbolic regression papers (Kamienny et al. 2022, ODEFormer):
four significant digits. P10 takes any precision (``get_encoding("P10", precision=4)``
writes ``+ 3 1 4 0 E-3``, p + 2 tokens, same vocabulary); the others are defined by their
precision (their names are their mantissa vocabularies).

Rounding: ``e = floor(log10|x|) - (p - 1)`` and ``m = round(x / 10**e)``, rounding half away
from zero (999.5 -> 1000); a mantissa that reaches ``10**p`` becomes ``10**(p-1)`` with
``e + 1``. The relative error of the rounding is at most ``0.5 / 100.5`` (< 0.5%) at p = 3.

Range: an exponent below the range (``e < -100``; FP15: ``e < -9``, i.e. ``|x| < ~1e-7``)
encodes as zero. An exponent above the range (``e > 100``; FP15: ``e > 6``, i.e.
``|x| >= ~1e9``), NaN and inf encode as ``NaN`` in every position of the number (P10: five
``NaN`` tokens). Decoding a ``NaN`` token raises :class:`DecodeError`, so a predicted NaN is a
wrong answer, never a crash.

Decoding accepts non-normalised mantissas that the vocabulary can express (P10 ``+ 0 1 4 E0``
is 14, B1999 ``N5 E0`` is 5): they are valid numbers, just never produced by ``encode``.
``encode_ids`` is vectorised: it splits values into sign, mantissa and exponent arrays and maps
them to ids by arithmetic on the contiguous id blocks of :meth:`NumberEncoding.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from synthmath.core.errors import ConfigError, DecodeError

ENCODING_NAMES = ("P10", "P1000", "B1999", "FP15", "P10000")
DEFAULT_PRECISION = 3
MAX_PRECISION = 9  # mantissas stay exact integers in float64 far beyond this
NAN_TOKEN = "NaN"

# exact powers of ten up to 1e22, correctly rounded beyond; 1e308 is the largest double
_POW10 = np.array([10.0**k for k in range(309)])
_EXP_CLIP = 300  # exponents beyond this are out of every encoding's range anyway


def _round_half_away(y: np.ndarray) -> np.ndarray:
    return np.copysign(np.floor(np.abs(y) + 0.5), y)


def _scale_down(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``x / 10**e`` with an exact power of ten (one correctly rounded operation)."""
    return np.where(e >= 0, x / _POW10[np.maximum(e, 0)], x * _POW10[np.maximum(-e, 0)])


def compose(mantissa: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``mantissa * 10**exponent`` as float64, correctly rounded (used by decode and round)."""
    m = np.asarray(mantissa, dtype=np.float64)
    e = np.asarray(exponent, dtype=np.int64)
    return np.where(e >= 0, m * _POW10[np.maximum(e, 0)], m / _POW10[np.maximum(-e, 0)])


def split(
    values: np.ndarray,
    emin: int = -_EXP_CLIP,
    emax: int = _EXP_CLIP,
    precision: int = DEFAULT_PRECISION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Round to ``precision`` significant digits: ``(mantissa, exponent, is_nan)`` arrays.

    ``mantissa`` (int64) is signed, ``10**(precision-1) <= |mantissa| < 10**precision``
    (100..999 at the default 3) or 0 (then ``exponent`` is 0).
    Values with an exponent below ``emin`` become zero; above ``emax`` (and NaN/inf) are
    flagged in ``is_nan`` (their mantissa and exponent are 0).
    """
    _check_precision(precision)
    lowest, top = 10 ** (precision - 1), 10**precision
    x = np.asarray(values, dtype=np.float64)
    ax = np.abs(x)
    ok = np.isfinite(x) & (ax > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.floor(np.log10(np.where(ok, ax, 1.0))).astype(np.int64) - (precision - 1)
    np.clip(e, -_EXP_CLIP, _EXP_CLIP, out=e)
    m = _round_half_away(_scale_down(x, e))
    # log10 may be off by one next to a power of ten: renormalise the mantissa
    big = np.abs(m) >= top
    if big.any():
        e = np.where(big, e + 1, e)
        m = np.where(big, _round_half_away(_scale_down(x, e)), m)
    small = ok & (np.abs(m) < lowest)
    if small.any():
        e = np.where(small, e - 1, e)
        m = np.where(small, _round_half_away(_scale_down(x, e)), m)
    is_nan = ~np.isfinite(x) | (ok & (e > emax))
    keep = ok & ~is_nan & (e >= emin)
    mantissa = np.where(keep, m, 0.0).astype(np.int64)
    exponent = np.where(keep, e, 0)
    return mantissa, exponent, is_nan


def _check_precision(precision: int) -> None:
    if not isinstance(precision, int) or not 1 <= precision <= MAX_PRECISION:
        raise ConfigError(
            f"precision: expected an integer in 1..{MAX_PRECISION}, got {precision!r}"
        )


def round_sig(values: np.ndarray, precision: int = DEFAULT_PRECISION) -> np.ndarray:
    """Round to ``precision`` significant digits exactly as the encodings do (no range limits).

    Within an encoding's exponent range, ``round_sig(x, enc.precision) == enc.round(x)``.
    """
    m, e, is_nan = split(values, precision=precision)
    out = compose(m, e)
    return np.where(is_nan, np.nan, out) if is_nan.any() else out


def round_sig3(values: np.ndarray) -> np.ndarray:
    """:func:`round_sig` at 3 digits, the precision of every generated dataset so far."""
    return round_sig(values, 3)


class NumberEncoding:
    """Base class: one subclass per encoding; instances are stateless (use :func:`get_encoding`)."""

    name: str
    tokens_per_number: int
    precision: int = DEFAULT_PRECISION
    emin: int = -100
    emax: int = 100

    def vocabulary(self) -> list[str]:
        """Every token the encoding can emit, in a fixed order of contiguous blocks."""
        return list(self._vocab)

    # ---- encoding -----------------------------------------------------------------------
    def encode_ids(self, values: np.ndarray) -> np.ndarray:
        """Ids into :meth:`vocabulary`, shape ``values.shape + (tokens_per_number,)``, int64."""
        m, e, is_nan = split(values, self.emin, self.emax, self.precision)
        ids = self._ids(m, e)
        if is_nan.any():
            ids[is_nan] = self._nan_id
        return ids

    def encode(self, values: np.ndarray | Sequence[float]) -> list[str]:
        """Flat token list of a 1-D array of numbers."""
        vocab = self._vocab
        return [vocab[i] for i in self.encode_ids(np.asarray(values).ravel()).ravel().tolist()]

    def round(self, values: np.ndarray) -> np.ndarray:
        """The value ``decode(encode(values))`` gives (NaN where encode writes ``NaN``)."""
        m, e, is_nan = split(values, self.emin, self.emax, self.precision)
        out = compose(m, e)
        return np.where(is_nan, np.nan, out) if is_nan.any() else out

    # ---- decoding -----------------------------------------------------------------------
    def decode(self, tokens: Sequence[str], count: int) -> np.ndarray:
        """Exactly ``count`` numbers from ``count * tokens_per_number`` tokens.

        Raises :class:`DecodeError` on a wrong length, an unknown or misplaced token, or NaN.
        """
        k = self.tokens_per_number
        if len(tokens) != count * k:
            raise DecodeError(
                f"{self.name}: expected {count * k} tokens for {count} numbers, got {len(tokens)}"
            )
        meaning = self._meaning
        mant = np.empty(count, dtype=np.int64)
        expo = np.empty(count, dtype=np.int64)
        try:
            for i in range(count):
                mant[i], expo[i] = self._parse([meaning[t] for t in tokens[i * k : (i + 1) * k]])
        except KeyError as err:
            raise DecodeError(f"{self.name}: unknown token {err.args[0]!r}") from None
        return compose(mant, expo)

    # ---- subclass hooks -----------------------------------------------------------------
    def _ids(self, m: np.ndarray, e: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _parse(self, parts: list[tuple[str, int]]) -> tuple[int, int]:
        """(mantissa, exponent) of one number's (kind, value) token meanings."""
        raise NotImplementedError

    def _build_vocab(self) -> list[str]:
        raise NotImplementedError

    def __init__(self) -> None:
        self._vocab: list[str] = self._build_vocab()
        self._nan_id = self._vocab.index(NAN_TOKEN)
        self._meaning: dict[str, tuple[str, int]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(precision={self.precision})"


def _exp_tokens(emin: int, emax: int) -> list[str]:
    return [f"E{e}" for e in range(emin, emax + 1)]


def _expect(parts: list[tuple[str, int]], kinds: str) -> list[int]:
    """Values of ``parts`` after checking their kinds, one letter each (s, d, m, e)."""
    out = []
    for (kind, value), want in zip(parts, kinds):
        if kind != want:
            if kind == "n":
                raise DecodeError("NaN in a predicted number")
            raise DecodeError(f"token of kind {kind!r} where {want!r} was expected")
        out.append(value)
    return out


class P10(NumberEncoding):
    """Sign, ``precision`` decimal digits, exponent: 3.14 -> ``+ 3 1 4 E-2`` (precision 3)."""

    name = "P10"
    tokens_per_number = 5

    def _build_vocab(self) -> list[str]:
        return ["+", "-", *map(str, range(10)), *_exp_tokens(self.emin, self.emax), NAN_TOKEN]

    def __init__(self, precision: int = DEFAULT_PRECISION) -> None:
        _check_precision(precision)
        self.precision, self.tokens_per_number = precision, precision + 2
        super().__init__()
        self._meaning = {"+": ("s", 1), "-": ("s", -1), NAN_TOKEN: ("n", 0)}
        self._meaning.update({str(d): ("d", d) for d in range(10)})
        self._meaning.update({f"E{e}": ("e", e) for e in range(self.emin, self.emax + 1)})

    def _ids(self, m: np.ndarray, e: np.ndarray) -> np.ndarray:
        a = np.abs(m)
        p = self.precision
        ids = np.empty(m.shape + (p + 2,), dtype=np.int64)
        ids[..., 0] = m < 0
        for k in range(p):  # most significant digit first
            ids[..., 1 + k] = 2 + (a // 10 ** (p - 1 - k)) % 10
        ids[..., p + 1] = 12 - self.emin + e
        return ids

    def _parse(self, parts: list[tuple[str, int]]) -> tuple[int, int]:
        sign, *digits, e = _expect(parts, "s" + "d" * self.precision + "e")
        mant = 0
        for d in digits:
            mant = 10 * mant + d
        return sign * mant, e


class P1000(NumberEncoding):
    """Sign, mantissa as one base-1000 digit, exponent: 3.14 -> ``+ 314 E-2``."""

    name = "P1000"
    tokens_per_number = 3

    def _build_vocab(self) -> list[str]:
        return ["+", "-", *map(str, range(1000)), *_exp_tokens(self.emin, self.emax), NAN_TOKEN]

    def __init__(self) -> None:
        super().__init__()
        self._meaning = {"+": ("s", 1), "-": ("s", -1), NAN_TOKEN: ("n", 0)}
        self._meaning.update({str(d): ("m", d) for d in range(1000)})
        self._meaning.update({f"E{e}": ("e", e) for e in range(self.emin, self.emax + 1)})

    def _ids(self, m: np.ndarray, e: np.ndarray) -> np.ndarray:
        ids = np.empty(m.shape + (3,), dtype=np.int64)
        ids[..., 0] = m < 0
        ids[..., 1] = 2 + np.abs(m)
        ids[..., 2] = 1002 - self.emin + e
        return ids

    def _parse(self, parts: list[tuple[str, int]]) -> tuple[int, int]:
        sign, mant, e = _expect(parts, "sme")
        return sign * mant, e


class B1999(NumberEncoding):
    """Signed mantissa, exponent: 3.14 -> ``N314 E-2``, -3.14 -> ``N-314 E-2``."""

    name = "B1999"
    tokens_per_number = 2

    def _build_vocab(self) -> list[str]:
        mants = [f"N{m}" for m in range(-999, 1000)]
        return [*mants, *_exp_tokens(self.emin, self.emax), NAN_TOKEN]

    def __init__(self) -> None:
        super().__init__()
        self._meaning = {NAN_TOKEN: ("n", 0)}
        self._meaning.update({f"N{m}": ("m", m) for m in range(-999, 1000)})
        self._meaning.update({f"E{e}": ("e", e) for e in range(self.emin, self.emax + 1)})

    def _ids(self, m: np.ndarray, e: np.ndarray) -> np.ndarray:
        ids = np.empty(m.shape + (2,), dtype=np.int64)
        ids[..., 0] = m + 999
        ids[..., 1] = 1999 - self.emin + e
        return ids

    def _parse(self, parts: list[tuple[str, int]]) -> tuple[int, int]:
        mant, e = _expect(parts, "me")
        return mant, e


class FP15(NumberEncoding):
    """One token per number, ``N{signed mantissa}e{e + 9}``: 3.14 -> ``N314e7``.

    Exponents -9..6 (token exponents 0..15) cover about 1e-7 .. 1e9; smaller magnitudes
    encode as ``N0e0``, larger ones as ``NaN``. 1 + 16 * 1800 + 1 = 28,802 tokens.
    """

    name = "FP15"
    tokens_per_number = 1
    emin = -9
    emax = 6
    _MANTISSAS = (*range(-999, -99), *range(100, 1000))  # 1800 normalised mantissas

    def _build_vocab(self) -> list[str]:
        toks = ["N0e0"]
        for k in range(self.emax - self.emin + 1):
            toks.extend(f"N{m}e{k}" for m in self._MANTISSAS)
        return [*toks, NAN_TOKEN]

    def __init__(self) -> None:
        super().__init__()
        self._meaning = {NAN_TOKEN: ("n", 0), "N0e0": ("f", 0)}
        for k in range(self.emax - self.emin + 1):
            for m in self._MANTISSAS:
                self._meaning[f"N{m}e{k}"] = ("f", m * 64 + k)  # packed (m, k)

    def _ids(self, m: np.ndarray, e: np.ndarray) -> np.ndarray:
        # mantissa index: -999..-100 -> 0..899, 100..999 -> 900..1799
        idx = np.where(m < 0, m + 999, m + 800)
        ids = 1 + (e - self.emin) * 1800 + idx
        ids = np.where(m == 0, 0, ids)
        return ids[..., None]

    def _parse(self, parts: list[tuple[str, int]]) -> tuple[int, int]:
        ((kind, packed),) = parts
        if kind == "n":
            raise DecodeError("NaN in a predicted number")
        if packed == 0:
            return 0, 0
        m, k = divmod(packed, 64)  # floor division keeps k in 0..63 for negative m
        return m, k + self.emin


class P10000(NumberEncoding):
    """Sign, four-digit mantissa token, exponent: 3.14 -> ``+ N3140 E-3`` (4 digits)."""

    name = "P10000"
    tokens_per_number = 3
    precision = 4

    def _build_vocab(self) -> list[str]:
        mants = [f"N{m:04d}" for m in range(10000)]
        return ["+", "-", *mants, *_exp_tokens(self.emin, self.emax), NAN_TOKEN]

    def __init__(self) -> None:
        super().__init__()
        self._meaning = {"+": ("s", 1), "-": ("s", -1), NAN_TOKEN: ("n", 0)}
        self._meaning.update({f"N{m:04d}": ("m", m) for m in range(10000)})
        self._meaning.update({f"E{e}": ("e", e) for e in range(self.emin, self.emax + 1)})

    def _ids(self, m: np.ndarray, e: np.ndarray) -> np.ndarray:
        ids = np.empty(m.shape + (3,), dtype=np.int64)
        ids[..., 0] = m < 0
        ids[..., 1] = 2 + np.abs(m)
        ids[..., 2] = 10002 - self.emin + e
        return ids

    def _parse(self, parts: list[tuple[str, int]]) -> tuple[int, int]:
        sign, mant, e = _expect(parts, "sme")
        return sign * mant, e


_CLASSES: dict[str, type[NumberEncoding]] = {
    "P10": P10,
    "P1000": P1000,
    "B1999": B1999,
    "FP15": FP15,
    "P10000": P10000,
}
#: encodings whose precision is a parameter (the others are defined by theirs)
VARIABLE_PRECISION = ("P10",)


def get_encoding(name: str, precision: int | None = None) -> NumberEncoding:
    """The (shared, stateless) encoding called ``name``, at ``precision`` significant digits.

    ``precision=None``: the encoding's own (3; P10000: 4). Only P10 takes another one.
    """
    if name not in _CLASSES:
        raise ConfigError(f"encoding: unknown value {name!r}; allowed: {', '.join(ENCODING_NAMES)}")
    cls = _CLASSES[name]
    if precision is None or precision == cls.precision:
        return _make(name, None)
    if name not in VARIABLE_PRECISION:
        raise ConfigError(
            f"precision: encoding {name} writes {cls.precision} significant digits (got "
            f"{precision}); encodings with a precision parameter: {', '.join(VARIABLE_PRECISION)}"
        )
    _check_precision(precision)
    return _make(name, precision)


@cache
def _make(name: str, precision: int | None) -> NumberEncoding:
    return _CLASSES[name]() if precision is None else _CLASSES[name](precision)
