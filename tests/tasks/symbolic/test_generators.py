"""Every generated problem is checked independently of the generator: integrals by
differentiating the answer, ODE solutions by substitution (SymPy, then numerically)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.tasks.registry import make_task

X = sp.Symbol("x")
Y = sp.Function("Y")(X)


def _tree(s: str) -> tuple[str, ...]:
    return tuple(str(s).split())


def _zero(expr: sp.Expr, symbols: list[sp.Symbol], rng, share: float = 1.0) -> bool:
    """expr vanishes: simplify gives 0, or it is below 1e-8 at (a ``share`` of) the random
    points where it is finite and real (at least 5 of 40)."""
    if sp.simplify(expr) == 0:
        return True
    values = []
    for _ in range(40):
        point = {s: sp.Float(rng.uniform(0.2, 2.0) * rng.choice([-1, 1])) for s in symbols}
        v = complex(expr.xreplace(point).evalf())
        if np.isfinite(v) and abs(v.imag) < 1e-9:
            values.append(abs(v.real) / (1 + abs(v.real)))
    values = np.array(values)
    return len(values) >= 5 and np.mean(values < 1e-8) >= share


def _check_integral(src: str, tgt: str, rng) -> None:
    f, F = to_sympy(_tree(src)), to_sympy(_tree(tgt))
    assert F.has(X)
    assert _zero(sp.diff(F, X) - f, [X], rng), (src, tgt)


def _check_ode(src: str, tgt: str, order: int, rng) -> None:
    eq, sol = to_sympy(_tree(src)), to_sympy(_tree(tgt))
    assert eq.has(sp.Derivative(Y, (X, order)))
    residual = eq.subs(Y, sol).doit()
    constants = sorted(sol.free_symbols - {X}, key=lambda s: s.name)
    assert constants, "an ODE solution carries its constants"
    # solving for the constants picks one branch (sqrt, log): as the released generator, a
    # solution may hold where its branch does, so a fifth of the points must satisfy it
    assert _zero(residual, [X, *constants], rng, share=0.2), (src, tgt)


@pytest.mark.parametrize(
    "problem", ["prim_bwd", "prim_ibp", "robust_poly", "robust_exp", "robust_coeff"]
)
def test_integration_answers_differentiate_to_the_integrand(problem):
    task = make_task("symbolic", {"problem": problem, "max_ops": 6})
    raw = task.sample(6, np.random.default_rng(3))
    rng = np.random.default_rng(0)
    for src, tgt in zip(raw["src"], raw["tgt"]):
        _check_integral(src, tgt, rng)
    assert task.stats["accepted"] == 6


@pytest.mark.slow
def test_forward_integrals_differentiate_to_the_integrand():
    task = make_task("symbolic", {"problem": "prim_fwd", "max_ops": 5})
    raw = task.sample(4, np.random.default_rng(1))
    rng = np.random.default_rng(0)
    for src, tgt in zip(raw["src"], raw["tgt"]):
        _check_integral(src, tgt, rng)


@pytest.mark.parametrize(("problem", "order"), [("ode1", 1), ("ode2", 2)])
def test_ode_solutions_satisfy_their_equation(problem, order):
    task = make_task("symbolic", {"problem": problem, "max_ops": 6})
    raw = task.sample(3, np.random.default_rng(5))
    rng = np.random.default_rng(0)
    for src, tgt in zip(raw["src"], raw["tgt"]):
        _check_ode(src, tgt, order, rng)


def test_same_seed_same_examples_and_stats_are_counted():
    a = make_task("symbolic", {"max_ops": 6})
    b = make_task("symbolic", {"max_ops": 6})
    ra = a.sample(5, np.random.default_rng(11))
    rb = b.sample(5, np.random.default_rng(11))
    for key in ra:
        assert (ra[key] == rb[key]).all(), key
    assert a.stats["accepted"] == 5
    assert a.stats["attempts"] == a.stats["accepted"] + sum(a.stats["rejected"].values())


def test_a_list_of_problems_interleaves_them():
    task = make_task("symbolic", {"problem": "prim_bwd,robust_exp", "max_ops": 5})
    raw = task.sample(12, np.random.default_rng(0))
    assert set(raw["problem"]) == {"prim_bwd", "robust_exp"}


def test_the_ode_pipeline_derives_the_paper_equations():
    from synthmath.tasks.symbolic import odes as g

    rng = np.random.default_rng(0)
    # ode1 (paper 3.2): y = x log(c/x) gives x y' - y + x = 0
    F = g._solve_for(X * sp.log(g.C / X) - g.Y0, g.C, rng)
    eq = g._drop_nonzero_factors(g._chain_dx(F), g.Y1)
    ratio = sp.simplify(eq / (X * g.Y1 - g.Y0 + X))
    assert ratio.is_number and ratio != 0
    # ode2 (paper 3.3): y = c1 e^x + c2 e^-x gives y'' - y = 0
    F2 = g._solve_for(g.C1 * sp.exp(X) + g.C2 * sp.exp(-X) - g.Y0, g.C2, rng)
    F1 = g._solve_for(g._chain_dx(F2), g.C1, rng)
    eq = g._drop_nonzero_factors(g._chain_dx(F1), g.Y2)
    ratio = sp.simplify(eq / (g.Y2 - g.Y0))
    assert ratio.is_number and ratio != 0
