"""Non-negative integers as digit arrays: vectorised sampling and schoolbook arithmetic.

A batch of ``n`` integers is an ``(n, W)`` uint8 array of base-10 digits, **least significant
first**: column ``k`` holds the digit of ``10**k`` and columns past a number's length are 0.
Numbers of 20 to 40 digits overflow int64, so sums and products are computed on the digit
arrays themselves (one loop over columns, vectorised over the batch). Least significant first
also means that zero-padding on the right (what :func:`synthmath.core.raw.concat_raw` does to
batches of different widths) only adds leading zeros: values never change.

    >>> a = from_ints([95, 7], 2); b = from_ints([8, 993], 3)
    >>> to_ints(add(a, b)), to_ints(multiply(a, b))
    ([103, 1000], [760, 6951])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LENGTH_DISTS = ("uniform_value", "uniform_length")


def from_ints(values: Sequence[int], width: int) -> np.ndarray:
    """Digit array ``(len(values), width)`` of Python ints (any size; for tests and the CLI)."""
    out = np.zeros((len(values), width), dtype=np.uint8)
    for row, value in enumerate(values):
        if value < 0:
            raise ValueError(f"from_ints: negative value {value}")
        text = str(value)[::-1]
        if len(text) > width and value != 0:
            raise ValueError(f"from_ints: {value} has more than {width} digits")
        out[row, : len(text)] = np.frombuffer(text.encode(), dtype=np.uint8) - ord("0")
    return out


def to_ints(digits: np.ndarray) -> list[int]:
    """Python ints of the rows of a digit array (exact, any size)."""
    rows = np.asarray(digits)[:, ::-1].astype(np.uint8) + ord("0")
    return [int(row.tobytes().decode()) if row.size else 0 for row in rows]


def digit_count(digits: np.ndarray) -> np.ndarray:
    """Number of digits of each row without leading zeros (0 has one digit): ``(n,)`` int64."""
    digits = np.asarray(digits)
    nonzero = digits != 0
    highest = digits.shape[1] - np.argmax(nonzero[:, ::-1], axis=1)
    return np.where(nonzero.any(axis=1), highest, 1).astype(np.int64)


def length_probabilities(lo: int, hi: int, dist: str) -> np.ndarray:
    """Probability of each digit count ``lo..hi`` under ``dist`` (see :func:`sample_numbers`)."""
    if dist not in LENGTH_DISTS:
        raise ValueError(f"length_dist: unknown value {dist!r}; allowed: {', '.join(LENGTH_DISTS)}")
    if not 1 <= lo <= hi:
        raise ValueError(f"digit counts: need 1 <= lo <= hi, got lo={lo}, hi={hi}")
    counts = np.arange(lo, hi + 1)
    if dist == "uniform_length":
        weights = np.ones(len(counts))
    else:
        # k-digit numbers: 9 * 10**(k-1), and 0..9 for k = 1; scaled by 10**-hi (no overflow)
        weights = 9.0 * 10.0 ** (counts - 1.0 - hi)
        if lo == 1:
            weights[0] = 10.0 ** (-hi + 1.0)
    return weights / weights.sum()


def sample_numbers(n: int, lo: int, hi: int, dist: str, rng: np.random.Generator) -> np.ndarray:
    """``n`` random integers of ``lo`` to ``hi`` digits as an ``(n, hi)`` digit array.

    ``dist="uniform_value"``: uniform over the integers in ``[10**(lo-1), 10**hi - 1]`` (from 0
    when ``lo == 1``), so most numbers have ``hi`` digits. ``"uniform_length"``: the digit
    count is uniform in ``lo..hi``, then the value is uniform among numbers of that many digits,
    which gives short numbers more weight.
    """
    probs = length_probabilities(lo, hi, dist)
    counts = lo + rng.choice(len(probs), size=n, p=probs)
    digits = rng.integers(0, 10, size=(n, hi), dtype=np.uint8)
    leading = rng.integers(1, 10, size=n, dtype=np.uint8)
    digits[np.arange(hi)[None, :] >= counts[:, None]] = 0
    multi = counts >= 2  # a one-digit number may be 0; longer ones have a non-zero lead
    digits[np.flatnonzero(multi), counts[multi] - 1] = leading[multi]
    return digits


def _propagate_carries(columns: np.ndarray) -> np.ndarray:
    """Column sums ``(n, W)`` (any non-negative ints) -> digit array ``(n, W)``; the top carry
    must be zero (callers size W for the largest result)."""
    out = np.empty(columns.shape, dtype=np.uint8)
    carry = np.zeros(columns.shape[0], dtype=np.int64)
    for k in range(columns.shape[1]):
        total = columns[:, k] + carry
        out[:, k] = total % 10
        carry = total // 10
    if carry.any():
        raise OverflowError("result wider than the digit array")
    return out


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Digit-wise sum with carries: ``(n, Wa), (n, Wb) -> (n, max(Wa, Wb) + 1)``."""
    width = max(a.shape[1], b.shape[1]) + 1
    columns = np.zeros((a.shape[0], width), dtype=np.int64)
    columns[:, : a.shape[1]] += a
    columns[:, : b.shape[1]] += b
    return _propagate_carries(columns)


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Schoolbook product: ``(n, Wa), (n, Wb) -> (n, Wa + Wb)`` (column sums, then carries)."""
    wa, wb = a.shape[1], b.shape[1]
    columns = np.zeros((a.shape[0], wa + wb), dtype=np.int64)
    a64 = a.astype(np.int64)
    for j in range(wb):
        columns[:, j : j + wa] += a64 * b[:, j : j + 1]
    return _propagate_carries(columns)


def modulo(digits: np.ndarray, modulus: int) -> np.ndarray:
    """Remainders ``(n,)`` int64 of the rows by ``modulus`` (Horner's scheme, most significant
    digit first; needs ``10 * modulus < 2**63``)."""
    if not 1 <= modulus <= 10**17:
        raise ValueError(f"modulus: must be in 1..10**17, got {modulus}")
    rest = np.zeros(digits.shape[0], dtype=np.int64)
    for k in range(digits.shape[1] - 1, -1, -1):
        rest = (rest * 10 + digits[:, k]) % modulus
    return rest


def from_int64(values: np.ndarray, width: int) -> np.ndarray:
    """Digit array ``(n, width)`` of non-negative int64 values below ``10**width``."""
    values = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width, dtype=np.int64)
    return ((values[:, None] // powers[None, :]) % 10).astype(np.uint8)
