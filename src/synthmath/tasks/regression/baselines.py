"""Classic baselines for ODE systems (specs/regression.md, "Studies to offer" 2): SINDy.

- :func:`sindy_fit`: our own SINDy, numpy only: finite-difference derivatives on possibly
  irregular times (second order, ``np.gradient`` with the times), a library of monomials up to
  ``degree`` in the D variables (optionally ``sin x_j``, ``cos x_j``), and STLSQ
  (sequentially thresholded ridge regression, then an unregularised refit on the support)
  per component. The answer is one engine tree per component, ``x_j' = sum c_k * f_k``,
  built token by token with float constants, so the task's own metrics score it.
- :func:`sindy_select`: the released protocol's hyperparameter choice (a grid, fitted on the
  first 70% of the points and scored on the last 30% by integrating the *whole* system from
  the first state; the released baselines chose per component and combined the products).
- :func:`pysindy_fit`: the same through ``pysindy`` (optional extra ``baselines``), all
  components in one model, converted from its coefficients and its library's powers.
- :func:`simulate`: integrate trees from a state with a bounded solver (None on failure).

Function baselines (genetic programming) are in :mod:`.baselines_gp`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.integrate import solve_ivp

from synthmath.expressions import numeric
from synthmath.expressions.operators import Tree, float_token
from synthmath.tasks.regression.benchmarks import OdeSystem

_POW = {2: "pow2", 3: "pow3", 4: "pow4", 5: "pow5"}
EXTRA_HINT = "pip install synthmath[baselines]"


class MissingExtra(ImportError):
    """An optional baseline library is not installed; the message says how to install it."""


def require(module: str):
    """Import an optional baseline library or raise :class:`MissingExtra` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(
            f"{module} is not installed: the baselines extra provides it ({EXTRA_HINT})"
        ) from None


@dataclass(frozen=True)
class SindyConfig:
    """Hyperparameters of :func:`sindy_fit` (pysindy's STLSQ defaults)."""

    degree: int = 3
    trig: bool = False
    threshold: float = 0.1
    alpha: float = 0.05
    max_iter: int = 20
    #: threshold the coefficients of unit-norm columns (pysindy ``normalize_columns``)
    normalize: bool = False

    def __post_init__(self) -> None:
        if self.degree < 0 or self.max_iter < 1 or self.threshold < 0 or self.alpha < 0:
            raise ValueError(f"SindyConfig: invalid values {self}")


#: the hyperparameter grid of :func:`sindy_select`
DEFAULT_GRID = tuple(
    SindyConfig(degree=d, threshold=th) for d in (2, 3) for th in (0.01, 0.05, 0.1, 0.5)
)


# ---- library -----------------------------------------------------------------------------
def monomial_tree(powers: Sequence[int]) -> Tree:
    """The tree of prod_j x_j^p_j (``i1`` for all-zero powers)."""
    factors: list[Tree] = []
    for j, p in enumerate(powers):
        if p < 0:
            raise ValueError(f"monomial_tree: negative power {p}")
        if p == 1:
            factors.append((f"x_{j}",))
        elif p in _POW:
            factors.append((_POW[p], f"x_{j}"))
        elif p > 1:
            factors.append(("pow", f"x_{j}", f"i{p}"))
    if not factors:
        return ("i1",)
    tree = factors[0]
    for factor in factors[1:]:
        tree = ("mul", *tree, *factor)
    return tree


def polynomial_powers(dim: int, degree: int) -> list[tuple[int, ...]]:
    """Exponent vectors of all monomials of total degree <= ``degree`` in ``dim`` variables,
    by degree, then as pysindy orders them (x0^2, x0 x1, x1^2, ...)."""
    out = []
    for total in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(dim), total):
            out.append(tuple(combo.count(j) for j in range(dim)))
    return out


def library(dim: int, degree: int = 3, trig: bool = False) -> list[Tree]:
    """The feature trees: monomials up to ``degree``, then ``sin x_j``, ``cos x_j``."""
    trees = [monomial_tree(p) for p in polynomial_powers(dim, degree)]
    if trig:
        for j in range(dim):
            trees += [("sin", f"x_{j}"), ("cos", f"x_{j}")]
    return trees


def evaluate_features(features: Sequence[Tree], states: np.ndarray) -> np.ndarray:
    """Theta: the features at the rows of ``states`` (n, dim), computed by the engine so that
    a fitted tree computes exactly what was fitted."""
    env = {f"x_{j}": states[:, j] for j in range(states.shape[1])}
    return np.stack([numeric.compile(f)(env) for f in features], axis=1)


def linear_combination(coefficients: Sequence[float], features: Sequence[Tree]) -> Tree:
    """sum_k c_k f_k over the nonzero c_k, left-nested ``add``; ``f0.0`` when all vanish."""
    terms: list[Tree] = []
    for c, f in zip(coefficients, features, strict=True):
        c = float(c)
        if c == 0.0:
            continue
        terms.append((float_token(c),) if f == ("i1",) else ("mul", float_token(c), *f))
    if not terms:
        return (float_token(0.0),)
    tree = terms[0]
    for term in terms[1:]:
        tree = ("add", *tree, *term)
    return tree


# ---- fitting -----------------------------------------------------------------------------
def derivatives(times: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Second-order finite differences on the (possibly irregular) times."""
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or len(times) < 3 or not np.all(np.diff(times) > 0):
        raise ValueError("derivatives: need at least 3 strictly increasing times")
    return np.gradient(np.asarray(states, dtype=np.float64), times, axis=0, edge_order=2)


def _ridge(a: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    if alpha > 0:
        a = np.vstack([a, np.sqrt(alpha) * np.eye(a.shape[1])])
        y = np.concatenate([y, np.zeros(a.shape[1])])
    return np.linalg.lstsq(a, y, rcond=None)[0]


def stlsq(
    theta: np.ndarray, y: np.ndarray, threshold: float, alpha: float, max_iter: int,
    normalize: bool = False,
) -> np.ndarray:  # fmt: skip
    """Sequentially thresholded least squares for one target: ridge fit, zero the
    coefficients below ``threshold`` (on unit-norm columns when ``normalize``), refit the rest,
    until the support is stable or ``max_iter``; finally an unregularised refit (pysindy's
    ``unbias``). Returns the coefficients of the raw columns."""
    scale = np.linalg.norm(theta, axis=0) if normalize else np.ones(theta.shape[1])
    scale = np.where(scale > 0, scale, 1.0)
    a = theta / scale
    support = np.ones(a.shape[1], dtype=bool)
    coef = np.zeros(a.shape[1])
    for _ in range(max_iter):
        coef = np.zeros(a.shape[1])
        if support.any():
            coef[support] = _ridge(a[:, support], y, alpha)
        new = support & (np.abs(coef) >= threshold)
        if np.array_equal(new, support):
            break
        support = new
    coef = np.zeros(a.shape[1])
    if support.any():
        coef[support] = np.linalg.lstsq(a[:, support], y, rcond=None)[0]
    return coef / scale


def _check(times: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times = np.asarray(times, dtype=np.float64)
    states = np.asarray(states, dtype=np.float64)
    if states.ndim == 1:
        states = states[:, None]
    if states.ndim != 2 or len(states) != len(times):
        raise ValueError(f"trajectory of shape {states.shape} for {len(times)} times")
    if not (np.isfinite(times).all() and np.isfinite(states).all()):
        raise ValueError("the trajectory has non-finite values")
    return times, states


def sindy_coefficients(
    times: np.ndarray, states: np.ndarray, config: SindyConfig | None = None
) -> tuple[list[Tree], np.ndarray]:
    """The library's feature trees and the STLSQ coefficients (dim x features) of x' = f(x)
    fitted to the trajectory ``states`` (n, dim) at ``times`` (n,)."""
    config = config or SindyConfig()
    times, states = _check(times, states)
    features = library(states.shape[1], config.degree, config.trig)
    theta = evaluate_features(features, states)
    if not np.isfinite(theta).all():
        raise ValueError("the library is not finite on the trajectory")
    dx = derivatives(times, states)
    args = (config.threshold, config.alpha, config.max_iter, config.normalize)
    with np.errstate(all="ignore"):
        coef = np.stack([stlsq(theta, dx[:, j], *args) for j in range(states.shape[1])])
    return features, coef


def sindy_fit(
    times: np.ndarray, states: np.ndarray, config: SindyConfig | None = None
) -> tuple[Tree, ...]:
    """One tree per component of x' = f(x): :func:`sindy_coefficients` as sums of terms."""
    features, coef = sindy_coefficients(times, states, config)
    return tuple(linear_combination(row, features) for row in coef)


def sindy_select(
    times: np.ndarray,
    states: np.ndarray,
    grid: Sequence[SindyConfig] = DEFAULT_GRID,
    val_fraction: float = 0.3,
    fit=None,
) -> tuple[tuple[Tree, ...], SindyConfig]:
    """The best of ``grid``: each fitted (``fit``, default :func:`sindy_fit`) on the first
    ``1 - val_fraction`` of the points, the whole system integrated from the first state over
    all times and scored by R^2 on the rest; the winner is refitted on all points."""
    fit = fit or sindy_fit
    times, states = _check(times, states)
    n_fit = max(3, int(round(len(times) * (1 - val_fraction))))
    best: tuple[float, SindyConfig] | None = None
    for config in grid:
        if n_fit >= len(times):
            break
        try:
            trees = fit(times[:n_fit], states[:n_fit], config)
        except (ValueError, np.linalg.LinAlgError):
            continue
        pred = simulate(trees, states[0], times, t0=times[0])
        score = -np.inf if pred is None else trajectory_r2(states[n_fit:], pred[n_fit:])
        if best is None or score > best[0]:
            best = (score, config)
    config = best[1] if best is not None else grid[0]
    return fit(times, states, config), config


def pysindy_fit(
    times: np.ndarray, states: np.ndarray, config: SindyConfig | None = None
) -> tuple[Tree, ...]:
    """SINDy through pysindy (extra ``baselines``): one model for all components
    (``FiniteDifference`` order 2, ``STLSQ``, ``PolynomialLibrary`` [+ ``FourierLibrary``]),
    converted to trees from ``coefficients()`` and the libraries' powers."""
    ps = require("pysindy")
    config = config or SindyConfig()
    times, states = _check(times, states)
    dim = states.shape[1]
    poly = ps.PolynomialLibrary(degree=config.degree)
    lib = ps.GeneralizedLibrary([poly, ps.FourierLibrary(n_frequencies=1)]) if config.trig else poly
    model = ps.SINDy(
        optimizer=ps.STLSQ(
            threshold=config.threshold,
            alpha=config.alpha,
            max_iter=config.max_iter,
            normalize_columns=config.normalize,
        ),  # fmt: skip
        feature_library=lib,
        differentiation_method=ps.FiniteDifference(order=2),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(states, t=times)
    features = [monomial_tree(tuple(int(p) for p in row)) for row in poly.powers_]
    if config.trig:  # FourierLibrary, n_frequencies=1: sin(x_j), cos(x_j) per variable
        for j in range(dim):
            features += [("sin", f"x_{j}"), ("cos", f"x_{j}")]
    coef = np.asarray(model.coefficients(), dtype=np.float64)
    if coef.shape != (dim, len(features)):
        raise RuntimeError(f"pysindy: {coef.shape} coefficients for {len(features)} features")
    _check_names(model.get_feature_names(), features)
    return tuple(linear_combination(coef[j], features) for j in range(dim))


def _check_names(names: list[str], features: list[Tree]) -> None:
    """pysindy's feature order must be ours: compare the monomials' names (x0^2 x1 ...)."""
    for name, tree in zip(names, features, strict=True):
        if tree[0] in ("sin", "cos"):
            expected = f"{tree[0]}(1 x{tree[1][2:]})"
        else:
            expected = _monomial_name(tree)
        if name != expected:
            raise RuntimeError(f"pysindy: feature {name!r} where {expected!r} was expected")


def _monomial_name(tree: Tree) -> str:
    if tree == ("i1",):
        return "1"
    parts, i = [], 0
    while i < len(tree):
        t = tree[i]
        if t == "mul":
            i += 1
        elif t.startswith("x_"):
            parts.append(f"x{t[2:]}")
            i += 1
        elif t in _POW.values():
            parts.append(f"x{tree[i + 1][2:]}^{t[3:]}")
            i += 2
        else:  # pow x_j iK
            parts.append(f"x{tree[i + 1][2:]}^{tree[i + 2][1:]}")
            i += 3
    return " ".join(parts)


# ---- simulation and scores ---------------------------------------------------------------
class _Budget(Exception):
    pass


def simulate(
    trees: Sequence[Tree],
    initial: Sequence[float],
    times: np.ndarray,
    t0: float | None = None,
    max_evals: int = 20_000,
    bound: float = 1e6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> np.ndarray | None:
    """x' = trees(x) from ``initial`` at ``t0`` (default ``times[0]``), at ``times``
    (LSODA; len(times) x dim), or None when the trees do not compile, the solver fails, the
    state leaves |x| < ``bound`` or the right-hand side is called more than ``max_evals``
    times (a deterministic budget)."""
    times = np.asarray(times, dtype=np.float64)
    t0 = float(times[0]) if t0 is None else float(t0)
    try:
        system = OdeSystem(0, "fit", len(trees), (), tuple(trees), (), ())
        f = system.rhs()
    except (ValueError, KeyError):
        return None
    calls = [0]

    def rhs(t, x):
        calls[0] += 1
        if calls[0] > max_evals:
            raise _Budget
        return f(t, x)

    def escape(t, x):
        return bound - np.max(np.abs(x)) if np.isfinite(x).all() else -1.0

    escape.terminal = True
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            sol = solve_ivp(
                rhs, (t0, float(times[-1])), np.asarray(initial, dtype=np.float64),
                method="LSODA", t_eval=times, rtol=rtol, atol=atol, events=escape,
            )  # fmt: skip
    except (_Budget, ValueError, ArithmeticError):
        return None
    if not sol.success or sol.y.shape[1] != len(times) or not np.isfinite(sol.y).all():
        return None
    return sol.y.T


def trajectory_r2(truth: np.ndarray, pred: np.ndarray | None) -> float:
    """R^2 variance-weighted over the dimensions (1 - sum SS_res / sum SS_tot); an invalid or
    missing prediction scores 0, as in the spec."""
    if pred is None:
        return 0.0
    truth, pred = np.asarray(truth, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if truth.shape != pred.shape or not np.isfinite(pred).all():
        return 0.0
    with np.errstate(all="ignore"):
        ss_res = float(np.sum((truth - pred) ** 2))
        ss_tot = float(np.sum((truth - truth.mean(axis=0)) ** 2))
    if not np.isfinite(ss_res):
        return 0.0
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def with_config(config: SindyConfig, **changes) -> SindyConfig:
    """``config`` with some fields changed (the CLI's ``degree=2`` style overrides)."""
    return replace(config, **changes)
