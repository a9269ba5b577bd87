"""Prefix tokens: raw trees <-> model tokens (specs/expressions.md, "Prefix tokens")."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from synthmath.codecs.numbers import ENCODING_NAMES, get_encoding
from synthmath.core.errors import ConfigError, DecodeError
from synthmath.expressions.errors import ExprParseError
from synthmath.expressions.operators import (
    OPERATORS,
    float_token,
    is_float,
    is_int,
    subtree_end,
)
from synthmath.expressions.prefix import PrefixCodec

_OPS = sorted(OPERATORS)
_NAMED = ("x", "t", "Y", "Y'", "Y''", "c", "c1", "c2", "x_0", "x_3", "x_1_2", "u_4", "pi", "E",
          "euler_gamma")  # fmt: skip


def random_leaf(rng: np.random.Generator, floats: bool) -> str:
    kind = rng.integers(7 if floats else 5)
    if kind == 0:
        return str(rng.choice(_NAMED))
    if kind == 1:
        return f"i{int(rng.integers(-12, 13))}"
    if kind == 2:  # big, either sign, up to 60 decimal digits
        v = int(rng.integers(1, 10**9)) ** int(rng.integers(1, 7))
        return f"i{v if rng.random() < 0.5 else -v}"
    if kind == 3:
        return "i0"
    if kind == 4:
        return f"i-{int(rng.integers(1, 10**6))}"
    if kind == 5:  # magnitudes 1e-9 .. 1e8: inside FP15's range, some underflow to zero
        v = float(10 ** rng.uniform(-9, 8)) * (1 if rng.random() < 0.5 else -1)
        return float_token(v)
    return str(rng.choice(["f0.0", "f-0.0", "f1.0", "f0.3142", "f-2.5e-05", "f999.5"]))


def random_tree(rng: np.random.Generator, max_nodes: int = 40, floats: bool = True):
    """Prefix nodes: an operator while the budget lasts (random), else leaves."""
    out, need = [], 1
    while need:
        if len(out) + need < max_nodes and rng.random() < 0.55:
            op = str(rng.choice(_OPS))
            out.append(op)
            need += OPERATORS[op].arity - 1
        else:
            out.append(random_leaf(rng, floats))
            need -= 1
    return tuple(out)


# ---- examples of the spec ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, tokens",
    [
        ("add i2 mul i3 add i5 i2", "add INT+ 2 mul INT+ 3 add INT+ 5 INT+ 2"),
        ("mul add i-1 x exp x", "mul add INT- 1 x exp x"),
        ("mul div i-1 i2 x", "mul div INT- 1 INT+ 2 x"),
        ("mul f0.3142 x", "mul + 314 E-3 x"),
        ("i0", "INT+ 0"),
        ("i-34", "INT- 3 4"),
        ("pow x i-1", "pow x INT- 1"),
        ("add Y'' mul c1 pi", "add Y'' mul c1 pi"),
    ],
)
def test_spec_examples(raw, tokens):
    codec = PrefixCodec()
    assert codec.encode(tuple(raw.split())) == tokens.split()
    assert codec.parse(tokens.split()) == codec.round_floats(tuple(raw.split()))


@pytest.mark.parametrize(
    "base, value, tokens",
    [
        (100, 1234, "INT+ 12 34"),
        (100, -5, "INT- 5"),
        (1000, 10**6, "INT+ 1 0 0"),
        (10000, -123456789, "INT- 1 2345 6789"),
        (10, 10**30, "INT+ 1" + " 0" * 30),
        (2, 6, "INT+ 1 1 0"),
    ],
)
def test_int_bases(base, value, tokens):
    codec = PrefixCodec(int_base=base)
    assert codec.encode((f"i{value}",)) == tokens.split()
    assert codec.parse(tokens.split()) == (f"i{value}",)


def test_float_blocks_of_every_encoding():
    for name, block in [
        ("P10", "+ 3 1 4 E-2"),
        ("P1000", "+ 314 E-2"),
        ("B1999", "N314 E-2"),
        ("FP15", "N314e7"),
        ("P10000", "+ N3142 E-3"),
    ]:
        codec = PrefixCodec(float_encoding=name)
        assert codec.encode(("f3.1416",)) == block.split(), name
        expected = 3.142 if name == "P10000" else 3.14
        assert codec.parse(block.split()) == (float_token(expected),), name
    codec = PrefixCodec(float_encoding="P10", float_precision=5)
    assert codec.encode(("f-3.14159265",)) == "- 3 1 4 1 6 E-4".split()


def test_leading_zeros_parse():
    codec = PrefixCodec()
    assert codec.parse("add INT+ 0 0 7 INT- 0".split()) == ("add", "i7", "i0")
    assert PrefixCodec(float_encoding="P10").parse("+ 0 1 4 E0".split()) == ("f14.0",)


def test_vocabulary():
    codec = PrefixCodec(int_base=100, float_encoding="P1000")
    vocab = codec.vocabulary(["add", "sin"], ["x", "Y'", "pi"])
    assert vocab[:7] == ["add", "sin", "x", "Y'", "pi", "INT+", "INT-"]
    assert vocab[7:107] == [str(d) for d in range(100)]
    assert len(vocab) == len(set(vocab))
    assert set(get_encoding("P1000").vocabulary()) <= set(vocab)
    assert "N0e0" not in vocab
    plain = PrefixCodec(float_encoding=None).vocabulary(["mul"], ["x"])
    assert plain == ["mul", "x", "INT+", "INT-", *map(str, range(10))]
    with pytest.raises(ValueError, match="unknown operator 'plus'"):
        codec.vocabulary(["plus"], [])
    with pytest.raises(ValueError, match="'i5' is not a variable"):
        codec.vocabulary([], ["i5"])


def test_every_encoded_token_is_in_the_vocabulary():
    rng = np.random.default_rng(3)
    for name in ENCODING_NAMES:
        codec = PrefixCodec(int_base=1000, float_encoding=name)
        vocab = set(codec.vocabulary(_OPS, _NAMED))
        for _ in range(30):
            assert set(codec.encode(random_tree(rng))) <= vocab


# ---- round trip ---------------------------------------------------------------------------------
@pytest.mark.parametrize("base", [10, 100, 1000, 10000])
@pytest.mark.parametrize("encoding", ENCODING_NAMES)
def test_round_trip(base, encoding):
    codec = PrefixCodec(int_base=base, float_encoding=encoding, max_len=10**6)
    enc = get_encoding(encoding)
    rng = np.random.default_rng([base, len(encoding)])
    for _ in range(60):
        tree = random_tree(rng)
        back = codec.parse(codec.encode(tree))
        assert len(back) == len(tree)
        for raw, got in zip(tree, back):
            if is_float(raw):  # compare after the encoding's own rounding
                assert got == float_token(float(enc.round(np.array([float(raw[1:])]))[0]))
            elif is_int(raw):
                assert int(got[1:]) == int(raw[1:])
            else:
                assert got == raw
        assert back == codec.round_floats(tree)
        assert subtree_end(back, 0) == len(back)


def test_round_trip_without_floats():
    codec = PrefixCodec(float_encoding=None, max_len=10**6)
    rng = np.random.default_rng(11)
    for _ in range(50):
        tree = random_tree(rng, floats=False)
        assert codec.parse(codec.encode(tree)) == tree
    with pytest.raises(ValueError, match="floats are off"):
        codec.encode(("f1.5",))


# ---- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tokens, message",
    [
        ("", "empty"),
        ("add x foo", "unknown token 'foo' at position 2"),
        ("add x i5", "unknown token 'i5' at position 2"),  # raw tokens are not model tokens
        ("add x", "ends inside an operand"),
        ("mul x", "ends inside an operand"),
        ("sin x x", "trailing tokens from position 2"),
        ("add INT+ x", "INT\\+ without digits at position 1"),
        ("add x INT-", "INT- without digits at position 2"),
        ("INT+ 1 12", "digit '12' at position 2 outside base 10"),
        ("add 3 x", "digit '3' at position 1 outside a number"),
        ("mul x + 314", "float block at position 2 cut short \\(2 of 3"),
        ("mul x NaN NaN NaN", "float block at position 2 holds NaN"),
        ("mul + NaN E0 x", "float block at position 1 holds NaN"),
        ("mul + 314 x x", "float block at position 1: .*unknown token 'x'"),
        ("mul E-2 314 + x", "float block at position 1"),
        ("INT+ " + "1 " * 101, "more than max_int_digits=100"),
    ],
)
def test_parse_errors(tokens, message):
    codec = PrefixCodec()
    with pytest.raises(ExprParseError, match=message) as info:
        codec.parse(tokens.split())
    assert isinstance(info.value, DecodeError)  # scoring counts it wrong


def test_parse_limits():
    codec = PrefixCodec(max_len=5, max_int_digits=3)
    with pytest.raises(ExprParseError, match="6 tokens, more than max_len=5"):
        codec.parse("add x add x add x".split()[:6])
    assert codec.parse("INT- 1 2 3".split()) == ("i-123",)
    with pytest.raises(ExprParseError, match="max_int_digits=3"):
        codec.parse("INT- 1 2 3 4".split())
    with pytest.raises(ValueError, match="4 digits in base 10"):
        codec.encode(("i1234",))
    base100 = PrefixCodec(int_base=100)
    with pytest.raises(ExprParseError, match="digit '100' at position 1 outside base 100"):
        base100.parse(["INT+", "100"])
    with pytest.raises(ExprParseError, match="unknown token '-' at position 0"):
        PrefixCodec(float_encoding=None).parse(["-", "3"])


def test_encode_errors():
    codec = PrefixCodec(float_encoding="FP15")
    for bad in ("fnan", "finf", "f-inf"):
        with pytest.raises(ValueError, match="non-finite float"):
            codec.encode(("mul", bad, "x"))
    with pytest.raises(ValueError, match="outside the range"):
        codec.encode(("f1e12",))  # FP15 stops below 1e9
    with pytest.raises(ValueError, match="unknown raw token 'foo'"):
        codec.encode(("foo",))
    with pytest.raises(ConfigError, match="int_base"):
        PrefixCodec(int_base=1)
    with pytest.raises(ConfigError, match="encoding"):
        PrefixCodec(float_encoding="P7")


def test_deep_unary_chain_parses_without_recursion():
    n = 100_000
    codec = PrefixCodec(max_len=n + 10)
    tokens = ["sin"] * n + ["x"]
    assert n > sys.getrecursionlimit()
    tree = codec.parse(tokens)
    assert len(tree) == n + 1 and tree[-1] == "x"
    assert codec.encode(tree) == tokens


# ---- encode_many --------------------------------------------------------------------------------
def test_encode_many_matches_encode():
    codec = PrefixCodec(int_base=100, float_encoding="P10000")
    rng = np.random.default_rng(5)
    trees = [random_tree(rng) for _ in range(200)]
    raw = np.array([" ".join(t) for t in trees])
    assert codec.encode_many(raw) == [codec.encode(t) for t in trees]
    assert codec.encode_many(np.array([], dtype="<U1")) == []


def test_n_tokens_is_the_encoded_length():
    codec = PrefixCodec(int_base=100, float_encoding="P10000")
    rng = np.random.default_rng(6)
    for tree in (random_tree(rng) for _ in range(100)):
        assert codec.n_tokens(tree) == len(codec.encode(tree))
    assert PrefixCodec(int_base=10).n_tokens(("add", "i-123", "x")) == 6
    with pytest.raises(ValueError, match="floats are off"):
        PrefixCodec(float_encoding=None).n_tokens(("f0.5",))


def test_encode_many_rate():
    """100k lc_released-like trees encode in well under a few seconds (cached raw tokens)."""
    rng = np.random.default_rng(0)
    base = [" ".join(random_tree(rng, max_nodes=30, floats=False)) for _ in range(1000)]
    raw = np.array(base * 20)
    codec = PrefixCodec()
    start = time.perf_counter()
    out = codec.encode_many(raw)
    rate = len(raw) / (time.perf_counter() - start)
    assert len(out) == len(raw)
    assert rate > 5_000, f"{rate:.0f} examples/s"
