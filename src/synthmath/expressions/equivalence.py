"""Is a predicted expression right? Symbolic checks first, a numeric fallback second.

Verdicts (specs/expressions.md, "Equivalence"):

- ``equal``: identical canonical trees, or SymPy simplifies the difference (the residual) to 0
  within the time limit (the paper-faithful, symbolic-only metric);
- ``numeric_equal``: at every sampled point where both sides are finite, they agree within
  ``atol + rtol * (|a| + |b|)`` (the relative term keeps huge cancelling sums honest), with
  at least ``min_points`` such points;
- ``different``: the difference simplifies to a nonzero number, or a sampled point disagrees;
- ``unknown``: neither (too few finite points, a head the numeric engine lacks, ``Y``).

Points are uniform in ``+-[0.1, 3.1]`` per free symbol (a random sign, a magnitude in
[0.1, 3.1]), from ``np.random.default_rng(seed)``; without a seed, the seed is a hash of the
pair's trees, so one pair always gets the same points. Evaluation is real (float64): where
one side is not real (``log`` of a negative number) the point is skipped, so
``log(x**2)`` and ``2*log(x)`` are ``numeric_equal`` (they agree wherever both are real),
while ``sqrt(x**2)`` and ``x`` are ``different`` (they disagree for x < 0).

Antiderivatives are compared by differentiating (:func:`verify_primitive`), never directly,
so a constant of integration never counts against a primitive; ODE solutions are checked by
substitution into the equation (:func:`verify_ode`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import sympy as sp

from synthmath.expressions import numeric
from synthmath.expressions.errors import TimeoutExpired, UnsupportedExpression
from synthmath.expressions.operators import Tree, is_variable
from synthmath.expressions.sympy_bridge import (
    D2Y,
    DY,
    X,
    Y,
    from_sympy,
    simplify,
    symbol,
    to_sympy,
)
from synthmath.expressions.workers import time_limit

VERDICTS = ("equal", "numeric_equal", "different", "unknown")
_UNKNOWN_TOKENS = frozenset({"Y", "Y'", "Y''"})
LOW, HIGH = 0.1, 3.1
T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: one of :data:`VERDICTS` and a one-line reason."""

    verdict: str
    evidence: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {self.verdict!r}")

    @property
    def symbolic(self) -> bool:
        """Correct for the symbolic-only metric."""
        return self.verdict == "equal"

    @property
    def correct(self) -> bool:
        """Correct for the symbolic-or-numeric metric."""
        return self.verdict in ("equal", "numeric_equal")


def _tree(expr: sp.Expr) -> Tree | None:
    try:
        return from_sympy(expr)
    except UnsupportedExpression:
        return None


def real_forms(expr: sp.Expr) -> sp.Expr:
    """``expr`` as a function of real variables, for the numeric step: ``re(a)`` -> ``a``,
    ``im(a)`` -> 0, ``Heaviside(a)`` -> ``(1 + sign(a)) / 2`` and ``d sign(a)/dx`` -> 0
    (everywhere but where ``a`` = 0). SymPy writes derivatives of ``Abs``, ``sign`` and
    ``Max`` (``relu``) with these, which the vocabulary and the numeric engine lack."""
    if not expr.has(sp.re, sp.im, sp.Heaviside, sp.Derivative):
        return expr
    expr = expr.replace(sp.re, lambda a: a).replace(sp.im, lambda a: sp.S.Zero)
    expr = expr.replace(sp.Heaviside, lambda a, *_: (1 + sp.sign(a)) / 2)
    expr = expr.replace(
        lambda e: isinstance(e, sp.Derivative) and isinstance(e.expr, sp.sign),
        lambda e: sp.S.Zero,
    )
    return expr.doit()


def _guarded(compute: Callable[[], T], timeout_s: float | None) -> T | None:
    """``compute()`` within the time limit; None when it times out or SymPy raises (SymPy
    has internal errors of many types on odd input: a check must not crash on them)."""
    try:
        with time_limit(timeout_s):
            return compute()
    except TimeoutExpired:
        return None
    except Exception:  # noqa: BLE001 - any SymPy failure makes this step undecided
        return None


def _numeric_tree(expr: sp.Expr, tree: Tree | None, timeout_s: float) -> Tree | None:
    """The tree to evaluate: the expression's own, or that of its :func:`real_forms`."""
    if tree is not None:
        return tree
    return _guarded(lambda: _tree(real_forms(expr)), timeout_s)


def stable_seed(*trees: Tree | None) -> int:
    """A seed that depends only on the trees (sha256 of their tokens)."""
    text = "|".join(" ".join(t) if t is not None else "?" for t in trees)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def sample_points(
    names: Sequence[str], n_points: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """``n_points`` values per name (sorted order), uniform in ``+-[0.1, 3.1]``."""
    env = {}
    for name in sorted(names):
        magnitude = rng.uniform(LOW, HIGH, n_points)
        sign = np.where(rng.random(n_points) < 0.5, -1.0, 1.0)
        env[name] = sign * magnitude
    return env


def _free_tokens(*trees: Tree) -> set[str]:
    return {t for tree in trees for t in tree if is_variable(t)}


def _compile(tree: Tree) -> numeric.Program | None:
    try:
        return numeric.compile(tree)
    except (ValueError, OverflowError):  # e.g. an integer leaf too large for a float
        return None


def numeric_compare(
    a: Tree,
    b: Tree,
    variables: Sequence[str] = ("x",),
    *,
    seed: int | None = None,
    n_points: int = 20,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    min_points: int = 5,
    timeout_s: float = 1.0,
) -> Verdict:
    """The numeric step of :func:`equivalent` on raw trees (every free symbol sampled);
    ``timeout_s`` bounds each high-precision re-evaluation of a miss."""
    if _UNKNOWN_TOKENS & (set(a) | set(b)):
        return Verdict("unknown", "the unknown function Y has no numeric value")
    prog_a, prog_b = _compile(a), _compile(b)
    if prog_a is None or prog_b is None:
        return Verdict("unknown", "an expression cannot be evaluated numerically")
    names = set(variables) | _free_tokens(a, b)
    rng = np.random.default_rng(stable_seed(a, b) if seed is None else seed)
    env = sample_points(names, n_points, rng)
    va, vb = prog_a(env), prog_b(env)
    va, vb = np.broadcast_to(va, (n_points,)), np.broadcast_to(vb, (n_points,))
    with np.errstate(all="ignore"):  # inf - inf: NaN, skipped
        diff, scale = va - vb, np.abs(va) + np.abs(vb)
    exprs: list[sp.Expr] = []

    def agrees_precisely(i: int) -> bool:
        if not exprs:
            exprs.extend((to_sympy(a), to_sympy(b)))
        values = [_precise(e, env, i, timeout_s) for e in exprs]
        if any(v is None for v in values):
            return False
        pa, pb = values
        return abs(pa - pb) <= atol + rtol * (abs(pa) + abs(pb))

    return _judge(diff, scale, env, rtol, atol, min_points, agrees_precisely)


#: float64 misses re-evaluated at :data:`PRECISE_DIGITS` digits before "different" is said
MAX_RECHECKS = 3
PRECISE_DIGITS = 30


def _precise(expr: sp.Expr, env: dict[str, np.ndarray], i: int, timeout_s: float):
    """``expr`` at point ``i`` of ``env`` with :data:`PRECISE_DIGITS` digits (None: not a
    finite real number, or SymPy failed or timed out)."""

    def compute() -> complex:
        point = {symbol(k): sp.Float(float(v[i]), PRECISE_DIGITS) for k, v in env.items()}
        return complex(expr.xreplace(point).evalf(PRECISE_DIGITS))

    value = _guarded(compute, timeout_s)
    if value is None or not np.isfinite(value) or abs(value.imag) > 1e-12 * abs(value):
        return None
    return value


def _judge(
    diff: np.ndarray,
    scale: np.ndarray,
    env: dict[str, np.ndarray],
    rtol: float,
    atol: float,
    min_points: int,
    agrees_precisely: Callable[[int], bool],
) -> Verdict:
    """Tolerance check of ``diff`` against ``atol + rtol * scale`` at the finite points.

    A float64 miss can be rounding in an ill-conditioned expression (``tan`` of an expanded
    polynomial near 1e6): up to :data:`MAX_RECHECKS` misses are re-evaluated with
    ``agrees_precisely(i)``; refuted ones count as agreeing, the first confirmed one decides.
    """
    valid = np.isfinite(diff) & np.isfinite(scale)
    n_valid = int(valid.sum())
    if n_valid < min_points:
        return Verdict("unknown", f"{n_valid} finite points of {diff.size}, need {min_points}")
    err, bound = np.abs(diff[valid]), atol + rtol * scale[valid]
    misses = np.flatnonzero(valid)[err > bound]
    refuted = 0
    for i in misses[:MAX_RECHECKS]:
        if agrees_precisely(int(i)):
            refuted += 1
            continue
        where = ", ".join(f"{k}={v[i]:.6g}" for k, v in env.items())
        return Verdict(
            "different",
            f"{misses.size} of {n_valid} points differ, e.g. by {diff[i]:.3g} at {where}",
        )
    if misses.size > refuted:
        return Verdict("different", f"{misses.size} of {n_valid} points differ")
    note = f"; {refuted} float64 misses refuted at {PRECISE_DIGITS} digits" if refuted else ""
    ratio = float(np.max(np.where(err > bound, 0.0, err / bound)))
    return Verdict(
        "numeric_equal",
        f"{n_valid} of {diff.size} points agree (max |diff| / bound {ratio:.2g}){note}",
    )


def _symbolic_zero(residual: sp.Expr, timeout_s: float, atol: float) -> Verdict | None:
    """``equal`` when ``residual`` simplifies to 0, ``different`` when to a nonzero number,
    None when undecided (timeout, error or an expression in the variables)."""
    status, reduced = simplify(residual, timeout_s)
    if status != "ok":
        return None
    if reduced == 0:
        return Verdict("equal", "the difference simplifies to 0")
    if reduced.is_number and not reduced.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        value = _guarded(lambda: complex(reduced.evalf()), timeout_s)
        if value is not None and np.isfinite(value) and abs(value) > atol:
            return Verdict("different", f"the difference simplifies to the constant {reduced}")
    return None


def equivalent(
    a: sp.Expr,
    b: sp.Expr,
    variables: Sequence[str] = ("x",),
    *,
    timeout_s: float = 1.0,
    seed: int | None = None,
    n_points: int = 20,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    min_points: int = 5,
) -> Verdict:
    """Whether ``a`` and ``b`` are the same function of ``variables`` (module docstring).

    Free symbols besides ``variables`` (constants ``c``, ``c1``, ...) are sampled like them.
    ``timeout_s`` bounds the symbolic step; the numeric step takes milliseconds.
    """
    tree_a, tree_b = _tree(a), _tree(b)
    if (tree_a is not None and tree_a == tree_b) or a == b:
        return Verdict("equal", "identical canonical trees")
    difference = _guarded(lambda: a - b, timeout_s)
    symbolic = None if difference is None else _symbolic_zero(difference, timeout_s, atol)
    if symbolic is not None:
        return symbolic
    num_a, num_b = _numeric_tree(a, tree_a, timeout_s), _numeric_tree(b, tree_b, timeout_s)
    if num_a is None or num_b is None:
        return Verdict("unknown", "no symbolic proof and an expression the engine cannot write")
    return numeric_compare(
        num_a,
        num_b,
        variables,
        seed=seed,
        n_points=n_points,
        rtol=rtol,
        atol=atol,
        min_points=min_points,
        timeout_s=timeout_s,
    )


def verify_primitive(
    F: sp.Expr,
    f: sp.Expr,
    timeout_s: float = 1.0,
    *,
    seed: int | None = None,
    n_points: int = 20,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    min_points: int = 5,
) -> Verdict:
    """Whether ``F`` is a primitive of ``f`` in ``x``: ``dF/dx`` compared with ``f`` by
    :func:`equivalent` (so primitives differing by a constant both verify; never compare
    antiderivatives directly)."""
    derivative = _guarded(lambda: sp.diff(F, X), timeout_s)
    if derivative is None:
        return Verdict("unknown", "differentiation timed out or failed")
    return equivalent(
        derivative,
        f,
        ("x",),
        timeout_s=timeout_s,
        seed=seed,
        n_points=n_points,
        rtol=rtol,
        atol=atol,
        min_points=min_points,
    )


def substitute_solution(solution: sp.Expr, equation: sp.Expr) -> sp.Expr:
    """The residual of ``equation`` (in ``x``, ``Y`` and its derivatives) at ``Y = solution``."""
    d1 = sp.diff(solution, X)
    replaced = equation.xreplace({D2Y: sp.diff(d1, X), DY: d1, Y: solution})
    return replaced.doit()


def verify_ode(
    solution: sp.Expr,
    equation: sp.Expr,
    timeout_s: float = 1.0,
    *,
    seed: int | None = None,
    n_points: int = 20,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    min_points: int = 5,
) -> Verdict:
    """Whether ``solution`` (in ``x`` and constants ``c``, ``c1``, ``c2``) makes
    ``equation = 0`` hold: substitute, ``.doit()``, simplify to 0 -> ``equal``; otherwise the
    residual is evaluated at points over ``x`` and the constants and must vanish within
    ``atol + rtol * sum(|terms|)`` (the sum over the residual's additive terms)."""
    residual = _guarded(lambda: substitute_solution(solution, equation), timeout_s)
    if residual is None:
        return Verdict("unknown", "substitution timed out or failed")
    if residual.has(Y):
        return Verdict("unknown", "the residual still contains Y")
    symbolic = _symbolic_zero(residual, timeout_s, atol)
    if symbolic is not None:
        return Verdict(symbolic.verdict, symbolic.evidence.replace("difference", "residual"))
    real = _guarded(lambda: real_forms(residual), timeout_s)
    if real is None:
        return Verdict("unknown", "no symbolic proof and real forms timed out or failed")
    residual = real
    terms = [_tree(t) for t in sp.Add.make_args(residual)]
    whole = _tree(residual)
    if whole is None or any(t is None for t in terms):
        return Verdict("unknown", "no symbolic proof and a residual the engine cannot write")
    programs = [_compile(t) for t in (whole, *terms)]
    if any(p is None for p in programs):
        return Verdict("unknown", "the residual cannot be evaluated numerically")
    names = {"x"} | _free_tokens(whole)
    rng = np.random.default_rng(stable_seed(whole) if seed is None else seed)
    env = sample_points(names, n_points, rng)
    values = [np.broadcast_to(p(env), (n_points,)) for p in programs]
    with np.errstate(all="ignore"):
        scale = np.sum(np.abs(values[1:]), axis=0)

    def agrees_precisely(i: int) -> bool:
        value = _precise(residual, env, i, timeout_s)
        return value is not None and abs(value) <= atol + rtol * scale[i]

    return _judge(values[0], scale, env, rtol, atol, min_points, agrees_precisely)


#: the released ODE generators' check points: every combination of these per free symbol
GRID_VALUES = (-1.9, -1.1, -0.9, -0.1, 0.1, 0.9, 1.1, 1.9)


def grid_residual_fraction(
    residual: sp.Expr, tol: float = 1e-13, max_symbols: int = 3
) -> float | None:
    """The released generators' fallback ODE check (specs/symbolic.md): the fraction of the
    grid points (every combination of :data:`GRID_VALUES` over the residual's free symbols)
    where ``|residual| <= tol``; non-finite values count as misses. None when the residual
    has more than ``max_symbols`` symbols or cannot be written or evaluated. The released
    code keeps an example when the fraction is at least 0.2."""
    tree = _guarded(lambda: _tree(real_forms(residual)), None)  # the caller's time limit
    program = None if tree is None else _compile(tree)
    if program is None or _UNKNOWN_TOKENS & set(tree):
        return None
    names = sorted(program.variables)
    if len(names) > max_symbols:
        return None
    if not names:
        value = np.asarray(program({}))
        return float(np.isfinite(value) and abs(value) <= tol)
    grids = np.meshgrid(*([np.array(GRID_VALUES)] * len(names)), indexing="ij")
    values = program({n: g.ravel() for n, g in zip(names, grids)})
    return float(np.mean(np.isfinite(values) & (np.abs(values) <= tol)))
