"""Controllability of a non-autonomous system x' = f(x, u, t) (``control_t``, differential.md):
the SymPy reference (``jacobian: sympy``; the default labels come from the truncated Taylor
series of :mod:`synthmath.tasks.differential.taylor`, checked against this in tests).

A(t) = df/dx and B(t) = df/du at x = u = 0.5 in every coordinate (t left symbolic), by SymPy;
then D_0 = B, D_(i+1) = dD_i/dt - A D_i for floor(2n/p) steps (the released recursion), and
the system is controllable if the stacked [D_0 .. D_k] has rank n (singular values above
1e-6) at one or more of the times 0.19, 0.39, 0.59, 0.79, 0.99 (CONFIRMED, released
generator). Times where an entry is not a finite real number are skipped; with none left the
system is rejected. The released code also simplified A(t) and B(t) (2 s cap): that only
changes the speed, not the values, and is not done here. The whole computation runs under a
10 s limit (released), a timeout rejects the system.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy as sp

from synthmath.expressions.errors import TimeoutExpired, UnsupportedExpression
from synthmath.expressions.operators import Tree
from synthmath.expressions.sympy_bridge import has_forbidden, symbol, to_sympy
from synthmath.expressions.workers import time_limit
from synthmath.tasks.differential.labels import RANK_TOL
from synthmath.tasks.differential.systems import control_names, state_names

TIMES = (0.19, 0.39, 0.59, 0.79, 0.99)
TIME_LIMIT_S = 10.0
T = symbol("t")


def _value(expr: sp.Expr, digits: int = 20) -> float:
    """A finite real number, or NaN."""
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        return float("nan")
    z = complex(sp.N(expr, digits))
    return z.real if np.isfinite(z.real) and abs(z.imag) <= 1e-12 * (1 + abs(z.real)) else np.nan


def _constant_folded(expr: sp.Expr) -> sp.Expr | None:
    """An entry without t as a 30-digit Float (the recursion's products stay small; the
    released code simplified instead), None when it is not a finite real number."""
    if expr.has(T):
        return expr
    value = _value(expr, 30)
    return None if np.isnan(value) else sp.Float(value, 30)


def krylov_matrices(
    equations: Sequence[Tree], n: int, p: int, point: float = 0.5
) -> list[sp.Matrix] | None:
    """[D_0, ..., D_k] as SymPy matrices in t (None if an equation is not writable)."""
    try:
        exprs = [to_sympy(tree) for tree in equations]
    except UnsupportedExpression:
        return None
    if any(has_forbidden(e) is not None for e in exprs):
        return None
    xs = [symbol(v) for v in state_names(n)]
    us = [symbol(v) for v in control_names(p)]
    at = {s: sp.Rational(point).limit_denominator(10**6) for s in xs + us}
    a = sp.Matrix(n, n, lambda i, j: _constant_folded(sp.diff(exprs[i], xs[j]).xreplace(at)))
    b = sp.Matrix(n, p, lambda i, j: _constant_folded(sp.diff(exprs[i], us[j]).xreplace(at)))
    if any(e is None for e in (*a, *b)):
        return None
    blocks = [b]
    for _ in range((2 * n) // p):
        blocks.append(blocks[-1].diff(T) - a * blocks[-1])
    return blocks


def time_varying_rank(
    equations: Sequence[Tree], n: int, p: int, point: float = 0.5, times: Sequence[float] = TIMES
) -> int | None:
    """The largest rank of [D_0 .. D_k] over ``times``; None when undefined at every time
    or not writable, -1 over the time limit."""
    try:
        with time_limit(TIME_LIMIT_S):
            blocks = krylov_matrices(equations, n, p, point)
            if blocks is None:
                return None
            stacked = sp.Matrix.hstack(*blocks)
            best = None
            for t in times:
                sub = stacked.xreplace({T: sp.Rational(t).limit_denominator(1000)})
                values = np.array([[_value(e) for e in row] for row in sub.tolist()])
                if not np.isfinite(values).all():
                    continue
                s = np.linalg.svd(values, compute_uv=False)
                rank = int(np.count_nonzero(s > RANK_TOL))
                best = rank if best is None else max(best, rank)
            return best
    except TimeoutExpired:
        return -1
    except (ValueError, TypeError, ZeroDivisionError, RecursionError, np.linalg.LinAlgError):
        return None
