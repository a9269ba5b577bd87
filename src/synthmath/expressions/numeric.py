"""Numeric evaluation of raw trees over numpy arrays of points.

:func:`compile` turns a tree into a :class:`Program` (the nodes in postfix order); calling it
with an environment ``{variable: array}`` evaluates the expression at every point at once,
under ``np.errstate(all="ignore")``: domain errors give NaN (ln of a negative number, asin
outside [-1, 1], a negative base to a non-integer power), poles give +-inf, overflow inf.
Batch evaluation groups points, not expressions: one program per expression.

Also here: the validity checks of the released generators (:func:`is_valid_released`),
complex-step derivatives (:func:`complex_step_derivative`) for hot paths that cannot afford
SymPy, and exact integer evaluation for recurrences (:func:`evaluate_int`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from synthmath.expressions.operators import (
    CONSTANTS,
    OPERATORS,
    Tree,
    arity,
    is_float,
    is_int,
    is_variable,
)


@dataclass(frozen=True)
class Program:
    """A compiled expression: ``steps`` in postfix order, each ``("op", name)``,
    ``("var", name)`` or ``("const", value)``."""

    steps: tuple[tuple[str, object], ...]
    variables: frozenset[str]

    def __call__(
        self,
        env: Mapping[str, np.ndarray],
        dtype=np.float64,
        functions: Mapping[str, Callable[..., np.ndarray]] | None = None,
    ) -> np.ndarray:
        """The values at the points of ``env``: all its arrays broadcast together (also those
        of variables the expression does not use, so a constant gives one value per point).

        ``functions`` replaces the numpy functions of the operators it names (complex-step
        differentiation uses it for abs, sign, relu, idiv and mod).
        """
        functions = functions or {}
        missing = self.variables - set(env)
        if missing:
            raise KeyError(f"no values for the variables {', '.join(sorted(missing))}")
        arrays = {k: np.asarray(v, dtype=dtype) for k, v in env.items() if k in self.variables}
        # every value of env shapes the result: a constant at N points is N values
        shape = np.broadcast_shapes(*(np.shape(v) for v in env.values())) if env else ()
        stack: list[np.ndarray] = []
        with np.errstate(all="ignore"):
            for kind, value in self.steps:
                if kind == "const":
                    stack.append(np.full(shape, value, dtype=dtype))
                elif kind == "var":
                    stack.append(np.broadcast_to(arrays[value], shape))
                else:
                    op = OPERATORS[value]
                    fn = functions.get(value, op.numpy)
                    if op.arity == 1:
                        stack.append(np.asarray(fn(stack.pop()), dtype=dtype))
                    else:
                        right = stack.pop()
                        left = stack.pop()
                        stack.append(np.asarray(fn(left, right), dtype=dtype))
        return stack[0]


def leaf_value(token: str) -> float | None:
    """The number a numeric leaf stands for (None for a variable)."""
    if is_int(token):
        return float(int(token[1:]))
    if is_float(token):
        return float(token[1:])
    if token in CONSTANTS:
        return CONSTANTS[token][1]
    return None


def compile(tree: Tree) -> Program:  # noqa: A001 - the engine's verb
    """The postfix program of ``tree``; raises ValueError naming an unknown token."""
    steps: list[tuple[str, object]] = []
    variables: set[str] = set()
    depth = 0
    for token in reversed(tree):
        op = OPERATORS.get(token)
        if op is not None:
            if depth < op.arity:
                raise ValueError(f"compile: operator {token!r} lacks operands")
            depth -= op.arity - 1
            steps.append(("op", token))
            continue
        value = leaf_value(token)
        if value is not None:
            steps.append(("const", value))
        elif is_variable(token):
            steps.append(("var", token))
            variables.add(token)
        else:
            raise ValueError(f"compile: unknown token {token!r}")
        depth += 1
    if depth != 1:
        raise ValueError(f"compile: {depth} expressions, expected 1")
    # the reversed walk builds the program right to left: binary operators pop (left, right)
    # in postfix order, so emit the operands of each node left to right
    return Program(tuple(_postfix(tree)), frozenset(variables))


def _postfix(tree: Tree) -> list[tuple[str, object]]:
    """Postfix steps of a prefix tree (iterative)."""
    out: list[tuple[str, object]] = []
    # each frame: [token, children left to emit]
    pending: list[list] = []
    for token in tree:
        op = OPERATORS.get(token)
        if op is not None:
            pending.append([token, op.arity])
            continue
        value = leaf_value(token)
        out.append(("const", value) if value is not None else ("var", token))
        while pending:
            pending[-1][1] -= 1
            if pending[-1][1]:
                break
            out.append(("op", pending.pop()[0]))
    return out


def _program(tree_or_program: Tree | Program) -> Program:
    return tree_or_program if isinstance(tree_or_program, Program) else compile(tree_or_program)


# ---- validity -----------------------------------------------------------------------------------
#: the 18 points of the released generator's check: +-{0.01, 0.1, 0.3, ..., 3.1}
RELEASED_POINTS = np.array(
    [s * v for v in (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 1.1, 2.1, 3.1) for s in (-1.0, 1.0)]
)
#: operators whose nesting the released generator bounds (4 or more nested: rejected)
EXP_LIKE = ("exp", "sinh", "cosh")
#: functions the released check removes from the infix string before numexpr evaluates it
#: (numexpr knows none of them; CONFIRMED in char_sp.is_valid_expr): each stands for its argument,
#: so ln(-x^2 - 1) passes there; exp, sqrt, sinh, cosh, powers and divisions are evaluated
RELEASED_CHECK_IDENTITY = frozenset(
    ("abs", "sign", "ln", "sin", "cos", "tan", "sec", "csc", "cot", "asin", "acos", "atan",
     "asec", "acsc", "acot", "tanh", "sech", "csch", "coth", "asinh", "acosh", "atanh", "asech",
     "acoth", "acsch")
)  # fmt: skip
_IDENTITY: Mapping[str, Callable[..., np.ndarray]] = {
    name: (lambda a: a) for name in RELEASED_CHECK_IDENTITY
}
#: validity checks: "released" as the released generator (stripped functions), "strict" every
#: function evaluated
VALIDITY_CHECKS = ("released", "strict")


def finite_fraction(program: Tree | Program, env: Mapping[str, np.ndarray]) -> float:
    """The fraction of the points of ``env`` where the value is finite (0.0 without points)."""
    values = np.asarray(_program(program)(env))
    if values.ndim == 0:  # no variable: a constant is finite everywhere or nowhere
        return float(np.isfinite(values))
    return float(np.isfinite(values).mean()) if values.size else 0.0


def finite_at_released_points(
    tree: Tree | Program, variable: str = "x", check: str = "released"
) -> bool:
    """Whether the expression is finite at one or more of :data:`RELEASED_POINTS`;
    ValueError if it has variables other than ``variable``.

    ``check="strict"`` evaluates every function; ``"released"`` replaces the functions of
    :data:`RELEASED_CHECK_IDENTITY` by their argument, as the released generator's numexpr
    check does (so ln(-x^2 - 1) passes).
    """
    if check not in VALIDITY_CHECKS:
        raise ValueError(f"unknown validity check {check!r}; allowed: {', '.join(VALIDITY_CHECKS)}")
    program = _program(tree)
    others = program.variables - {variable}
    if others:
        raise ValueError(
            f"finite_at_released_points: variables other than {variable!r}: "
            f"{', '.join(sorted(others))}"
        )
    functions = _IDENTITY if check == "released" else None
    return bool(np.isfinite(program({variable: RELEASED_POINTS}, functions=functions)).any())


def max_nested(tree: Tree, ops: tuple[str, ...] | frozenset[str] = EXP_LIKE) -> int:
    """The largest number of ``ops`` nodes on one root-to-leaf path (iterative):
    ``exp sin cosh x`` has 2."""
    ops = frozenset(ops)
    slots = [0]  # per pending operand: the count of ops above it
    best = 0
    for token in tree:
        if not slots:
            raise ValueError("max_nested: tokens after a complete tree")
        depth = slots.pop() + (token in ops)
        best = max(best, depth)
        slots.extend([depth] * arity(token))
    if slots:
        raise ValueError("max_nested: the tree ends inside an operand")
    return best


def is_valid_released(tree: Tree, variable: str = "x", check: str = "released") -> bool:
    """The released generator's acceptance: fewer than 4 nested exp/sinh/cosh and finite at
    one of the 18 points (by default evaluated as the released code does, see
    :func:`finite_at_released_points`; ``check="strict"`` evaluates every function)."""
    return max_nested(tree) < 4 and finite_at_released_points(tree, variable, check)


# ---- complex-step derivatives -------------------------------------------------------------------
def _cs_mod(a, b):
    q = np.trunc(a.real / b.real)
    return np.fmod(a.real, b.real) + 1j * (a.imag - q * b.imag)


#: analytic stand-ins for the operators numpy evaluates non-analytically on complex input
#: (abs gives the modulus, sign z/|z|, maximum compares lexicographically, trunc/fmod refuse)
_COMPLEX_STEP_FUNCTIONS: Mapping[str, Callable[..., np.ndarray]] = {
    "abs": lambda z: np.where(z.real < 0, -z, z),
    "sign": lambda z: np.sign(z.real),
    "relu": lambda z: np.where(z.real > 0, z, 0),
    "idiv": lambda a, b: np.trunc(a.real / b.real),
    "mod": _cs_mod,
}


def complex_step_derivative(
    tree_or_program: Tree | Program,
    env: Mapping[str, np.ndarray],
    variable: str,
    h: float = 1e-20,
) -> np.ndarray:
    """d f / d ``variable`` at the points of ``env`` by the complex step Im f(x + ih) / h
    (exact to rounding, no cancellation: h can be tiny).

    Valid only where f is real-analytic. numpy's abs, sign and maximum are not analytic on
    complex input, so the plain complex step is wrong through abs, sign and relu; here they
    (and idiv, mod) are evaluated by their analytic pieces (abs z = -z where Re z < 0, sign and
    idiv constant, relu z = z where Re z > 0), which is right away from the kinks and jumps;
    at a kink the result is one side's derivative (abs, relu at 0: 0 or 1). Points where f
    itself is not finite in real mode (domain errors, poles) give NaN, not the complex
    branch's derivative.
    """
    program = _program(tree_or_program)
    if variable not in env:
        raise KeyError(f"complex_step_derivative: no values for the variable {variable!r}")
    real = program(env)
    shifted = dict(env)
    shifted[variable] = np.asarray(env[variable], dtype=np.float64) + 1j * h
    values = program(shifted, dtype=np.complex128, functions=_COMPLEX_STEP_FUNCTIONS)
    derivative = np.broadcast_to(values.imag / h, np.shape(real))
    return np.where(np.isfinite(real), derivative, np.nan)


# ---- integer mode (recurrences) -----------------------------------------------------------------
MAX_ABS_INT = 10**100
#: operators of integer mode
INT_OPERATORS = frozenset(
    ("add", "sub", "mul", "idiv", "mod", "pow", "abs", "sign", "sqr", "relu", "id",
     "pow2", "pow3", "pow4", "pow5")
)  # fmt: skip


def _c_div(a: int, b: int) -> int:
    """a / b truncated toward zero (C); b != 0."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _int_pow(a: int, b: int, max_abs: int) -> int | None:
    if b < 0:
        return None  # not an integer (a = +-1 aside; undefined for a = 0)
    if abs(a) >= 2 and (abs(a).bit_length() - 1) * b > max_abs.bit_length():
        return None  # |a|**b >= 2**((bits - 1) b) > max_abs: never computed
    return a**b


def _int_binary(name: str, a: int, b: int, max_abs: int) -> int | None:
    if name == "add":
        return a + b
    if name == "sub":
        return a - b
    if name == "mul":
        return a * b
    if name == "pow":
        return _int_pow(a, b, max_abs)
    if b == 0:
        return None  # idiv, mod by zero
    q = _c_div(a, b)
    return q if name == "idiv" else a - b * q


_INT_UNARY: Mapping[str, Callable[[int], int]] = {
    "abs": abs,
    "sign": lambda a: (a > 0) - (a < 0),
    "sqr": lambda a: a * a,
    "relu": lambda a: max(a, 0),
    "id": lambda a: a,
    "pow2": lambda a: a**2,
    "pow3": lambda a: a**3,
    "pow4": lambda a: a**4,
    "pow5": lambda a: a**5,
}


def evaluate_int(tree: Tree, env: Mapping[str, int], max_abs: int = MAX_ABS_INT) -> int | None:
    """The exact value of ``tree`` in Python integers (recurrences), or None when it is
    undefined: division by zero, a negative exponent, or a value (leaf, intermediate or
    result) beyond ``max_abs`` in absolute value.

    Semantics are C-like (INFERRED): ``idiv`` truncates toward zero (-7 idiv 2 = -3) and
    ``mod`` takes the sign of the dividend (-7 mod 2 = -1), so a = b (a idiv b) + a mod b;
    0 pow 0 = 1. Only :data:`INT_OPERATORS` and integer leaves are allowed (ValueError).
    """
    stack: list[int] = []
    for token in reversed(tree):
        op = OPERATORS.get(token)
        if op is None:
            value = _int_leaf(token, env)
        else:
            if token not in INT_OPERATORS:
                raise ValueError(f"evaluate_int: operator {token!r} is not an integer operator")
            if len(stack) < op.arity:
                raise ValueError(f"evaluate_int: operator {token!r} lacks operands")
            if op.arity == 1:
                value = _INT_UNARY[token](stack.pop())
            else:
                left = stack.pop()
                value = _int_binary(token, left, stack.pop(), max_abs)
                if value is None:
                    return None
        if abs(value) > max_abs:
            return None
        stack.append(value)
    if len(stack) != 1:
        raise ValueError(f"evaluate_int: {len(stack)} expressions, expected 1")
    return stack[0]


def _int_leaf(token: str, env: Mapping[str, int]) -> int:
    if is_int(token):
        return int(token[1:])
    if is_variable(token):
        if token not in env:
            raise ValueError(f"evaluate_int: no value for the variable {token!r}")
        value = env[token]
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"evaluate_int: variable {token!r} is {value!r}, not an integer")
        return int(value)
    raise ValueError(f"evaluate_int: {token!r} is not an integer leaf")
