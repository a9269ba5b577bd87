"""Robustness test sets after Welleck et al. (2022), "Symbolic brittleness in sequence models":
simple primitives and in-distribution problems with a small coefficient change."""

from __future__ import annotations

import numpy as np
import sympy as sp

from synthmath.expressions.errors import UnsupportedExpression
from synthmath.expressions.numeric import is_valid_released
from synthmath.expressions.operators import n_operators
from synthmath.expressions.sampling import sample_trees
from synthmath.expressions.sympy_bridge import (
    remove_root_constants,
    to_sympy,
)

#: the paper's problems, then the robustness test sets after Welleck et al. (2022)
from synthmath.tasks.symbolic.steps import (
    Example,
    GenConfig,
    X,
    draw_n_ops,
    forbidden,
    pair,
    to_tree,
)


# ---- robustness (Welleck et al. 2022, "Symbolic brittleness in sequence models") -------------
def gen_robust_poly(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """A simple primitive: integrand k x^n (k in 1..100, n in 1..10); answer k x^(n+1)/(n+1)."""
    k, n = int(rng.integers(1, 101)), int(rng.integers(1, 11))
    f = sp.Integer(k) * X ** sp.Integer(n)
    return _simple_pair(f, sp.Integer(k) * X ** (n + 1) / (n + 1))


def gen_robust_exp(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """A simple primitive: integrand exp(k x), k in +-[1, 100]; answer exp(k x)/k."""
    k = int(rng.integers(1, 101)) * (1 if rng.random() < 0.5 else -1)
    return _simple_pair(sp.exp(k * X), sp.exp(k * X) / k)


def _simple_pair(f: sp.Expr, F: sp.Expr) -> Example | str:
    src, tgt = to_tree(f), to_tree(F)
    if isinstance(src, str) or isinstance(tgt, str):
        return src if isinstance(src, str) else tgt
    return Example(src, tgt, n_operators(tgt))


def gen_robust_coeff(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """A backward example whose primitive had one integer leaf moved by 1..3 (either way):
    an in-distribution problem with a small coefficient change."""
    n = draw_n_ops(rng, 3, 4, cfg)
    tree = sample_trees(cfg.preset, np.array([n]), rng, sampler=cfg.sampler)[0]
    ints = [i for i, t in enumerate(tree or ()) if t[0] == "i" and t[1:].lstrip("-").isdigit()]
    if not ints:
        return "no_integer"
    i = ints[int(rng.integers(len(ints)))]
    value = int(tree[i][1:]) + int(rng.choice([-3, -2, -1, 1, 2, 3]))
    if value == 0:
        return "zero_coefficient"
    tree = (*tree[:i], f"i{value}", *tree[i + 1 :])
    if not is_valid_released(tree, check=cfg.validity):
        return "not_finite"
    try:
        F = to_sympy(tree)
    except (UnsupportedExpression, ValueError, ZeroDivisionError):
        return "sympy"
    reason = forbidden(F)
    if reason:
        return reason
    F = remove_root_constants(F, ("x",))
    if not F.has(X):
        return "constant"
    return pair(sp.diff(F, X), F, n, cfg)
