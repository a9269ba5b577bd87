"""ODE generators (Lample & Charton 2019, sections 3.2 and 3.3): a random solution with one or
two constants, solved for them and differentiated; checked by substitution."""

from __future__ import annotations

import numpy as np
import sympy as sp

from synthmath.expressions.equivalence import grid_residual_fraction
from synthmath.expressions.errors import UnsupportedExpression
from synthmath.expressions.operators import Tree, is_float
from synthmath.expressions.sympy_bridge import (
    from_sympy,
    reduce_coefficients,
    simplify,
    symbol,
)

#: the paper's problems, then the robustness test sets after Welleck et al. (2022)
from synthmath.tasks.symbolic.steps import (
    C1,
    C2,
    Y0,
    Y1,
    Y2,
    C,
    Example,
    GenConfig,
    X,
    answer_tree,
    check_sizes,
    draw_n_ops,
    maybe_simplify,
    random_expr,
)


# ---- ODEs ------------------------------------------------------------------------------------
def _chain_dx(F: sp.Expr) -> sp.Expr:
    """d/dx F(x, Y, Y') along a solution: dF/dx + dF/dY Y' + dF/dY' Y''."""
    return sp.diff(F, X) + sp.diff(F, Y0) * Y1 + sp.diff(F, Y1) * Y2


def _solve_for(expr: sp.Expr, const: sp.Symbol, rng) -> sp.Expr | str:
    """One solution of expr = 0 for ``const`` that depends on x, drawn at random."""
    sols = sp.solve(expr, const, check=False, simplify=False)
    sols = [s for s in sols if s.has(X)]
    if not sols:
        return "unsolvable"
    return sols[int(rng.integers(len(sols)))]


def _drop_nonzero_factors(eq: sp.Expr, keep: sp.Symbol) -> sp.Expr:
    """Factor, then drop the factors that cannot vanish and do not carry ``keep``: numbers,
    exponentials and denominators (negative powers)."""
    eq = sp.factor(eq)
    if not isinstance(eq, sp.Mul):
        return eq
    kept = []
    for factor in eq.args:
        if not factor.has(keep) and (
            factor.is_number
            or isinstance(factor, sp.exp)
            or (isinstance(factor, sp.Pow) and factor.exp.is_negative)
            or (isinstance(factor, sp.Pow) and isinstance(factor.base, sp.exp))
        ):
            continue
        kept.append(factor)
    return sp.Mul(*kept) if kept else eq


def ode_holds(eq: sp.Expr, solution: sp.Expr, order: int, timeout_s: float = 1.0) -> bool:
    """The released check: the solution substituted for Y simplifies to 0 (1 s), else the
    residual is at most 1e-13 at >= 20% of the points +-{0.1, 0.9, 1.1, 1.9}^k (k <= 3 free
    symbols; :func:`~synthmath.expressions.equivalence.grid_residual_fraction`)."""
    subs = {Y0: solution, Y1: sp.diff(solution, X)}
    if order == 2:
        subs[Y2] = sp.diff(solution, X, 2)
    residual = eq.xreplace(subs)
    status, simple = simplify(residual, timeout_s)
    if status == "ok" and simple == 0:
        return True
    fraction = grid_residual_fraction(residual)
    return fraction is not None and fraction >= 0.2


def gen_ode1(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """First order (paper 3.2): f(x, c) with c in one leaf; solve f = Y for c; differentiate."""
    n = draw_n_ops(rng, -1, 3, cfg)
    sol = random_expr(rng, n, cfg, at_least_once=("x",), exactly_once=("c",))
    if isinstance(sol, str):
        return sol
    sol = reduce_coefficients(sol, ("c",))
    if not sol.has(C) or not sol.has(X):
        return "constant"
    tgt = answer_tree(sol, n, cfg)  # the solution's rejections before the solve (released)
    if isinstance(tgt, str):
        return tgt
    F = _solve_for(sol - Y0, C, rng)
    if isinstance(F, str):
        return F
    eq = _chain_dx(F)
    if not eq.has(Y1):
        return "no_derivative"
    eq = _drop_nonzero_factors(eq, Y1)
    eq = maybe_simplify(eq, rng, cfg.simplify_prob, 1.0)
    if not eq.has(Y1):
        return "no_derivative"
    return _verified_pair(eq, sol, tgt, 1, n, cfg)


def gen_ode2(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """Second order (paper 3.3): f(x, c1, c2); solve for c2, differentiate, solve for c1,
    differentiate again (about half the c1 solves fail: rejected)."""
    n = draw_n_ops(rng, -1, 5, cfg)
    sol = random_expr(rng, n, cfg, at_least_once=("x",), exactly_once=("c1", "c2"))
    if isinstance(sol, str):
        return sol
    sol = reduce_coefficients(sol, ("c1", "c2"))
    if not (sol.has(C1) and sol.has(C2) and sol.has(X)):
        return "constant"
    tgt = answer_tree(sol, n, cfg)  # the solution's rejections before the solves (released)
    if isinstance(tgt, str):
        return tgt
    F2 = _solve_for(sol - Y0, C2, rng)
    if isinstance(F2, str):
        return F2
    G = _chain_dx(F2)
    if not G.has(C1):
        return "unsolvable_c1"
    F1 = _solve_for(G, C1, rng)
    if isinstance(F1, str) or F1.has(C1) or F1.has(C2):
        return "unsolvable_c1"
    eq = _chain_dx(F1)
    if not eq.has(Y2):
        return "no_derivative"
    eq = _drop_nonzero_factors(eq, Y2)
    eq = maybe_simplify(eq, rng, 1.0, 1.0)
    if not eq.has(Y2):
        return "no_derivative"
    return _verified_pair(eq, sol, tgt, 2, n, cfg)


def _as_unknown(eq: sp.Expr) -> sp.Expr:
    """The plain symbols Y, Y', Y'' as the unknown function Y(x) and its derivatives."""
    return eq.xreplace({s: symbol(s.name) for s in (Y0, Y1, Y2)})


def _verified_pair(
    eq: sp.Expr, sol: sp.Expr, tgt: Tree, order: int, n: int, cfg: GenConfig
) -> Example | str:
    """The example (equation, solution's tree ``tgt``) after the released rejections, the
    cheap ones (a head the vocabulary cannot write, too long) before the substitution check
    (a simplification of up to 1 s): the order changes no decision, only time."""
    try:
        src = from_sympy(_as_unknown(eq))
    except UnsupportedExpression as err:
        return f"forbidden_{getattr(err, 'head', err)}"
    if any(map(is_float, src)):
        return "unsupported_float"
    reason = check_sizes(src, tgt, n, cfg, tgt)
    if reason:
        return reason
    if not ode_holds(eq, sol, order):
        return "not_verified"
    return Example(src, tgt, n)
