"""Numeric evaluation: programs, validity checks, complex-step derivatives, integer mode."""

from __future__ import annotations

import cmath
import math
import sys
import warnings

import numpy as np
import pytest
import sympy as sp

from synthmath.expressions.numeric import (
    RELEASED_POINTS,
    compile,
    complex_step_derivative,
    evaluate_int,
    finite_at_released_points,
    finite_fraction,
    is_valid_released,
    max_nested,
)
from synthmath.expressions.operators import OPERATORS


def T(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# ---- every operator against a numpy formula written here -----------------------------------------
X = np.array([-3.0, -2.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 7.0])
Y = np.array([2.0, -3.0, 0.5, 2.0, 0.0, -1.5, 3.0, 0.0, 1.0 / 3.0, -2.0, 3.0])

EXPECTED = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul": lambda x, y: x * y,
    "div": lambda x, y: x / y,
    "pow": lambda x, y: x**y,
    "idiv": lambda x, y: np.trunc(x / y),
    "mod": lambda x, y: x - y * np.trunc(x / y),
    "inv": lambda x: 1 / x,
    "pow2": lambda x: x**2,
    "pow3": lambda x: x**3,
    "pow4": lambda x: x**4,
    "pow5": lambda x: x**5,
    "sqrt": lambda x: x**0.5,
    "exp": np.exp,
    "ln": np.log,
    "abs": np.abs,
    "sign": np.sign,
    "sin": np.sin,
    "cos": np.cos,
    "tan": lambda x: np.sin(x) / np.cos(x),
    "cot": lambda x: np.cos(x) / np.sin(x),
    "sec": lambda x: 1 / np.cos(x),
    "csc": lambda x: 1 / np.sin(x),
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "acot": lambda x: np.arctan(1 / x),
    "asec": lambda x: np.arccos(1 / x),
    "acsc": lambda x: np.arcsin(1 / x),
    "sinh": lambda x: (np.exp(x) - np.exp(-x)) / 2,
    "cosh": lambda x: (np.exp(x) + np.exp(-x)) / 2,
    "tanh": np.tanh,
    "coth": lambda x: np.cosh(x) / np.sinh(x),
    "sech": lambda x: 2 / (np.exp(x) + np.exp(-x)),
    "csch": lambda x: 2 / (np.exp(x) - np.exp(-x)),
    "asinh": lambda x: np.log(x + np.sqrt(x * x + 1)),
    "acosh": lambda x: np.log(x + np.sqrt(x * x - 1)),
    "atanh": lambda x: 0.5 * np.log((1 + x) / (1 - x)),
    "acoth": lambda x: 0.5 * np.log((x + 1) / (x - 1)),
    "asech": lambda x: np.arccosh(1 / x),
    "acsch": lambda x: np.arcsinh(1 / x),
    "id": lambda x: x,
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "sqr": lambda x: x * x,
}


def test_every_operator_has_a_reference():
    assert set(EXPECTED) == set(OPERATORS)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_operator_matches_numpy_formula(name):
    op = OPERATORS[name]
    tree = (name, "x", "y") if op.arity == 2 else (name, "x")
    with np.errstate(all="ignore"):
        want = EXPECTED[name](X, Y) if op.arity == 2 else EXPECTED[name](X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # domain errors and poles never warn
        got = compile(tree)({"x": X, "y": Y})
    assert got.dtype == np.float64 and got.shape == X.shape
    # same NaN pattern, same infinities (sign included), finite values close
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf], err_msg=name)
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(
    "tree, x, want",
    [
        ("ln x", -1.0, math.nan),
        ("ln x", 0.0, -math.inf),
        ("div i1 x", 0.0, math.inf),
        ("div i-1 x", 0.0, -math.inf),
        ("asin x", 2.0, math.nan),
        ("acosh x", 0.5, math.nan),
        ("sqrt x", -4.0, math.nan),
        ("pow x div i1 i3", -8.0, math.nan),  # real mode: no real cube root of a negative
        ("pow x i3", -2.0, -8.0),
        ("exp x", 1000.0, math.inf),
        ("mul x pi", 2.0, 2 * math.pi),
        ("add E euler_gamma", 0.0, math.e + 0.5772156649015329),
        ("add x f0.25", 1.0, 1.25),
    ],
)
def test_domain_behaviour(tree, x, want):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = compile(T(tree))({"x": np.array([x])})[0]
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-15)


def test_complex_mode():
    z = np.array([-4.0, -1.0, 2.0])
    got = compile(T("add sqrt x mul ln x asin x"))({"x": z}, dtype=np.complex128)
    want = [cmath.sqrt(v) + cmath.log(v) * cmath.asin(v) for v in (-4.0, -1.0, 2.0)]
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # a complex variable: exp(i pi) = -1
    e = compile(T("exp mul x pi"))({"x": np.array([1j])}, dtype=np.complex128)
    np.testing.assert_allclose(e, [-1.0 + 0j], atol=1e-15)


def test_broadcasting_and_missing_variables():
    program = compile(T("add x mul y i2"))
    got = program({"x": np.array([[1.0], [2.0]]), "y": np.array([10.0, 20.0, 30.0])})
    np.testing.assert_array_equal(got, [[21, 41, 61], [22, 42, 62]])
    with pytest.raises(KeyError, match="no values for the variables y"):
        program({"x": np.zeros(3)})
    # a constant (or a variable-free subtree) takes the shape of the points
    np.testing.assert_array_equal(compile(T("i3"))({"x": np.zeros(4)}), [3.0] * 4)
    with pytest.raises(ValueError, match="unknown token 'foo'"):
        compile(T("add x foo"))


def test_deep_unary_chain():
    n = 100_000
    assert n > sys.getrecursionlimit()
    tree = ("sin",) * n + ("x",)
    got = compile(tree)({"x": np.array([1.0])})[0]
    want = 1.0
    for _ in range(n):
        want = math.sin(want)
    assert got == pytest.approx(want, rel=1e-12)
    assert max_nested(("exp",) * n + ("x",)) == n
    assert evaluate_int(("abs",) * n + ("i-3",), {}) == 3


# ---- validity ------------------------------------------------------------------------------------
def test_released_points():
    assert sorted(RELEASED_POINTS.tolist()) == sorted(
        s * v for v in (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 2.1, 3.1) for s in (-1, 1)
    )


@pytest.mark.parametrize(
    "tree, strict, released",
    [
        ("ln x", True, True),
        ("acosh x", True, True),  # finite at 1.1, 2.1, 3.1 only
        ("sqrt sub i0 add pow2 x i1", False, False),  # sqrt(-x^2 - 1): NaN everywhere
        ("div i1 sub x x", False, False),  # 1/0 everywhere
        # the released check evaluates asin(x + 5) as x + 5 and ln(-1) as -1
        ("asin add x i5", False, True),
        ("i3", True, True),
        ("ln i-1", False, True),
        ("ln sub i0 add pow2 x i1", False, True),
        ("sqrt ln sub i0 add pow2 x i1", False, False),  # sqrt(-x^2 - 1) after stripping
        ("div i1 sin sub x x", False, False),  # 1/(x - x)
        ("exp exp exp pow5 add x i5", False, False),  # overflow at every point
        ("cosh pow5 pow5 add x i5", False, False),  # cosh is evaluated: overflow
        ("tanh pow5 pow5 add x i5", True, True),
    ],
)
def test_finite_at_released_points(tree, strict, released):
    assert finite_at_released_points(T(tree), check="strict") is strict
    assert finite_at_released_points(T(tree), check="released") is released
    assert finite_at_released_points(T(tree)) is released  # the default


def test_finite_at_released_points_other_variable():
    assert finite_at_released_points(T("ln t"), variable="t")
    with pytest.raises(ValueError, match="variables other than 'x': c"):
        finite_at_released_points(T("add x c"))
    with pytest.raises(ValueError, match="unknown validity check 'loose'"):
        finite_at_released_points(T("x"), check="loose")


@pytest.mark.parametrize(
    "tree, depth",
    [
        ("x", 0),
        ("exp x", 1),
        ("exp sin cosh x", 2),
        ("add exp exp x exp exp exp x", 3),
        ("mul sinh x cosh exp add x sinh x", 3),
        ("exp sinh cosh exp x", 4),
    ],
)
def test_max_nested(tree, depth):
    assert max_nested(T(tree)) == depth


def test_max_nested_other_ops_and_errors():
    assert max_nested(T("sin exp sin x"), ops=("sin",)) == 2
    with pytest.raises(ValueError, match="ends inside"):
        max_nested(T("add x"))
    with pytest.raises(ValueError, match="after a complete tree"):
        max_nested(T("x x"))


def test_is_valid_released():
    assert is_valid_released(T("exp exp exp x"))
    assert not is_valid_released(T("exp exp exp exp x"))  # finite at 0.01, but 4 nested
    assert not is_valid_released(T("ln sub i0 pow2 x"), check="strict")  # ln(-x^2): no point
    assert is_valid_released(T("ln sub i0 pow2 x"))  # -x^2 for the released check
    assert not is_valid_released(T("sqrt sub i0 add pow2 x i1"))


def test_finite_fraction():
    env = {"x": np.array([-1.0, 0.0, 1.0, 2.0])}
    assert finite_fraction(T("ln x"), env) == 0.5
    assert finite_fraction(compile(T("mul x x")), env) == 1.0
    assert finite_fraction(T("ln i-1"), env) == 0.0
    assert finite_fraction(T("ln x"), {"x": np.array([])}) == 0.0


# ---- complex-step derivatives against SymPy ------------------------------------------------------
x_, y_ = sp.Symbol("x"), sp.Symbol("y")
# a real symbol where SymPy's derivative of Abs/sign of a plain symbol keeps re/im terms
xr = sp.Symbol("x", real=True)
CASES = [
    ("mul sin x exp x", sp.sin(x_) * sp.exp(x_), [-2.0, -0.3, 0.7, 1.9]),
    (
        "div ln add pow2 x i1 sqrt x",
        sp.log(x_**2 + 1) / sp.sqrt(x_),
        [0.2, 1.0, 3.5],
    ),
    ("pow x x", x_**x_, [0.3, 1.0, 2.5]),
    ("mul atan mul i3 x tanh x", sp.atan(3 * x_) * sp.tanh(x_), [-1.5, 0.1, 2.0]),
    ("asin div x i4", sp.asin(x_ / 4), [-3.0, 0.5, 3.9]),
    ("add sec x acoth add x i2", sp.sec(x_) + sp.acoth(x_ + 2), [0.5, 1.2, 4.0]),
    ("mul abs sub x i1 pow3 x", sp.Abs(xr - 1) * xr**3, [-2.0, 0.5, 1.5, 3.0]),
    ("relu sub x i1", sp.Max(0, x_ - 1), [-0.5, 0.5, 2.0]),
    ("mul sign x pow2 x", sp.sign(xr) * xr**2, [-1.5, 2.0]),
    ("div i1 sub x pi", 1 / (x_ - sp.pi), [0.0, 1.0, 5.0]),
]


@pytest.mark.parametrize("tree, expr, points", CASES, ids=[c[0] for c in CASES])
def test_complex_step_matches_sympy_diff(tree, expr, points):
    got = complex_step_derivative(T(tree), {"x": np.array(points)}, "x")
    (sym,) = expr.free_symbols
    derivative = sp.diff(expr, sym)
    want = [float(derivative.subs(sym, sp.Float(p)).evalf()) for p in points]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_complex_step_several_variables_and_domain():
    env = {"x": np.array([0.5, 2.0]), "y": np.array([-1.0, 3.0])}
    expr = x_ * y_ + sp.sin(y_) * sp.exp(x_ * y_)
    tree = compile(T("add mul x y mul sin y exp mul x y"))
    for var, sym in (("x", x_), ("y", y_)):
        got = complex_step_derivative(tree, env, var)
        want = [
            float(sp.diff(expr, sym).subs({x_: a, y_: b}).evalf())
            for a, b in zip(env["x"], env["y"])
        ]
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # where f is undefined in real mode the derivative is NaN, not the complex branch's
    got = complex_step_derivative(T("add ln x sqrt x"), {"x": np.array([-1.0, 4.0])}, "x")
    assert math.isnan(got[0]) and got[1] == pytest.approx(1 / 4 + 1 / 4)
    # a variable the expression does not use: derivative 0
    np.testing.assert_array_equal(complex_step_derivative(T("sin y"), env, "x"), [0.0, 0.0])
    with pytest.raises(KeyError, match="'z'"):
        complex_step_derivative(T("sin x"), env, "z")


def test_complex_step_through_idiv_and_mod():
    env = {"x": np.array([0.3, 1.1])}
    got = complex_step_derivative(T("add mod mul x i7 i3 idiv x f0.25"), env, "x")
    np.testing.assert_allclose(got, [7.0, 7.0])


# ---- integer mode -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tree, want",
    [
        ("idiv i-7 i2", -3),
        ("mod i-7 i2", -1),
        ("idiv i7 i-2", -3),
        ("mod i7 i-2", 1),
        ("idiv i-7 i-2", 3),
        ("mod i-7 i-2", -1),
        ("idiv i7 i2", 3),
        ("mod i7 i2", 1),
        ("pow i-2 i3", -8),
        ("pow i0 i0", 1),
        ("sub sqr i-4 relu i-9", 16),
        ("add abs i-5 sign i-5", 4),
        ("mul i99999999999 i99999999999", 99999999999**2),  # exact beyond int64
        ("pow i10 i100", 10**100),
        ("pow3 i-3", -27),
        ("id i7", 7),
    ],
)
def test_evaluate_int(tree, want):
    assert evaluate_int(T(tree), {}) == want


@pytest.mark.parametrize(
    "tree",
    [
        "idiv x i0",
        "mod x i0",
        "pow i2 i-1",
        "pow i10 i101",  # over max_abs
        "pow i2 i100000000000",  # refused without computing it
        "mul i10000000000000000000000000000000000000000000000000000 pow i10 i50",
        "sqr pow i10 i51",
    ],
)
def test_evaluate_int_undefined(tree):
    assert evaluate_int(T(tree), {"x": 5}) is None


def test_evaluate_int_identity_and_agreement_with_float_mode():
    rng = np.random.default_rng(0)
    a = rng.integers(-1000, 1000, 300)
    b = rng.integers(-30, 30, 300)
    b[b == 0] = 7
    for p, q in zip(a.tolist(), b.tolist()):
        env = {"x": p, "y": q}
        d, m = evaluate_int(T("idiv x y"), env), evaluate_int(T("mod x y"), env)
        assert p == q * d + m and abs(m) < abs(q) and (m == 0 or (m < 0) == (p < 0))
    fa, fb = a.astype(float), b.astype(float)
    np.testing.assert_array_equal(
        compile(T("idiv x y"))({"x": fa, "y": fb}),
        [evaluate_int(T("idiv x y"), {"x": p, "y": q}) for p, q in zip(a.tolist(), b.tolist())],
    )
    np.testing.assert_array_equal(
        compile(T("mod x y"))({"x": fa, "y": fb}),
        [evaluate_int(T("mod x y"), {"x": p, "y": q}) for p, q in zip(a.tolist(), b.tolist())],
    )


def test_evaluate_int_recurrence_and_errors():
    # u_n = u_{n-1} + (u_{n-2} mod n)
    tree = T("add x_0_1 mod x_0_2 n")
    assert evaluate_int(tree, {"x_0_1": 10, "x_0_2": -7, "n": np.int64(4)}) == 7
    assert evaluate_int(T("x"), {"x": 10**101}) is None
    assert evaluate_int(T("mul x x"), {"x": 10**6}, max_abs=10**11) is None
    with pytest.raises(ValueError, match="'sin' is not an integer operator"):
        evaluate_int(T("sin x"), {"x": 1})
    with pytest.raises(ValueError, match="no value for the variable 'y'"):
        evaluate_int(T("add x y"), {"x": 1})
    with pytest.raises(ValueError, match="'f0.5' is not an integer leaf"):
        evaluate_int(T("add x f0.5"), {"x": 1})
    with pytest.raises(ValueError, match="not an integer"):
        evaluate_int(T("x"), {"x": 1.5})
    with pytest.raises(ValueError, match="lacks operands"):
        evaluate_int(T("add x"), {"x": 1})
