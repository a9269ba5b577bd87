"""The operator table and the generator presets of the symbolic engine.

A tree is stored as its nodes in prefix order, one *raw* token per node (a ``tuple[str, ...]``,
written to shards as one space-joined string). Raw tokens are:

- operator names of :data:`OPERATORS` (``add``, ``sin``, ...), each of arity 1 or 2;
- variables by name (:data:`VARIABLES`, plus ``x_<k>``, ``x_<i>_<k>`` and ``u_<k>`` patterns);
- integers ``i<signed decimal>`` (``i12``, ``i-1``, any size); a rational is ``div i<p> i<q>``;
- floats ``f<repr(float)>`` (``f0.25``, ``f-1e-05``);
- named constants ``pi``, ``E``, ``euler_gamma``.

Model tokens (``INT+ 1 2``, number encodings) are made from raw tokens by
:mod:`synthmath.expressions.prefix` at load time, so integer base and float encoding stay
ablation axes. There is no unary minus: -x is ``mul i-1 x`` (Lample & Charton 2019).

Each operator row has its SymPy constructor, its numpy function (NaN/inf outside the domain,
never an exception under ``np.errstate(all="ignore")``) and its infix form (a format string
SymPy's ``parse_expr`` reads back; used for display and the CLI, never parsed by us).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import sympy as sp

from synthmath.core.errors import ConfigError

Tree = tuple[str, ...]


@dataclass(frozen=True)
class Operator:
    """One row of the operator table."""

    name: str
    arity: int
    #: builds the SymPy node from SymPy children (``evaluate`` passed where SymPy takes it);
    #: None where SymPy has no faithful equivalent (``idiv``/``mod`` of recurrences)
    sympy: Callable[..., sp.Expr] | None
    #: numpy function of ``arity`` float64 (or complex) arrays
    numpy: Callable[..., np.ndarray]
    #: infix format string, ``{0}``/``{1}`` the children's infix forms
    infix: str
    domain: str = ""


def _inv(a):
    return 1.0 / a


def _np_pow(a, b):
    return np.power(a, b)


def _sp_fn(fn):
    return lambda a, evaluate=True: fn(a, evaluate=evaluate)


def _sp_pow(k):
    return lambda a, evaluate=True: sp.Pow(a, sp.Integer(k), evaluate=evaluate)


def _sp_recip(fn):
    """SymPy's ``acot`` etc. exist; ``cot`` and friends too: this is for ``inv``."""
    return lambda a, evaluate=True: fn(a, sp.Integer(-1), evaluate=evaluate)


_HALF = sp.Rational(1, 2)

_ROWS: list[Operator] = [
    # binary
    Operator("add", 2, lambda a, b, evaluate=True: sp.Add(a, b, evaluate=evaluate), np.add,
             "({0} + {1})"),
    Operator(
        "sub", 2,
        lambda a, b, evaluate=True: sp.Add(a, sp.Mul(sp.Integer(-1), b, evaluate=evaluate),
                                           evaluate=evaluate),
        np.subtract, "({0} - {1})"),
    Operator("mul", 2, lambda a, b, evaluate=True: sp.Mul(a, b, evaluate=evaluate), np.multiply,
             "({0})*({1})"),
    Operator(
        "div", 2,
        lambda a, b, evaluate=True: sp.Mul(a, sp.Pow(b, sp.Integer(-1), evaluate=evaluate),
                                           evaluate=evaluate),
        np.divide, "({0})/({1})", "pole where the divisor is 0"),
    Operator("pow", 2, lambda a, b, evaluate=True: sp.Pow(a, b, evaluate=evaluate), _np_pow,
             "({0})**({1})", "NaN for a negative base and a non-integer exponent (real mode)"),
    Operator("idiv", 2, None, lambda a, b: np.trunc(np.divide(a, b)), "idiv({0}, {1})",
             "integer division truncating toward zero (recurrences)"),
    Operator("mod", 2, None, np.fmod, "mod({0}, {1})",
             "remainder with the sign of the dividend (C-like; recurrences)"),
    # unary
    Operator("inv", 1, _sp_recip(sp.Pow), _inv, "1/({0})", "pole at 0"),
    Operator("pow2", 1, _sp_pow(2), np.square, "({0})**2"),
    Operator("pow3", 1, _sp_pow(3), lambda a: a * a * a, "({0})**3"),
    Operator("pow4", 1, _sp_pow(4), lambda a: np.square(np.square(a)), "({0})**4"),
    Operator("pow5", 1, _sp_pow(5), lambda a: np.square(np.square(a)) * a, "({0})**5"),
    Operator("sqrt", 1, lambda a, evaluate=True: sp.Pow(a, _HALF, evaluate=evaluate), np.sqrt,
             "sqrt({0})", "NaN below 0 (real mode)"),
    Operator("exp", 1, _sp_fn(sp.exp), np.exp, "exp({0})"),
    Operator("ln", 1, _sp_fn(sp.log), np.log, "log({0})", "NaN below 0, -inf at 0"),
    Operator("abs", 1, _sp_fn(sp.Abs), np.abs, "Abs({0})"),
    Operator("sign", 1, _sp_fn(sp.sign), np.sign, "sign({0})"),
    Operator("sin", 1, _sp_fn(sp.sin), np.sin, "sin({0})"),
    Operator("cos", 1, _sp_fn(sp.cos), np.cos, "cos({0})"),
    Operator("tan", 1, _sp_fn(sp.tan), np.tan, "tan({0})"),
    Operator("cot", 1, _sp_fn(sp.cot), lambda a: 1.0 / np.tan(a), "cot({0})"),
    Operator("sec", 1, _sp_fn(sp.sec), lambda a: 1.0 / np.cos(a), "sec({0})"),
    Operator("csc", 1, _sp_fn(sp.csc), lambda a: 1.0 / np.sin(a), "csc({0})"),
    Operator("asin", 1, _sp_fn(sp.asin), np.arcsin, "asin({0})", "NaN outside [-1, 1]"),
    Operator("acos", 1, _sp_fn(sp.acos), np.arccos, "acos({0})", "NaN outside [-1, 1]"),
    Operator("atan", 1, _sp_fn(sp.atan), np.arctan, "atan({0})"),
    Operator("acot", 1, _sp_fn(sp.acot), lambda a: np.arctan(1.0 / a), "acot({0})"),
    Operator("asec", 1, _sp_fn(sp.asec), lambda a: np.arccos(1.0 / a), "asec({0})"),
    Operator("acsc", 1, _sp_fn(sp.acsc), lambda a: np.arcsin(1.0 / a), "acsc({0})"),
    Operator("sinh", 1, _sp_fn(sp.sinh), np.sinh, "sinh({0})"),
    Operator("cosh", 1, _sp_fn(sp.cosh), np.cosh, "cosh({0})"),
    Operator("tanh", 1, _sp_fn(sp.tanh), np.tanh, "tanh({0})"),
    Operator("coth", 1, _sp_fn(sp.coth), lambda a: 1.0 / np.tanh(a), "coth({0})"),
    Operator("sech", 1, _sp_fn(sp.sech), lambda a: 1.0 / np.cosh(a), "sech({0})"),
    Operator("csch", 1, _sp_fn(sp.csch), lambda a: 1.0 / np.sinh(a), "csch({0})"),
    Operator("asinh", 1, _sp_fn(sp.asinh), np.arcsinh, "asinh({0})"),
    Operator("acosh", 1, _sp_fn(sp.acosh), np.arccosh, "acosh({0})", "NaN below 1"),
    Operator("atanh", 1, _sp_fn(sp.atanh), np.arctanh, "atanh({0})", "NaN outside [-1, 1]"),
    Operator("acoth", 1, _sp_fn(sp.acoth), lambda a: np.arctanh(1.0 / a), "acoth({0})"),
    Operator("asech", 1, _sp_fn(sp.asech), lambda a: np.arccosh(1.0 / a), "asech({0})"),
    Operator("acsch", 1, _sp_fn(sp.acsch), lambda a: np.arcsinh(1.0 / a), "acsch({0})"),
    Operator("id", 1, lambda a, evaluate=True: a, lambda a: a, "{0}", "a true no-op"),
    Operator("relu", 1, lambda a, evaluate=True: sp.Max(sp.Integer(0), a, evaluate=evaluate),
             lambda a: np.maximum(a, 0.0), "Max(0, {0})"),
    Operator("sqr", 1, _sp_pow(2), np.square, "({0})**2", "recurrences' square"),
]  # fmt: skip

#: every operator by name
OPERATORS: Mapping[str, Operator] = MappingProxyType({op.name: op for op in _ROWS})

#: named constants: raw token -> (SymPy value, float value, infix)
CONSTANTS: Mapping[str, tuple[sp.Expr, float, str]] = MappingProxyType(
    {
        "pi": (sp.pi, float(np.pi), "pi"),
        "E": (sp.E, float(np.e), "E"),
        "euler_gamma": (sp.EulerGamma, float(np.euler_gamma), "EulerGamma"),
    }
)

#: fixed variable names; ``x_<k>``, ``x_<i>_<k>`` and ``u_<k>`` are variables too
VARIABLES = ("x", "t", "n", "y", "z", "Y", "Y'", "Y''", "c", "c1", "c2")
_VARIABLE_PATTERN = re.compile(r"^(x_\d+(_\d+)?|u_\d+)$")
_INT_PATTERN = re.compile(r"^i-?\d+$")


def arity(token: str) -> int:
    """0 for a leaf, else the operator's arity."""
    op = OPERATORS.get(token)
    return op.arity if op is not None else 0


def is_variable(token: str) -> bool:
    return token in VARIABLES or bool(_VARIABLE_PATTERN.match(token))


def is_int(token: str) -> bool:
    return bool(_INT_PATTERN.match(token))


def is_float(token: str) -> bool:
    if not token.startswith("f") or len(token) < 2:
        return False
    try:
        float(token[1:])
    except ValueError:
        return False
    return True


def int_token(value: int) -> str:
    return f"i{int(value)}"


def float_token(value: float) -> str:
    return f"f{float(value)!r}"


def is_leaf(token: str) -> bool:
    """A valid raw leaf token: a variable, an integer, a float or a named constant."""
    return token in CONSTANTS or is_variable(token) or is_int(token) or is_float(token)


def subtree_end(tree: Tree, start: int) -> int:
    """Index one past the subtree rooted at ``tree[start]`` (iterative)."""
    need = 1
    i = start
    while need:
        if i >= len(tree):
            raise ValueError(f"tree ends inside the operand that starts at position {start}")
        need += arity(tree[i]) - 1
        i += 1
    return i


def n_operators(tree: Tree) -> int:
    return sum(1 for t in tree if t in OPERATORS)


# ---- presets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preset:
    """A generator configuration: operator weights and the leaf distribution.

    ``shape_weights`` selects the tree-shape distribution of
    :mod:`synthmath.expressions.sampling`: ``"unit"`` (every unary-binary shape equally likely,
    as the released code) or ``"counts"`` (the paper's weighted D(e, n) with L leaf values,
    p1 unary and p2 binary operators: every *expression* equally likely).

    Leaves: a leaf is a variable with probability ``p_variable`` (uniform over
    ``variables``), an integer with probability ``p_int`` (uniform over ``ints``), a named
    constant with probability ``p_constant`` (uniform over ``constants``); the three add to 1.
    """

    name: str
    source: str
    max_ops: int
    unary: Mapping[str, float]
    binary: Mapping[str, float]
    variables: tuple[str, ...] = ("x",)
    ints: tuple[int, ...] = (1, 2, 3, 4, 5)
    p_variable: float = 0.75
    p_int: float = 0.25
    p_constant: float = 0.0
    constants: tuple[str, ...] = ()
    shape_weights: str = "unit"
    extra: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (*self.unary, *self.binary):
            if name not in OPERATORS:
                raise ValueError(f"preset {self.name}: unknown operator {name!r}")
        if abs(self.p_variable + self.p_int + self.p_constant - 1.0) > 1e-9:
            raise ValueError(f"preset {self.name}: leaf probabilities must add to 1")

    @property
    def n_leaf_values(self) -> int:
        """L of the paper's counting: the number of distinct leaf values."""
        return (
            (len(self.variables) if self.p_variable else 0)
            + (len(self.ints) if self.p_int else 0)
            + (len(self.constants) if self.p_constant else 0)
        )


_TRIG_HYP = ("asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh")

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        p.name: p
        for p in (
            Preset(
                "lc_paper",
                "Lample & Charton 2019, section 4.1: n <= 15, L = 11 leaves {x} U {-5..5}\\{0}, "
                "p2 = 4 binary (+ - x /), p1 = 15 unary; every expression equally likely",
                max_ops=15,
                unary={k: 1.0 for k in ("exp", "ln", "sqrt", "sin", "cos", "tan", *_TRIG_HYP)},
                binary={"add": 1.0, "sub": 1.0, "mul": 1.0, "div": 1.0},
                ints=(-5, -4, -3, -2, -1, 1, 2, 3, 4, 5),
                p_variable=1 / 11,
                p_int=10 / 11,
                shape_weights="counts",
            ),
            Preset(
                "lc_released",
                "facebookresearch/SymbolicMathematics README and notebook: operator weights "
                "add 10 sub 3 mul 10 div 5 sqrt 4 pow2 4 pow3 2 pow4 1 pow5 1 ln 4 exp 4 sin 4 "
                "cos 4 tan 4, inverse/hyperbolic 1 each; leaves 75% x, 25% integer 1..5; unit "
                "shape weights",
                max_ops=15,
                unary={
                    "sqrt": 4.0,
                    "pow2": 4.0,
                    "pow3": 2.0,
                    "pow4": 1.0,
                    "pow5": 1.0,
                    "ln": 4.0,
                    "exp": 4.0,
                    "sin": 4.0,
                    "cos": 4.0,
                    "tan": 4.0,
                    **{k: 1.0 for k in _TRIG_HYP},
                },  # fmt: skip
                binary={"add": 10.0, "sub": 3.0, "mul": 10.0, "div": 5.0},
            ),
            Preset(
                "chh",
                "Charton, Hayat & Lample 2020: + - x / and sqrt exp ln sin cos tan asin acos "
                "atan, uniform; integer leaves with probability 0.3, uniform in +-[1, 10]",
                max_ops=15,
                unary={
                    k: 1.0
                    for k in ("sqrt", "exp", "ln", "sin", "cos", "tan", "asin", "acos", "atan")
                },
                binary={"add": 1.0, "sub": 1.0, "mul": 1.0, "div": 1.0},
                ints=tuple(v for v in range(-10, 11) if v),
                p_variable=0.7,
                p_int=0.3,
            ),
            Preset(
                "e2e",
                "Kamienny et al. 2022 (E2E) as released: binary add sub mul (uniform), unary "
                "abs inv sqrt ln exp sin cos tan atan pow2 pow3 with weights 1 except inv 3, "
                "pow2 3, sqrt 5, tan 0.2, atan 0.2; leaves the variables x_0..x_9 (the task "
                "restricts them to its dimension); unit shape weights",
                max_ops=13,
                unary={
                    "abs": 1.0,
                    "inv": 3.0,
                    "sqrt": 5.0,
                    "ln": 1.0,
                    "exp": 1.0,
                    "sin": 1.0,
                    "cos": 1.0,
                    "tan": 0.2,
                    "atan": 0.2,
                    "pow2": 3.0,
                    "pow3": 1.0,
                },  # fmt: skip
                binary={"add": 1.0, "sub": 1.0, "mul": 1.0},
                variables=tuple(f"x_{i}" for i in range(10)),
                ints=(),
                p_variable=1.0,
                p_int=0.0,
            ),
        )
    }
)


def get_preset(name: str, where: str = "preset") -> Preset:
    """The preset ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    if name not in PRESETS:
        raise ConfigError(
            f"{where}: unknown operator preset {name!r}; allowed: {', '.join(PRESETS)}"
        )
    return PRESETS[name]


def infix(tree: Tree) -> str:
    """The infix form of a raw tree: a string SymPy's ``parse_expr`` reads back (display and
    the CLI; the project never parses it). ``Y'``/``Y''`` are written as derivatives of ``Y``
    with respect to ``x``."""
    stack: list[str] = []
    for token in reversed(tree):
        op = OPERATORS.get(token)
        if op is None:
            stack.append(_leaf_infix(token))
            continue
        if len(stack) < op.arity:
            raise ValueError(f"infix: operator {token!r} lacks operands")
        args = [stack.pop() for _ in range(op.arity)]
        stack.append(op.infix.format(*args))
    if len(stack) != 1:
        raise ValueError(f"infix: {len(stack)} expressions, expected 1")
    return stack[0]


def _leaf_infix(token: str) -> str:
    if token in CONSTANTS:
        return CONSTANTS[token][2]
    if token == "Y'":
        return "Derivative(Y, x)"
    if token == "Y''":
        return "Derivative(Y, x, 2)"
    if is_int(token):
        value = int(token[1:])
        return f"({value})" if value < 0 else str(value)
    if is_float(token):
        value = float(token[1:])
        if not np.isfinite(value):
            raise ValueError(f"infix: non-finite float leaf {token!r}")
        return f"({value!r})" if value < 0 else repr(value)
    if is_variable(token):
        return token
    raise ValueError(f"infix: unknown token {token!r}")
