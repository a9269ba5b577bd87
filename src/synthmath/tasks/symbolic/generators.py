"""The five generators of Lample & Charton (2019): integration (FWD, BWD, IBP) and ODEs.

Each generator makes *one attempt* from a seeded rng and returns an :class:`Example` or the
reason it rejected the attempt (a short string, counted by the caller). The caller runs each
attempt under its time limit (:data:`TIMEOUTS`, the released values) and retries; inner
simplifications have their own 1-2 s caps and fall back to the unsimplified form.

Conventions (specs/symbolic.md): integration pairs are (integrand f, primitive F) with no
integration constant; ODE pairs are (the expression that vanishes, in ``x``, ``Y``, ``Y'``,
``Y''``; the solution, with the constants ``c`` or ``c1``/``c2``). While solving for the
constants, y, y' and y'' are plain symbols named ``Y``, ``Y'``, ``Y''`` and derivatives are
taken with the chain rule, so the equation converts to raw leaves directly.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import sympy as sp

from synthmath.expressions.errors import TimeoutExpired, UnsupportedExpression
from synthmath.expressions.numeric import compile as compile_tree
from synthmath.expressions.numeric import is_valid_released
from synthmath.expressions.operators import Preset, Tree, n_operators
from synthmath.expressions.sampling import sample_trees
from synthmath.expressions.sympy_bridge import (
    from_sympy,
    has_forbidden,
    reduce_coefficients,
    remove_root_constants,
    simplify,
    symbol,
    to_sympy,
)
from synthmath.expressions.workers import time_limit

#: the paper's problems, then the robustness test sets after Welleck et al. (2022)
PROBLEMS = (
    "prim_fwd", "prim_bwd", "prim_ibp", "ode1", "ode2",
    "robust_poly", "robust_exp", "robust_coeff",
)  # fmt: skip
#: per-attempt time limits of the released code (seconds)
TIMEOUTS = {
    "prim_fwd": 3.0, "prim_bwd": 5.0, "prim_ibp": 8.0, "ode1": 8.0, "ode2": 8.0,
    "robust_poly": 5.0, "robust_exp": 5.0, "robust_coeff": 5.0,
}  # fmt: skip

X = sp.Symbol("x")
Y0, Y1, Y2 = sp.Symbol("Y"), sp.Symbol("Y'"), sp.Symbol("Y''")
C, C1, C2 = sp.Symbol("c"), sp.Symbol("c1"), sp.Symbol("c2")


@dataclass(frozen=True)
class GenConfig:
    """What the generators need from the task parameters."""

    preset: Preset
    max_ops: int
    min_ops: int = 0  # operator counts are drawn as the paper's, then clipped to >= min_ops
    sampler: str = "uniform"
    max_len: int = 512  # raw-token bound on input and output (+2 for BOS/EOS)
    max_ops_g: int = 4  # IBP's G
    simplify_prob: float = 0.5  # BWD: simplify f w.p. 1/2; ODEs: the equation w.p. 1/2


@dataclass(frozen=True)
class Example:
    src: Tree  # the integrand, or the equation that vanishes
    tgt: Tree  # the primitive, or the solution
    n_ops: int  # the sampled operator count (of F, f or the solution)


# ---- shared steps ----------------------------------------------------------------------------
def draw_n_ops(rng: np.random.Generator, small: int, low: int, cfg: GenConfig) -> int:
    """With probability 1/40 a count in 0..small, else uniform in low..max_ops (the released
    draws), clipped to cfg.min_ops..cfg.max_ops."""
    if small >= 0 and rng.random() < 1 / 40:
        n = int(rng.integers(0, small + 1))
    else:
        n = int(rng.integers(min(low, cfg.max_ops), cfg.max_ops + 1))
    return int(np.clip(n, cfg.min_ops, cfg.max_ops))


def random_expr(
    rng: np.random.Generator,
    n_ops: int,
    cfg: GenConfig,
    at_least_once: tuple[str, ...] = (),
    exactly_once: tuple[str, ...] = (),
) -> sp.Expr | str:
    """A random SymPy expression with ``n_ops`` operators, or a rejection reason."""
    tree = sample_trees(
        cfg.preset,
        np.array([n_ops]),
        rng,
        sampler=cfg.sampler,
        at_least_once=at_least_once,
        exactly_once=exactly_once,
    )[0]
    if tree is None:
        return "too_few_leaves"
    # the constants count as 1 in the numeric check (it evaluates x only)
    if not is_valid_released(tuple("i1" if t in exactly_once else t for t in tree)):
        return "not_finite"
    try:
        expr = to_sympy(tree)
    except (UnsupportedExpression, ValueError, ZeroDivisionError):
        return "sympy"
    return _forbidden(expr) or expr


def _forbidden(expr: sp.Expr) -> str | None:
    head = has_forbidden(expr)
    return f"forbidden_{head}" if head else None


def to_tree(expr: sp.Expr) -> Tree | str:
    try:
        return from_sympy(expr)
    except UnsupportedExpression as err:
        return f"unsupported_{_head(err)}"


def _head(err: Exception) -> str:
    words = str(err).split()
    return words[0].strip(":'\"").lower() if words else "expr"


def check_sizes(src: Tree, tgt: Tree, n_ops: int, cfg: GenConfig, answer: Tree) -> str | None:
    """The released rejections: too long (with BOS/EOS) or collapsed by simplification."""
    if _token_len(src) + 2 > cfg.max_len or _token_len(tgt) + 2 > cfg.max_len:
        return "too_long"
    if n_operators(answer) < n_ops / 2:
        return "collapsed"
    return None


def _token_len(tree: Tree) -> int:
    """Model tokens in base 10 (an integer is a sign and its digits)."""
    return sum(len(t) if t[0] == "i" and t[1:].lstrip("-").isdigit() else 1 for t in tree)


def maybe_simplify(expr: sp.Expr, rng: np.random.Generator, p: float, timeout_s: float):
    if rng.random() < p:
        return simplify(expr, timeout_s)[1]
    return expr


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
    f = maybe_simplify(sp.diff(F, X), rng, cfg.simplify_prob, 2.0)
    return _pair(f, F, n, cfg)


_SPECIAL = ("NonElementaryIntegral",)


def gen_prim_fwd(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """Forward: sample f and integrate it with SymPy's Risch integrator."""
    n = draw_n_ops(rng, 2, 3, cfg)
    f = random_expr(rng, n, cfg, at_least_once=("x",))
    if isinstance(f, str):
        return f
    F = sp.integrate(f, X, risch=True)
    if type(F).__name__ in _SPECIAL or F.has(sp.Integral):
        return "not_integrable"
    reason = _forbidden(F)
    if reason:
        return reason
    return _pair(f, F, n, cfg)


def _pair(f: sp.Expr, F: sp.Expr, n: int, cfg: GenConfig) -> Example | str:
    src, tgt = to_tree(f), to_tree(F)
    for t in (src, tgt):
        if isinstance(t, str):
            return t
    return check_sizes(src, tgt, n, cfg, tgt) or Example(src, tgt, n)


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
        reason = _forbidden(primitive) or _forbidden(integrand)
        if reason:
            return reason
        cache.add(integrand, primitive)
        return _pair(integrand, primitive, n, cfg)
    return "ibp_miss"


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


_GRID = (-1.9, -1.1, -0.9, -0.1, 0.1, 0.9, 1.1, 1.9)


def ode_holds(eq: sp.Expr, solution: sp.Expr, order: int, timeout_s: float = 1.0) -> bool:
    """The released check: the solution substituted for Y simplifies to 0 (1 s), else the
    residual is at most 1e-13 at >= 20% of the points +-{0.1, 0.9, 1.1, 1.9}^k (k <= 3)."""
    subs = {Y0: solution, Y1: sp.diff(solution, X)}
    if order == 2:
        subs[Y2] = sp.diff(solution, X, 2)
    residual = eq.xreplace(subs)
    status, simple = simplify(residual, timeout_s)
    if status == "ok" and simple == 0:
        return True
    free = sorted(residual.free_symbols, key=lambda s: s.name)
    if len(free) > 3:
        return False
    tree = to_tree(residual)
    if isinstance(tree, str):
        return False
    program = compile_tree(tree)
    points = np.array(list(itertools.product(_GRID, repeat=len(free))), dtype=float)
    env = {s.name: points[:, j] for j, s in enumerate(free)}
    values = np.abs(program(env)) if free else np.abs(np.atleast_1d(program({})))
    return float(np.mean(values <= 1e-13)) >= 0.2


def gen_ode1(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """First order (paper 3.2): f(x, c) with c in one leaf; solve f = Y for c; differentiate."""
    n = draw_n_ops(rng, -1, 3, cfg)
    sol = random_expr(rng, n, cfg, at_least_once=("x",), exactly_once=("c",))
    if isinstance(sol, str):
        return sol
    sol = reduce_coefficients(sol, ("c",))
    if not sol.has(C) or not sol.has(X):
        return "constant"
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
    reason = _forbidden(_as_unknown(eq))
    if reason:
        return reason
    if not ode_holds(eq, sol, 1):
        return "not_verified"
    return _ode_pair(eq, sol, n, cfg)


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
    reason = _forbidden(_as_unknown(eq))
    if reason:
        return reason
    if not ode_holds(eq, sol, 2):
        return "not_verified"
    return _ode_pair(eq, sol, n, cfg)


def _as_unknown(eq: sp.Expr) -> sp.Expr:
    """The plain symbols Y, Y', Y'' as the unknown function Y(x) and its derivatives."""
    return eq.xreplace({s: symbol(s.name) for s in (Y0, Y1, Y2)})


def _ode_pair(eq: sp.Expr, sol: sp.Expr, n: int, cfg: GenConfig) -> Example | str:
    src, tgt = to_tree(_as_unknown(eq)), to_tree(sol)
    for t in (src, tgt):
        if isinstance(t, str):
            return t
    return check_sizes(src, tgt, n, cfg, tgt) or Example(src, tgt, n)


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
    if not is_valid_released(tree):
        return "not_finite"
    try:
        F = to_sympy(tree)
    except (UnsupportedExpression, ValueError, ZeroDivisionError):
        return "sympy"
    reason = _forbidden(F)
    if reason:
        return reason
    F = remove_root_constants(F, ("x",))
    if not F.has(X):
        return "constant"
    return _pair(sp.diff(F, X), F, n, cfg)


GENERATORS = {
    "prim_fwd": gen_prim_fwd,
    "prim_bwd": gen_prim_bwd,
    "prim_ibp": gen_prim_ibp,
    "ode1": gen_ode1,
    "ode2": gen_ode2,
    "robust_poly": gen_robust_poly,
    "robust_exp": gen_robust_exp,
    "robust_coeff": gen_robust_coeff,
}


def attempt(problem: str, rng: np.random.Generator, cfg: GenConfig) -> tuple[Example | str, bool]:
    """One attempt under the problem's time limit: (example or rejection reason, timed out)."""
    try:
        with time_limit(TIMEOUTS[problem]):
            return attempt_unlimited(problem, rng, cfg), False
    except TimeoutExpired:
        return "timeout", True


def attempt_unlimited(problem: str, rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """One attempt without a time limit of its own (the caller's limit raises through):
    the example, or the reason it was rejected (SymPy's errors on corner cases included)."""
    try:
        return GENERATORS[problem](rng, cfg)
    except TimeoutExpired:
        raise
    except (RecursionError, ZeroDivisionError, ValueError, TypeError, NotImplementedError,
            AttributeError, KeyError, IndexError, OverflowError, sp.PolynomialError) as err:  # fmt: skip
        # SymPy raises these on corner cases (e.g. solve of a transcendental equation)
        return f"sympy_{type(err).__name__}"
