"""Random differential systems x' = f(x[, u]) and their Jacobians at a point (differential.md).

Each equation is a tree of the preset ``chh`` (+ - x /, sqrt exp ln sin cos tan asin acos
atan; integer leaves w.p. 0.3 uniform in +-[1, 10], otherwise a variable of the system chosen
uniformly). An equation is redrawn when it has no variable, or its gradient at the point is
not finite or all zero; a system is redrawn when a Jacobian column is all zero (CONFIRMED,
released generator).

Jacobians: :func:`jacobian` is the hot path, complex-step derivatives of the compiled
program, one complex evaluation per equation for the whole gradient (each variable is
perturbed at its own point of a batch). It is done at two step sizes: an analytic function
gives the same derivative at both, while a branch point hit exactly (``sqrt(x_0 - x_1)`` at
x_0 = x_1, where SymPy's derivative is ``zoo``) gives values that scale with the step and is
rejected. :func:`jacobian_sympy` is the reference (SymPy ``diff``, then exact substitution and
numeric evaluation, 5 s per equation); a test checks the two agree on sampled systems. A
subexpression that is not finite at the point rejects the equation (SymPy's ``zoo``).

Entries below 1e-11 max(1, the gradient's largest) are set to 0: complex arithmetic leaves
rounding residues (``x_2 / (x_0 x_2 + x_0 - x_0)`` has d/dx_2 = -6e-11 next to -1e4) where
SymPy's derivative is exactly 0, and such structural zeros decide controllability.

Real mode (INFERRED, a deviation): an equation not finite in the reals at the point (``sqrt``
or ``ln`` of a negative number, ``asin`` beyond 1) is rejected; the released code kept complex
Jacobians for stability (the point is then outside the system's real domain).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp

from synthmath.expressions import numeric
from synthmath.expressions.errors import TimeoutExpired, UnsupportedExpression
from synthmath.expressions.operators import OPERATORS, Preset, Tree, get_preset, is_variable
from synthmath.expressions.sampling import sample_trees
from synthmath.expressions.sympy_bridge import has_forbidden, symbol, to_sympy
from synthmath.expressions.workers import time_limit

#: operators the complex step differentiates correctly (analytic away from their poles)
ANALYTIC = frozenset(OPERATORS) - {"abs", "sign", "relu", "idiv", "mod"}
#: the two complex steps; an analytic derivative agrees at both to rounding
STEPS = (1e-20, 1e-30)
#: agreement required between the two steps: |d1 - d2| <= STEP_RTOL (1 + |d1|)
STEP_RTOL = 1e-6
#: a derivative below this fraction of max(1, the gradient's largest entry) is a rounding
#: residue: 0
ZERO_RTOL = 1e-11
#: seconds for SymPy's gradient of one equation (the released limit)
SYMPY_GRADIENT_S = 5.0
#: attempts per equation slot before a system gives up (then the whole system is redrawn)
MAX_EQUATION_ATTEMPTS = 200


def state_names(n: int) -> tuple[str, ...]:
    """Raw names of the state variables ``x_0 .. x_{n-1}``."""
    return tuple(f"x_{k}" for k in range(n))


def control_names(p: int) -> tuple[str, ...]:
    """Raw names of the controls ``u_0 .. u_{p-1}``."""
    return tuple(f"u_{k}" for k in range(p))


@dataclass(frozen=True)
class System:
    """An accepted system: its equations (raw trees), the operator counts drawn, and its
    Jacobians at the point (``a`` = df/dx, n x n; ``b`` = df/du, n x p, p = 0 without
    controls)."""

    equations: tuple[Tree, ...]
    n_ops: tuple[int, ...]
    a: np.ndarray
    b: np.ndarray

    @property
    def n(self) -> int:
        return len(self.equations)

    @property
    def p(self) -> int:
        return self.b.shape[1]


def system_preset(n: int, p: int = 0, preset: str = "chh", time: bool = False) -> Preset:
    """The preset with the system's variables (x_0..x_{n-1}, u_0..u_{p-1}, and ``t`` for a
    non-autonomous system) as leaves."""
    base = get_preset(preset)
    names = state_names(n) + control_names(p) + (("t",) if time else ())
    return dataclasses.replace(base, variables=names)


def finite_throughout(program: numeric.Program, env: dict[str, float]) -> bool:
    """Whether every subexpression is a finite real number at the point: ``-6 / ln(0)`` is
    0 in floating point but holds an infinity, which SymPy writes ``zoo`` (rejected)."""
    stack: list[float] = []
    with np.errstate(all="ignore"):
        for kind, value in program.steps:
            if kind == "const":
                stack.append(float(value))
            elif kind == "var":
                stack.append(env[value])
            else:
                fn = OPERATORS[value].numpy
                args = [stack.pop() for _ in range(OPERATORS[value].arity)][::-1]
                result = float(fn(*(np.float64(a) for a in args)))
                if not np.isfinite(result):
                    return False
                stack.append(result)
    return bool(stack) and bool(np.isfinite(stack[-1]))


def gradient(
    tree: Tree | numeric.Program, variables: Sequence[str], point: float | np.ndarray
) -> np.ndarray:
    """The gradient of one equation at ``point`` (one value for every variable, or one per
    variable), by the complex step (see module docstring); NaN entries where it is not
    finite in the reals, not analytic, or not the same at both steps (a branch point)."""
    program = tree if isinstance(tree, numeric.Program) else numeric.compile(tree)
    k = len(variables)
    values_at = np.broadcast_to(np.asarray(point, dtype=np.float64), (k,))
    if any(op not in ANALYTIC for kind, op in program.steps if kind == "op"):
        return np.full(k, np.nan)
    if not finite_throughout(program, dict(zip(variables, values_at.tolist(), strict=True))):
        return np.full(k, np.nan)
    # batch: step s, column j perturbs variable j by i h_s
    eye = np.eye(k)
    env = {
        v: (values_at[j] + 1j * np.concatenate([h * eye[j] for h in STEPS])).astype(np.complex128)
        for j, v in enumerate(variables)
    }
    values = program(env, dtype=np.complex128)
    with np.errstate(all="ignore"):
        d1, d2 = (values.imag[s * k : (s + 1) * k] / h for s, h in enumerate(STEPS))
        close = np.abs(d1 - d2) <= STEP_RTOL * (1 + np.abs(d1))
    ok = np.isfinite(d1) & np.isfinite(d2) & close
    if not ok.all():
        return np.where(ok, d1, np.nan)
    # rounding in the complex arithmetic leaves ~1e-16 relative residues where SymPy's
    # derivative is exactly 0; structural zeros decide controllability, so clear them
    return np.where(np.abs(d1) <= ZERO_RTOL * max(1.0, np.abs(d1).max()), 0.0, d1)


def jacobian(
    equations: Sequence[Tree], n: int, p: int, point: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` = (df/dx, df/du) at the point, by :func:`gradient` (NaN where undefined)."""
    variables = state_names(n) + control_names(p)
    rows = np.array([gradient(eq, variables, point) for eq in equations]).reshape(-1, n + p)
    return rows[:, :n], rows[:, n:]


def _exact(value: float) -> sp.Rational:
    frac = Fraction(value).limit_denominator(10**6)
    return sp.Rational(frac.numerator, frac.denominator)


def gradient_sympy(
    tree: Tree, variables: Sequence[str], point: float, timeout_s: float = SYMPY_GRADIENT_S
) -> np.ndarray:
    """The reference gradient: SymPy ``diff`` of the tree, the point substituted exactly
    (0.01 as 1/100), then evaluated to 30 digits. NaN entries where the expression has no
    variable, holds ``zoo``/``nan``, or the derivative there is not a finite real number;
    all NaN when SymPy takes longer than ``timeout_s``."""
    k = len(variables)
    out = np.full(k, np.nan)
    try:
        with time_limit(timeout_s):
            expr = to_sympy(tree)
            if not expr.free_symbols or has_forbidden(expr) is not None:
                return out
            subs = {symbol(v): _exact(point) for v in variables}
            for j, v in enumerate(variables):
                value = sp.diff(expr, symbol(v)).xreplace(subs)
                if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
                    continue
                z = complex(sp.N(value, 30))
                if np.isfinite(z.real) and abs(z.imag) <= 1e-12 * (1 + abs(z.real)):
                    out[j] = z.real
    except (TimeoutExpired, UnsupportedExpression, ValueError, TypeError, ZeroDivisionError):
        return np.full(k, np.nan)
    return out


def jacobian_sympy(
    equations: Sequence[Tree], n: int, p: int, point: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` by :func:`gradient_sympy` (the reference; slow)."""
    variables = state_names(n) + control_names(p)
    rows = np.array([gradient_sympy(eq, variables, point) for eq in equations])
    rows = rows.reshape(-1, n + p)
    return rows[:, :n], rows[:, n:]


def equation_ok(tree: Tree, grad: np.ndarray) -> bool:
    """The released per-function checks: a variable occurs, the gradient is finite and not
    all zero."""
    return any(is_variable(t) for t in tree) and bool(np.isfinite(grad).all() and grad.any())


def sample_system(
    n: int,
    p: int,
    ops_range: tuple[int, int],
    point: float,
    rng: np.random.Generator,
    preset: str = "chh",
    use_sympy: bool = False,
    time: bool = False,
) -> System | None:
    """One system with ``n`` equations (``p`` controls), each with an operator count uniform
    in ``ops_range`` (inclusive), redrawn equation by equation until it passes
    :func:`equation_ok`; None when a Jacobian column is all zero or an equation slot fails
    :data:`MAX_EQUATION_ATTEMPTS` times (the caller draws a new system). With ``time`` the
    leaves include ``t`` (checked at t = ``point`` too); A and B exclude its column."""
    lo, hi = ops_range
    pre = system_preset(n, p, preset, time)
    variables = pre.variables
    grad = gradient_sympy if use_sympy else gradient
    equations: list[Tree | None] = [None] * n
    counts = [0] * n
    rows = np.zeros((n, len(variables)))
    todo = list(range(n))
    for _ in range(MAX_EQUATION_ATTEMPTS):
        if not todo:
            break
        n_ops = rng.integers(lo, hi + 1, size=len(todo))
        trees = sample_trees(pre, n_ops, rng)
        left = []
        for slot, tree, ops in zip(todo, trees, n_ops.tolist(), strict=True):
            g = grad(tree, variables, point) if tree is not None else None
            if g is None or not equation_ok(tree, g):
                left.append(slot)
                continue
            equations[slot], counts[slot], rows[slot] = tree, ops, g
        todo = left
    if todo or not np.abs(rows[:, : n + p]).sum(axis=0).all():  # t's column may be zero
        return None
    return System(tuple(equations), tuple(counts), rows[:, :n].copy(), rows[:, n : n + p].copy())
