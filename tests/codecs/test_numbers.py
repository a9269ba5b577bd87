"""Number encodings: exact token forms, round trips, vectorised ids, malformed sequences."""

import numpy as np
import pytest

from synthmath.codecs.numbers import ENCODING_NAMES, get_encoding, round_sig3
from synthmath.core.errors import ConfigError, DecodeError
from synthmath.tasks.registry import make_task

# |round(x) - x| <= 0.5 * 10^e with |x| >= 100.5 * 10^e wherever the error reaches 0.5 * 10^e
# (below 100.5 * 10^e the error is |x| - 100 * 10^e < 0.5 * 10^e): relative error <= 0.5/100.5
MAX_REL_ROUNDING = 0.5 / 100.5
# log10 of the magnitudes each encoding covers without zero / NaN (safely inside the range)
SAFE_LOG10 = {
    "P10": (-97, 101),
    "P1000": (-97, 101),
    "B1999": (-97, 101),
    "FP15": (-6.9, 8.9),
    "P10000": (-96, 101),
}
THREE_DIGITS = [name for name in ENCODING_NAMES if get_encoding(name).precision == 3]


def random_values(name: str, n: int = 20000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = SAFE_LOG10[name]
    x = 10.0 ** rng.uniform(lo, hi, n) * rng.choice([-1.0, 1.0], n)
    # values next to powers of ten, where log10 is most fragile, and halfway points
    k = np.arange(int(np.ceil(lo)) + 1, int(hi))
    p = 10.0**k
    edges = np.concatenate([p, np.nextafter(p, 0), np.nextafter(p, np.inf), 0.9995 * p, 1.005 * p])
    return np.concatenate([x, edges, -edges])


@pytest.mark.parametrize("name", THREE_DIGITS)
def test_round_trip_within_three_digit_rounding(name):
    enc = get_encoding(name)
    x = random_values(name)
    decoded = enc.decode(enc.encode(x), len(x))
    np.testing.assert_array_equal(decoded, enc.round(x))
    assert np.all(np.abs(decoded - x) <= MAX_REL_ROUNDING * np.abs(x) * (1 + 1e-12))
    np.testing.assert_array_equal(decoded, round_sig3(x))
    # three significant digits: the mantissa is an integer in 100..999
    e = np.floor(np.log10(np.abs(decoded))) - 2
    m = decoded / 10.0**e
    assert np.all((np.abs(m) > 99.999) & (np.abs(m) < 999.001))
    np.testing.assert_allclose(m, np.round(m), rtol=1e-9)
    # decoding is idempotent: re-encoding the decoded values gives the same tokens
    assert enc.encode(decoded) == enc.encode(x)


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_encode_ids_agree_with_encode_and_vocabulary(name):
    enc = get_encoding(name)
    vocab = enc.vocabulary()
    assert len(set(vocab)) == len(vocab)
    x = np.concatenate([random_values(name, 500, seed=1), [0.0, -0.0, np.nan, np.inf, 1e-300]])
    ids = enc.encode_ids(x)
    assert ids.dtype == np.int64 and ids.shape == (len(x), enc.tokens_per_number)
    assert [vocab[i] for i in ids.ravel()] == enc.encode(x)
    grid = x[:24].reshape(2, 3, 4)
    assert enc.encode_ids(grid).shape == (2, 3, 4, enc.tokens_per_number)
    np.testing.assert_array_equal(enc.encode_ids(grid).reshape(-1, enc.tokens_per_number), ids[:24])


def test_vocabulary_sizes():
    sizes = {name: len(get_encoding(name).vocabulary()) for name in ENCODING_NAMES}
    # P10: 2 signs + 10 digits + 201 exponents + NaN; FP15: zero + 16 * 1800 + NaN
    assert sizes == {"P10": 214, "P1000": 1204, "B1999": 2201, "FP15": 28802, "P10000": 10204}


EXACT = {
    "P10": {
        3.14: "+ 3 1 4 E-2",
        -3.14: "- 3 1 4 E-2",
        0.0: "+ 0 0 0 E0",
        1000.0: "+ 1 0 0 E1",
        999.5: "+ 1 0 0 E1",
        998.5: "+ 9 9 9 E0",
        1e-120: "+ 0 0 0 E0",
        1e120: "NaN NaN NaN NaN NaN",
    },
    "P1000": {
        3.14: "+ 314 E-2",
        -3.14: "- 314 E-2",
        0.0: "+ 0 E0",
        1000.0: "+ 100 E1",
        999.5: "+ 100 E1",
        1e-120: "+ 0 E0",
        -1e120: "NaN NaN NaN",
    },
    "B1999": {
        3.14: "N314 E-2",
        -3.14: "N-314 E-2",
        0.0: "N0 E0",
        1000.0: "N100 E1",
        -999.5: "N-100 E1",
        1e-120: "N0 E0",
        np.inf: "NaN NaN",
    },
    "P10000": {
        3.14: "+ N3140 E-3",
        -3.14159: "- N3142 E-3",
        0.0: "+ N0000 E0",
        9999.5: "+ N1000 E1",
        1e-120: "+ N0000 E0",
        -1e120: "NaN NaN NaN",
    },
    "FP15": {
        3.14: "N314e7",
        -3.14: "N-314e7",
        0.0: "N0e0",
        1000.0: "N100e10",
        999.5: "N100e10",
        1e-120: "N0e0",
        1e-8: "N0e0",  # below 1e-7: zero
        9.9996e-8: "N100e0",  # rounds up into the range
        1.23e-7: "N123e0",
        9.99e8: "N999e15",
        9.996e8: "NaN",  # rounds up out of the range
        1e10: "NaN",
        -1e10: "NaN",
        np.nan: "NaN",
    },
}


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_exact_token_forms(name):
    enc = get_encoding(name)
    for value, tokens in EXACT[name].items():
        assert " ".join(enc.encode([value])) == tokens, value


def test_round_half_away_from_zero_and_nan():
    enc = get_encoding("P10")
    np.testing.assert_array_equal(enc.round(np.array([1.255e3, -1.255e3, 0.0])), [1260, -1260, 0])
    assert np.isnan(enc.round(np.array([1e200]))[0])
    assert np.isnan(get_encoding("FP15").round(np.array([2e9]))[0])


@pytest.mark.parametrize("name", ["P10", "P1000", "B1999", "FP15"])
def test_tokens_per_5x5_matrix(name):
    task = make_task("linalg", {"op": "transpose", "dim": 5, "encoding": name})
    ids, lengths = task.encode_src(task.sample(3, np.random.default_rng(0)))
    expected = {"P10": 127, "P1000": 77, "B1999": 52, "FP15": 27}[name]
    assert ids.shape == (3, expected) and np.all(lengths == expected)


MALFORMED = {
    "P10": [
        ["+", "3", "1", "4"],  # too short
        ["+", "3", "1", "4", "E-2", "+"],  # too long
        ["3", "+", "1", "4", "E-2"],  # sign in the wrong place
        ["+", "3", "1", "E-2", "4"],  # exponent in the wrong place
        ["+", "3", "1", "14", "E-2"],  # not a digit
        ["+", "3", "1", "4", "E-101"],  # exponent out of range
        ["NaN"] * 5,
        ["+", "3", "NaN", "4", "E-2"],
    ],
    "P1000": [
        ["+", "314"],
        ["314", "+", "E-2"],
        ["+", "1000", "E-2"],
        ["+", "314", "E-2", "E-2"],
        ["NaN"] * 3,
        ["-", "-314", "E-2"],
    ],
    "B1999": [
        ["N314"],
        ["E-2", "N314"],
        ["N314", "N314"],
        ["N1000", "E0"],
        ["+", "314", "E-2"][:2],
        ["NaN", "NaN"],
    ],
    "P10000": [[], ["+", "N3140"], ["+", "3140", "E-3"], ["N3140", "+", "E-3"], ["+", "NaN", "E0"]],
    "FP15": [[], ["N314e16"], ["N50e3"], ["N314e7", "N314e7"], ["NaN"], ["N314"], ["E-2"]],
}


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_malformed_sequences_raise_decode_error(name):
    enc = get_encoding(name)
    for tokens in MALFORMED[name]:
        with pytest.raises(DecodeError):
            enc.decode(tokens, 1)
    with pytest.raises(DecodeError):  # right tokens, wrong count
        enc.decode(enc.encode([1.0, 2.0]), 1)


def test_non_normalised_mantissas_decode():
    assert get_encoding("P10").decode(["+", "0", "1", "4", "E0"], 1)[0] == 14.0
    assert get_encoding("B1999").decode(["N-5", "E1"], 1)[0] == -50.0


def test_unknown_encoding_names_allowed_values():
    with pytest.raises(ConfigError, match="P1000"):
        get_encoding("P100")


# ---- precision ------------------------------------------------------------------------------
def _decimal_round(x: float, digits: int) -> tuple[int, int]:
    """(signed mantissa, exponent) of ``x`` rounded half away from zero to ``digits``
    significant digits by :mod:`decimal`, normalised as the encodings write it."""
    from decimal import ROUND_HALF_UP, Decimal

    d = Decimal(x)  # the exact binary value
    if d == 0:
        return 0, 0
    exponent = d.adjusted() - (digits - 1)
    q = d.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP)
    mantissa = int(q.scaleb(-exponent))
    if abs(mantissa) >= 10**digits:  # rounded up to the next power of ten
        mantissa, exponent = mantissa // 10, exponent + 1
    return mantissa, exponent


@pytest.mark.parametrize("digits", [2, 3, 4, 5])
def test_round_sig_matches_decimal_rounding(digits):
    from synthmath.codecs.numbers import round_sig, split

    rng = np.random.default_rng(digits)
    x = rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000)
    expected = [_decimal_round(float(v), digits) for v in x]  # (mantissa, exponent)
    m, e, _ = split(x, precision=digits)
    assert list(zip(m.tolist(), e.tolist())) == expected
    enc = get_encoding("P10", precision=digits)
    assert enc.tokens_per_number == digits + 2
    # mantissa * 10**e as float: exact powers of ten end at 1e22, so allow one rounding beyond
    values = np.array([float(f"{mant}e{exp}") for mant, exp in expected])
    np.testing.assert_allclose(enc.decode(enc.encode(x), len(x)), values, rtol=5e-16, atol=0)
    np.testing.assert_allclose(round_sig(x, digits), values, rtol=5e-16, atol=0)
    if digits == 4:
        p4 = get_encoding("P10000")
        tokens = p4.encode(x)
        assert tokens[1::3] == [f"N{abs(v):04d}" for v in m.tolist()]
        np.testing.assert_array_equal(p4.decode(tokens, len(x)), enc.decode(enc.encode(x), len(x)))


def test_default_token_streams_are_unchanged():
    """Digests of P10/P1000/B1999/FP15 streams and round_sig3, computed before precision was a
    parameter: the default encodings write exactly what they wrote before."""
    import hashlib

    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.standard_normal(2000) * 10.0 ** rng.integers(-12, 12, 2000),
            [0.0, 999.5, -999.5, 1e-320, 1e300, np.inf, -np.inf, np.nan, 0.1, 1.0, 100.0],
        ]
    )
    digests = {
        "P10": "d9248338af1a4ec8",
        "P1000": "f7c5496b8496d0aa",
        "B1999": "cf49b12e7b325e82",
        "FP15": "c00b2e0f3ebbb4dd",
    }
    for name, digest in digests.items():
        enc = get_encoding(name)
        assert hashlib.sha256(" ".join(enc.encode(x)).encode()).hexdigest()[:16] == digest, name
        assert enc is get_encoding(name, precision=3)
    rounded = np.nan_to_num(round_sig3(x), nan=7.0).tobytes()
    assert hashlib.sha256(rounded).hexdigest()[:16] == "9b5252d7bac393f4"


def test_p10000_tokens_and_precision_errors():
    from synthmath.core.errors import ConfigError, DecodeError

    enc = get_encoding("P10000")
    assert enc.encode([3.14159, -0.5, 0.0]) == [
        *("+", "N3142", "E-3"),
        *("-", "N5000", "E-4"),
        *("+", "N0000", "E0"),
    ]
    assert len(enc.vocabulary()) == 2 + 10000 + 201 + 1
    assert get_encoding("P10", precision=4).encode([3.14159]) == ["+", "3", "1", "4", "2", "E-3"]
    with pytest.raises(DecodeError):
        enc.decode(["+", "3142", "E-3"], 1)
    with pytest.raises(ConfigError, match="precision"):
        get_encoding("B1999", precision=4)
    with pytest.raises(ConfigError, match="precision"):
        get_encoding("P10", precision=0)
