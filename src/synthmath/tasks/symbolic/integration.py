"""Integration generators (Lample & Charton 2019, section 3.1): forward (SymPy's Risch
integrator), backward (differentiate a random primitive) and by parts (known integrals)."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import sympy as sp

from synthmath.expressions.errors import TimeoutExpired, UnsupportedExpression
from synthmath.expressions.operators import Tree
from synthmath.expressions.sympy_bridge import (
    from_sympy,
    remove_root_constants,
    simplify,
)
from synthmath.expressions.workers import time_limit
from synthmath.tasks.symbolic.steps import (
    SYMPY_ERRORS,
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
def bwd_pair(rng: np.random.Generator, cfg: GenConfig) -> tuple[sp.Expr, sp.Expr, int] | str:
    """BWD's draws: F random (root constants dropped), f = F' unsimplified; (f, F, n_ops)."""
    n = draw_n_ops(rng, 3, 4, cfg)
    F = random_expr(rng, n, cfg)
    if isinstance(F, str):
        return F
    F = remove_root_constants(F, ("x",))
    if not F.has(X):
        return "constant"
    return sp.diff(F, X), F, n


def gen_prim_bwd(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """Backward: sample F, drop its root constants, f = F' (simplified w.p. 1/2, 2 s)."""
    drawn = bwd_pair(rng, cfg)
    if isinstance(drawn, str):
        return drawn
    f, F, n = drawn
    tgt = answer_tree(F, n, cfg)  # F's own rejections before the costly simplification
    if isinstance(tgt, str):
        return tgt
    f = maybe_simplify(f, rng, cfg.simplify_prob, 2.0)
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

    On a conflict the shorter primitive is kept. With ``base``, a read-only cache consulted
    after this one: an attempt's own pairs go into a small cache over the task's warm set
    (:func:`known_integrals`), so the warm set stays fixed and every attempt is a function
    of its rng alone. Lookups and hits are counted in :attr:`lookups` and :attr:`hits` of
    the outermost cache and of ``base`` (the task reads them from its warm set).
    """

    def __init__(self, max_size: int = 100_000, base: PrimitiveCache | None = None):
        self.max_size = max_size
        self.base = base
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
        if self.base is not None:
            self.base.lookups += 1
        key = self._key(integrand)
        if key is None:
            return None
        coeff, tree = key
        value = self._known.get(tree)
        if value is None and self.base is not None:
            value = self.base._known.get(tree)
        if value is None:
            return None
        self.hits += 1
        if self.base is not None:
            self.base.hits += 1
        return coeff * value

    def __len__(self) -> int:
        return len(self._known)


#: most BWD draws per warm pair asked for (constants and invalid trees are skipped)
WARM_DRAWS_PER_PAIR = 20
#: seconds one warm draw may take (BWD's attempt limit); a draw over it is skipped
WARM_DRAW_TIMEOUT_S = 5.0
_WARM: OrderedDict[tuple, PrimitiveCache] = OrderedDict()


def warm_key(cfg: GenConfig) -> tuple:
    """What the warm set depends on: the BWD draws' parameters and its size."""
    return (cfg.preset.name, cfg.max_ops, cfg.min_ops, cfg.sampler, cfg.validity, cfg.ibp_warm)


def warm_seed(cfg: GenConfig) -> int:
    """The warm set's seed, from the task parameters only (not a shard's seed): every process
    warms with the same pairs, and a larger ``ibp_warm`` extends a smaller one's set."""
    text = json.dumps(warm_key(cfg)[:-1])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def known_integrals(cfg: GenConfig, heartbeat: Callable[[], None] | None = None) -> PrimitiveCache:
    """IBP's warm set: ``cfg.ibp_warm`` BWD pairs (f = F' unsimplified, F), draw k from
    ``default_rng([warm_seed(cfg), k])``, made once per process and parameters (memoised).

    Call it outside any attempt time limit (it takes ~15 ms a pair at max_ops 15);
    ``heartbeat`` is called after every draw (a shard child's sign of life). A draw that
    takes over :data:`WARM_DRAW_TIMEOUT_S` is skipped: the one way the set can differ
    between machines, as a timed-out attempt changes an example.
    """
    key = warm_key(cfg)
    cache = _WARM.get(key)
    if cache is not None:
        _WARM.move_to_end(key)
        return cache
    cache = PrimitiveCache(max_size=max(cfg.ibp_warm, 1))
    seed, added = warm_seed(cfg), 0
    for k in range(WARM_DRAWS_PER_PAIR * cfg.ibp_warm):
        if added >= cfg.ibp_warm:
            break
        try:
            with time_limit(WARM_DRAW_TIMEOUT_S):
                drawn = bwd_pair(np.random.default_rng([seed, k]), cfg)
        except TimeoutExpired:
            drawn = "timeout"
        except SYMPY_ERRORS:
            drawn = "sympy"  # SymPy's corner cases, skipped as a rejected attempt
        if not isinstance(drawn, str):
            cache.add(drawn[0], drawn[1])
            added += 1
        if heartbeat is not None:
            heartbeat()
    _WARM[key] = cache
    while len(_WARM) > 2:
        _WARM.popitem(last=False)
    return cache


def gen_prim_ibp(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """By parts: F, G random, f = F', g = G'; if the integral H of f G is known,
    the integral of F g is F G - H (and symmetrically).

    Known: the warm set of :func:`known_integrals` (the task makes it before the first
    attempt: made here, it would count against the attempt's time limit) and this attempt's
    (f, F), (g, G). The primitive has no root additive constant.
    """
    cache = PrimitiveCache(base=known_integrals(cfg))
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
        # no integration constant in an answer (as the released code)
        primitive = remove_root_constants(simplify(A * B - known, 1.0)[1], ("x",))
        if not primitive.has(X):
            return "constant"
        reason = forbidden(primitive) or forbidden(integrand)
        if reason:
            return reason
        return pair(integrand, primitive, n, cfg)
    return "ibp_miss"
