"""The infix parser: precedence and associativity against numpy formulas written here, the
engine's own infix read back, configurable names, and one-line errors for bad text."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from synthmath.expressions.infix import (
    FUNCTIONS,
    MAX_CHARS,
    InfixError,
    Names,
    indexed_names,
    parse_infix,
    parse_system,
    placeholders,
)
from synthmath.expressions.numeric import compile
from synthmath.expressions.operators import OPERATORS, PRESETS, infix
from synthmath.expressions.sampling import sample_trees
from synthmath.expressions.sympy_bridge import to_sympy

NAMES = indexed_names(3, 2)
RNG = np.random.default_rng(0)
X0, X1, X2 = RNG.uniform(0.5, 2.0, (3, 50))


def value(text: str, names: Names = NAMES) -> np.ndarray:
    return compile(parse_infix(text, names))({"x_0": X0, "x_1": X1, "x_2": X2})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x_0 - x_1 - 1", lambda: X0 - X1 - 1),
        ("x_0 / x_1 / 2", lambda: X0 / X1 / 2),
        ("x_0 + x_1 * x_2", lambda: X0 + X1 * X2),
        ("(x_0 + x_1) * x_2", lambda: (X0 + X1) * X2),
        ("-x_0**2", lambda: -(X0**2)),
        ("-x_0^2 + 1", lambda: -(X0**2) + 1),
        ("2**-x_0", lambda: 2.0 ** (-X0)),
        ("x_0^2^0.5", lambda: X0 ** (2**0.5)),
        ("x_0 ** x_1 ** 2", lambda: X0 ** (X1**2)),
        ("x_0*-x_1", lambda: X0 * -X1),
        ("- - x_0", lambda: X0),
        ("+x_0 - +1", lambda: X0 - 1),
        ("x_2^3 / 3.", lambda: X2**3 / 3.0),
        ("1e-3 * x_0 + .5 + 2.5E1", lambda: 1e-3 * X0 + 0.5 + 25.0),
        ("x0 * x1", lambda: X0 * X1),
        ("sin(x_0) * cos(x_1)^2 + cot(x_2)", lambda: np.sin(X0) * np.cos(X1) ** 2 + 1 / np.tan(X2)),
        ("1 / (1 + exp(2 * x_1 - 1.4))", lambda: 1 / (1 + np.exp(2 * X1 - 1.4))),
        ("log(x_0) + ln(x_1) + sqrt(x_2)", lambda: np.log(X0) + np.log(X1) + np.sqrt(X2)),
        ("abs(x_0 - 1) + Abs(x_1 - 1)", lambda: np.abs(X0 - 1) + np.abs(X1 - 1)),
        ("arctan(x_0) + atan(x_1) + pi * E", lambda: np.arctan(X0) + np.arctan(X1) + np.pi * np.e),
        ("(1 - x_0) * 0.2 * x_0^1.2", lambda: (1 - X0) * 0.2 * X0**1.2),
    ],
)
def test_values_match_the_formula(text, expected):
    np.testing.assert_allclose(value(text), expected(), rtol=1e-12)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("-3", ("i-3",)),
        ("- 2.5", ("f-2.5",)),
        ("3.", ("f3.0",)),
        ("x_0^2", ("pow", "x_0", "i2")),
        ("-x_0", ("mul", "i-1", "x_0")),
        ("x_0/-2", ("div", "x_0", "i-2")),
        ("c_0 * (1 - x_0 / c_1)", ("mul", "c_0", "sub", "i1", "div", "x_0", "c_1")),
        ("pi - EulerGamma", ("sub", "pi", "euler_gamma")),
    ],
)
def test_trees(text, tree):
    assert parse_infix(text, NAMES) == tree


def test_sympy_of_the_tree_is_the_written_expression():
    x0, x1 = sp.symbols("x_0 x_1")
    tree = parse_infix("-x_0^3 + x_1 * (x_0 - 1) / 2 - sin(x_1)", NAMES)
    expected = -(x0**3) + x1 * (x0 - 1) / 2 - sp.sin(x1)
    assert sp.simplify(to_sympy(tree) - expected) == 0


def test_the_engines_infix_reads_back():
    """Random trees of the released preset, written by operators.infix, parse to trees of the
    same values (pow2 comes back as pow x i2, 1/(.) as div i1 (.))."""
    rng = np.random.default_rng(1)
    trees = [t for t in sample_trees(PRESETS["lc_released"], rng.integers(1, 12, 150), rng) if t]
    x = np.linspace(-3.0, 3.0, 41)
    names = Names(["x"])
    for tree in trees:
        back = parse_infix(infix(tree), names)
        np.testing.assert_allclose(
            compile(back)({"x": x}), compile(tree)({"x": x}), rtol=1e-9, equal_nan=True
        )


def test_every_function_name_maps_to_its_operator():
    for name, op in FUNCTIONS.items():
        assert OPERATORS[op].arity == 1
        assert parse_infix(f"{name}(x_0)", NAMES) == (op, "x_0")
    assert {"sin", "log", "Abs", "asinh", "acsch", "ln", "abs", "arcsin"} <= set(FUNCTIONS)


def test_names_are_configurable():
    names = Names({"S": "x_0", "I": "x_1"}, constants=["beta", "gamma"])
    tree = parse_infix("beta * S * I - gamma * I", names)
    assert tree == ("sub", "mul", "mul", "beta", "x_0", "x_1", "mul", "gamma", "x_1")
    assert placeholders(tree) == ["beta", "gamma"]
    assert parse_infix("x_2", Names(["x_2"])) == ("x_2",)
    # a variable name that looks like a number token still negates as a variable
    assert parse_infix("-i", Names({"i": "x_0"})) == ("mul", "i-1", "x_0")
    with pytest.raises(InfixError, match="unknown name 'pi'"):
        parse_infix("pi", Names(["x"], named_constants=False))
    with pytest.raises(InfixError, match="unknown function 'sin'; allowed: exp"):
        parse_infix("sin(x)", Names(["x"], functions={"exp": "exp"}))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variables": {"x": "speed"}}, "not an engine variable"),
        ({"variables": ["x_0"], "constants": ["x_1"]}, "must be a name the engine lacks"),
        ({"variables": ["x_0"], "constants": ["sin"]}, "must be a name the engine lacks"),
        ({"variables": {"sin": "x_0"}}, "sin used in two roles"),
        ({"variables": {"pi": "x_0"}}, "pi used in two roles"),
        ({"variables": ["x"], "functions": {"f": "add"}}, "not a unary operator"),
    ],
)
def test_bad_names_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Names(**kwargs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("x_0 +", "ends where an operand was expected"),
        ("(x_0 + 1", "missing '\\)'"),
        ("x_0 + 1)", "unexpected '\\)' after a complete expression"),
        ("x_0 x_1", "unexpected 'x_1' after a complete expression"),
        ("2x_0", "unexpected 'x_0' after a complete expression"),
        ("x_0 $ 1", "unexpected character '\\$' at position 4"),
        ("x_3", "unknown name 'x_3' \\(names: x_0, x0, x_1"),
        ("y", "unknown name 'y'"),
        ("foo(x_0)", "unknown function 'foo'"),
        ("sin x_0", "function 'sin' without '\\('"),
        ("sin", "function 'sin' without '\\('"),
        ("* x_0", "unexpected '\\*' where an operand was expected"),
        ("(" * 300 + "x_0" + ")" * 300, "nested deeper than 100 levels"),
        ("-" * 300 + "x_0", "nested deeper than 100 levels"),
        ("x_0^" * 300 + "x_0", "nested deeper than 100 levels"),
        ("x_0 + " * (MAX_CHARS // 6 + 1) + "1", f"longer than {MAX_CHARS} characters"),
    ],
)
def test_bad_text_is_a_one_line_error(text, message):
    with pytest.raises(InfixError, match=message):
        parse_infix(text, NAMES)


def test_long_flat_expressions_parse():
    tree = parse_infix(" + ".join(["x_0"] * 1000), NAMES)
    assert len(tree) == 1999
    np.testing.assert_allclose(compile(tree)({"x_0": X0}), 1000 * X0)


def test_systems():
    names = indexed_names(2, 1)
    assert parse_system("x_1 | - c_0 * x_0", names, dim=2) == (
        ("x_1",),
        ("mul", "mul", "i-1", "c_0", "x_0"),
    )
    with pytest.raises(InfixError, match="3 components separated by '\\|', expected 2"):
        parse_system("x_1 | x_0 | 1", names, dim=2)
    with pytest.raises(InfixError, match="component 1: unknown name 'x_2'"):
        parse_system("x_1 | x_2", names)
    with pytest.raises(InfixError, match="expected a string, got int"):
        parse_system(3, names)
    with pytest.raises(InfixError, match="expected a string, got NoneType"):
        parse_infix(None, names)
