"""Integration generators (Lample & Charton 2019, section 3.1): forward (SymPy's Risch
integrator), backward (differentiate a random primitive) and by parts (known integrals)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import sympy as sp

from synthmath.expressions.errors import UnsupportedExpression
from synthmath.expressions.operators import Tree
from synthmath.expressions.sympy_bridge import (
    from_sympy,
    remove_root_constants,
    simplify,
)

#: the paper's problems, then the robustness test sets after Welleck et al. (2022)
from synthmath.tasks.symbolic.steps import (
    Example,
    GenConfig,
    X,
    answer_tree,
    draw_n_ops,
    forbidden,
    maybe_simplify,
    pair,
    random_expr,
)


# ---- integration -----------------------------------------------------------------------------
def gen_prim_bwd(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """Backward: sample F, drop its root constants, f = F' (simplified w.p. 1/2, 2 s)."""
    n = draw_n_ops(rng, 3, 4, cfg)
    F = random_expr(rng, n, cfg)
    if isinstance(F, str):
        return F
    F = remove_root_constants(F, ("x",))
    if not F.has(X):
        return "constant"
    tgt = answer_tree(F, n, cfg)  # F's own rejections before the costly simplification
    if isinstance(tgt, str):
        return tgt
    f = maybe_simplify(sp.diff(F, X), rng, cfg.simplify_prob, 2.0)
    return pair(f, F, n, cfg, tgt)


_SPECIAL = ("NonElementaryIntegral",)


def gen_prim_fwd(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """Forward: sample f and integrate it with SymPy's Risch integrator, then (as the released
    code) with ``doit`` where Risch leaves an unevaluated integral."""
    n = draw_n_ops(rng, 2, 3, cfg)
    f = random_expr(rng, n, cfg, at_least_once=("x",))
    if isinstance(f, str):
        return f
    F = sp.integrate(f, X, risch=True)
    if type(F).__name__ in _SPECIAL:
        return "not_integrable"  # proven non-elementary
    if F.has(sp.Integral):
        # SymPy's Risch code returns an unevaluated Integral for what it does not handle
        # (tan, roots...): as the released code, SymPy's full integrator then tries it
        F = F.doit()
        if F.has(sp.Integral) or type(F).__name__ in _SPECIAL:
            return "not_integrable"
    reason = forbidden(F)
    if reason:
        return reason
    return pair(f, F, n, cfg)


class PrimitiveCache:
    """IBP's known integrals: integrand (up to a numeric factor) -> primitive, bounded (LRU).

    Filled with every (f, F) pair a generator makes; on a conflict the shorter primitive is
    kept. Per process, as the released code; a dataset job may warm it from a BWD dataset.
    """

    def __init__(self, max_size: int = 100_000):
        self.max_size = max_size
        self._known: OrderedDict[Tree, sp.Expr] = OrderedDict()
        self.lookups = 0
        self.hits = 0

    @staticmethod
    def _key(integrand: sp.Expr) -> tuple[sp.Expr, Tree] | None:
        coeff, rest = integrand.as_coeff_Mul()
        if coeff == 0:
            return None
        try:
            return coeff, from_sympy(rest)
        except UnsupportedExpression:
            return None

    def add(self, integrand: sp.Expr, primitive: sp.Expr) -> None:
        key = self._key(integrand)
        if key is None:
            return
        coeff, tree = key
        value = primitive / coeff
        old = self._known.get(tree)
        if old is None or sp.count_ops(value) < sp.count_ops(old):
            self._known[tree] = value
        self._known.move_to_end(tree)
        while len(self._known) > self.max_size:
            self._known.popitem(last=False)

    def get(self, integrand: sp.Expr) -> sp.Expr | None:
        self.lookups += 1
        key = self._key(integrand)
        if key is None:
            return None
        coeff, tree = key
        value = self._known.get(tree)
        if value is None:
            return None
        self.hits += 1
        return coeff * value

    def __len__(self) -> int:
        return len(self._known)


PRIMITIVES = PrimitiveCache()


def gen_prim_ibp(
    rng: np.random.Generator, cfg: GenConfig, cache: PrimitiveCache = PRIMITIVES
) -> Example | str:
    """By parts: F, G random, f = F', g = G'; if the integral H of f G is known,
    the integral of F g is F G - H (and symmetrically)."""
    n = draw_n_ops(rng, 3, 4, cfg)
    F = random_expr(rng, n, cfg)
    if isinstance(F, str):
        return F
    G = random_expr(rng, int(rng.integers(1, cfg.max_ops_g + 1)), cfg)
    if isinstance(G, str):
        return G
    F, G = remove_root_constants(F, ("x",)), remove_root_constants(G, ("x",))
    if not (F.has(X) and G.has(X)):
        return "constant"
    f, g = sp.diff(F, X), sp.diff(G, X)
    cache.add(f, F)
    cache.add(g, G)
    for (A, a), (B, b) in (((F, f), (G, g)), ((G, g), (F, f))):
        known = cache.get(a * B)
        if known is None:
            continue
        integrand = A * b
        primitive = simplify(A * B - known, 1.0)[1]
        reason = forbidden(primitive) or forbidden(integrand)
        if reason:
            return reason
        cache.add(integrand, primitive)
        return pair(integrand, primitive, n, cfg)
    return "ibp_miss"
