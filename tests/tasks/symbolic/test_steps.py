"""The released rejections that depend on the answer alone are made before the costly steps
(BWD's simplification, the ODE solves and substitution check), with the same decisions."""

from __future__ import annotations

import numpy as np
import sympy as sp

from synthmath.expressions.operators import get_preset
from synthmath.tasks.symbolic import integration, odes
from synthmath.tasks.symbolic.steps import GenConfig, answer_tree, check_sizes

X = sp.Symbol("x")
CFG = GenConfig(preset=get_preset("lc_released"), max_ops=6, simplify_prob=0.0)


def test_answer_tree_gives_the_final_checks_rejections_early():
    expr = sp.sin(X) * sp.exp(X) + X**2  # add mul sin x exp x pow x i2: 5 operators
    tree = answer_tree(expr, 10, CFG)
    assert tree == ("add", "pow", "x", "i2", "mul", "exp", "x", "sin", "x")
    assert check_sizes(tree, tree, 10, CFG, tree) is None
    assert answer_tree(expr, 11, CFG) == "collapsed"  # 5 < 11 / 2, as check_sizes says
    assert check_sizes(tree, tree, 11, CFG, tree) == "collapsed"
    short = GenConfig(preset=CFG.preset, max_ops=6, max_len=8)
    assert answer_tree(expr, 4, short) == "too_long"  # 9 tokens + 2 > 8
    assert answer_tree(sp.erf(X), 1, CFG) == "unsupported_erf"
    # a float SymPy left behind is rejected (the vocabulary has none), not encoded later
    assert answer_tree(sp.Float(0.5) * sp.sin(X) + X, 1, CFG) == "unsupported_float"
    # the length bound counts model tokens: add INT- 1 2 3 x and BOS/EOS are 8
    assert answer_tree(X - 123, 1, GenConfig(preset=CFG.preset, max_ops=6, max_len=8)) == (
        "add", "i-123", "x"
    )  # fmt: skip
    assert answer_tree(X - 123, 1, GenConfig(preset=CFG.preset, max_ops=6, max_len=7)) == (
        "too_long"
    )


def test_bwd_rejects_a_collapsed_primitive_before_differentiating(monkeypatch):
    calls = []

    def recording(expr, rng, p, timeout_s):
        calls.append(expr)
        return expr

    monkeypatch.setattr(integration, "maybe_simplify", recording)
    outcomes = []
    for seed in range(150):
        before = len(calls)
        result = integration.gen_prim_bwd(np.random.default_rng([seed, 0]), CFG)
        outcomes.append(result if isinstance(result, str) else "accepted")
        if result == "collapsed":
            assert len(calls) == before, "a collapsed F was differentiated and simplified"
        elif not isinstance(result, str):
            assert len(calls) == before + 1
    assert "collapsed" in outcomes and "accepted" in outcomes


def test_ode_size_checks_come_before_the_substitution_check(monkeypatch):
    def no_check(*args, **kwargs):
        raise AssertionError("ode_holds called on an example rejected anyway")

    monkeypatch.setattr(odes, "ode_holds", no_check)
    eq = odes.Y1 - odes.Y0 * sp.cos(X) ** 2 * sp.exp(X)
    sol = sp.Symbol("c") * sp.exp(X)
    tgt = ("mul", "c", "exp", "x")
    short = GenConfig(preset=CFG.preset, max_ops=6, max_len=10)
    assert odes._verified_pair(eq, sol, tgt, 1, 2, short) == "too_long"
