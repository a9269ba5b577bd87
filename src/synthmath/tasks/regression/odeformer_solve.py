"""Integration of generated and predicted ODE systems (the ``odeformer`` task).

:func:`fast_rhs` evaluates a system's right-hand side on Python floats (nested closures, about
10x faster than numpy scalars at one point); :func:`integrate` runs ``solve_ivp`` with a
deterministic budget of right-hand-side calls, a generous wall cap and the release's terminal
event, and names the reason when it gives up (a rejection reason of the generator, "not
integrable" for scoring).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

from synthmath.expressions.numeric import leaf_value
from synthmath.expressions.operators import OPERATORS, Tree

#: the event stops integration when a component reaches this magnitude (then rejected)
MAX_VALUE = 100.0
#: trajectories with a larger value are rejected
MAX_ABS = 1e100


def variables(dim: int) -> tuple[str, ...]:
    return tuple(f"x_{j}" for j in range(dim))


Scalar = Callable[[list], float]
_MATH: dict[str, Callable[[float], float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "ln": math.log,
    "sqrt": math.sqrt, "abs": abs, "atan": math.atan, "sinh": math.sinh, "cosh": math.cosh,
    "tanh": math.tanh, "asin": math.asin, "acos": math.acos,
}  # fmt: skip
#: what an expression may raise on Python floats (domain errors, poles, overflow, complex)
EVAL_ERRORS = (ValueError, ZeroDivisionError, OverflowError, TypeError)


def _unary(name: str, a: Scalar) -> Scalar:
    if name == "pow2":
        return lambda x: a(x) ** 2
    if name == "pow3":
        return lambda x: a(x) ** 3
    if name == "inv":
        return lambda x: 1.0 / a(x)
    if name == "id":
        return a
    fn = _MATH.get(name)
    if fn is None:  # the rest through numpy (cot, sec, ...): finite or an error
        op = OPERATORS[name].numpy

        def fn(v: float) -> float:
            with np.errstate(all="raise"):
                return float(op(np.float64(v)))

    return lambda x: fn(a(x))


def _binary(name: str, a: Scalar, b: Scalar, ca: float | None, cb: float | None) -> Scalar:
    if name == "add":
        if ca is not None:
            return lambda x: ca + b(x)
        return lambda x: a(x) + b(x)
    if name == "mul":
        if ca is not None:
            return lambda x: ca * b(x)
        return lambda x: a(x) * b(x)
    if name == "sub":
        return lambda x: a(x) - b(x)
    if name == "div":
        return lambda x: a(x) / b(x)
    if name == "pow":
        if cb is not None and cb == int(cb) and abs(cb) <= 64:
            k = int(cb)
            return lambda x: a(x) ** k
        return lambda x: math.pow(a(x), b(x))
    raise ValueError(f"fast_rhs: operator {name!r} is not supported")


def scalar_function(tree: Tree, names: tuple[str, ...]) -> Scalar:
    """``tree`` as a function of a list of Python floats (``names[k]`` is item k): nested
    closures, about 10x faster than numpy scalars at one point. A domain error, pole or
    overflow raises one of :data:`EVAL_ERRORS` (numpy would give NaN/inf; both reject)."""
    index = {name: k for k, name in enumerate(names)}
    stack: list[tuple[Scalar, float | None]] = []
    for token in reversed(tree):
        op = OPERATORS.get(token)
        if op is None:
            value = leaf_value(token)
            if value is not None:
                stack.append(((lambda v: lambda x: v)(value), value))
            elif token in index:
                stack.append(((lambda k: lambda x: x[k])(index[token]), None))
            else:
                raise ValueError(f"fast_rhs: unknown leaf {token!r}")
        elif len(stack) < op.arity:
            raise ValueError(f"fast_rhs: operator {token!r} lacks operands")
        elif op.arity == 1:
            a, _ = stack.pop()
            stack.append((_unary(token, a), None))
        else:
            (a, ca), (b, cb) = stack.pop(), stack.pop()
            stack.append((_binary(token, a, b, ca, cb), None))
    if len(stack) != 1:
        raise ValueError(f"fast_rhs: {len(stack)} expressions, expected 1")
    return stack[0][0]


def fast_rhs(trees: tuple[Tree, ...]) -> Callable[[float, np.ndarray], np.ndarray]:
    """f(t, x) for ``solve_ivp`` of the system x_d' = trees[d](x_0..x_{D-1})."""
    functions = [scalar_function(tree, variables(len(trees))) for tree in trees]

    def f(t: float, x: np.ndarray) -> np.ndarray:
        values = x.tolist()
        return np.array([fn(values) for fn in functions])

    return f


class _Stop(Exception):
    """Integration aborted; ``args[0]`` is the rejection reason."""


def integrate(
    trees: tuple[Tree, ...],
    y0: np.ndarray,
    times: np.ndarray,
    *,
    max_evals: int,
    wall_s: float = 5.0,
    max_value: float | None = MAX_VALUE,
    method: str = "RK45",
    **solver_args,
) -> np.ndarray | str:
    """The trajectory (len(times), D) of x' = f(x) from ``y0`` at ``times[0]``, or the reason
    it is rejected (:data:`REJECTIONS`): ``budget`` past ``max_evals`` right-hand-side calls
    (deterministic), ``wall`` past ``wall_s`` seconds, ``diverged`` when max |x_d| reaches
    ``max_value`` (None: no such event) or the solver stops early, ``integration`` for a warning, an error, a
    non-finite derivative or value."""
    try:
        f = fast_rhs(trees)
    except (ValueError, OverflowError):  # a malformed tree, an integer beyond floats
        return "integration"
    calls = 0
    deadline = time.monotonic() + wall_s

    def rhs(t: float, x: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls > max_evals:
            raise _Stop("budget")
        if calls % 64 == 0 and time.monotonic() > deadline:
            raise _Stop("wall")
        try:
            value = f(t, x)
        except EVAL_ERRORS:
            raise _Stop("integration") from None
        if not np.isfinite(value).all():
            raise _Stop("integration")
        return value

    def event(t: float, x: np.ndarray) -> float:
        return max_value - float(np.max(np.abs(x)))

    event.terminal = True  # type: ignore[attr-defined]
    events = None if max_value is None else event
    times = np.asarray(times, dtype=np.float64)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sol = solve_ivp(
                rhs, (times[0], times[-1]), np.asarray(y0, dtype=np.float64), method=method,
                t_eval=times, events=events, **solver_args,
            )  # fmt: skip
    except _Stop as stop:
        return str(stop.args[0])
    except (ValueError, KeyError, ZeroDivisionError, OverflowError, FloatingPointError):
        return "integration"
    if caught:
        return "integration"
    if sol.status != 0 or sol.y.shape[1] != len(times):
        return "diverged"
    states = sol.y.T
    if not np.isfinite(states).all() or (np.abs(states) > MAX_ABS).any():
        return "integration"
    return states
