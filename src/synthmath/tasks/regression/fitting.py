"""Scores and refinement of fitted expressions (specs/regression.md, "Inference and
refinement" and "Scoring"); numpy and scipy only (no sklearn).

- :func:`r2`: 1 - SS_res / SS_tot, -inf when a prediction is not finite (or the fit is
  not finite); :func:`acc_tau`: at least 95% of the points with |y_hat - y| <= tau |y|;
- :func:`symbolic_recovery`: the prediction equals the truth up to an additive or a nonzero
  multiplicative constant, checked by the equivalence engine at 1e-3 relative;
- :func:`refine`: BFGS on the MSE over the float constants of a tree, started from its own
  constants (E2E) or from N(0, 1) draws (the skeleton baseline), with an iteration cap,
  a loss-evaluation cap and an optional wall cap;
- :func:`select`: dedupe candidates by skeleton, refine the best, rerank by R^2 (E2E's
  selection; also the skeleton + BFGS baseline and no refinement, :data:`REFINE_MODES`).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.optimize import minimize

from synthmath.expressions import numeric
from synthmath.expressions.equivalence import numeric_compare, sample_points, stable_seed
from synthmath.expressions.operators import Tree, arity, float_token, is_float

#: the share of points Acc_tau needs within tolerance
TAU_SHARE = 0.95
#: relative tolerance of symbolic recovery (constants fitted to 3 digits)
RECOVERY_RTOL = 1e-3


def r2(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Coefficient of determination; -inf for a non-finite prediction. A constant target
    gives 1 for an exact fit and -inf otherwise."""
    y, y_hat = np.asarray(y, dtype=np.float64), np.asarray(y_hat, dtype=np.float64)
    if y_hat.shape != y.shape or not np.isfinite(y_hat).all():
        return -np.inf
    with np.errstate(all="ignore"):
        ss_res = float(np.sum((y - y_hat) ** 2))
        ss_tot = float(np.sum((y - y.mean()) ** 2))
    if not np.isfinite(ss_res):
        return -np.inf
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else -np.inf
    return 1.0 - ss_res / ss_tot


def acc_tau(y: np.ndarray, y_hat: np.ndarray, tau: float, share: float = TAU_SHARE) -> bool:
    """At least ``share`` of the points have |y_hat - y| <= tau |y| (non-finite: outside)."""
    y, y_hat = np.asarray(y, dtype=np.float64), np.asarray(y_hat, dtype=np.float64)
    if y_hat.shape != y.shape or y.size == 0:
        return False
    with np.errstate(all="ignore"):
        close = np.abs(y_hat - y) <= tau * np.abs(y)
    return bool(np.mean(close & np.isfinite(y_hat)) >= share)


def symbolic_recovery(
    pred: Tree, truth: Tree, variables: tuple[str, ...], rtol: float = RECOVERY_RTOL
) -> bool:
    """Whether ``pred`` is ``truth``, ``truth + c`` or ``c truth`` (c != 0) as functions of
    ``variables``: :func:`~synthmath.expressions.equivalence.numeric_compare` at relative
    tolerance ``rtol``, c estimated as the median difference (or ratio) at its points."""
    try:
        p_prog, t_prog = numeric.compile(pred), numeric.compile(truth)
    except ValueError:
        return False
    if not p_prog.variables <= set(variables):
        return False
    kwargs = {"rtol": rtol, "atol": 1e-9, "n_points": 40, "timeout_s": 0.5}
    if numeric_compare(pred, truth, variables, **kwargs).correct:
        return True
    env = sample_points(sorted(variables), 40, np.random.default_rng(stable_seed(pred, truth)))
    n = len(next(iter(env.values())))
    vp = np.broadcast_to(p_prog(env), (n,))
    vt = np.broadcast_to(t_prog(env), (n,))
    with np.errstate(all="ignore"):
        diff, ratio = vp - vt, vp / vt
    for op, values in (("add", diff), ("mul", ratio)):
        finite = values[np.isfinite(values)]
        if finite.size < 5:
            continue
        c = float(np.median(finite))
        if op == "mul" and c == 0.0:
            continue
        candidate = (op, float_token(c), *truth)
        if numeric_compare(pred, candidate, variables, **kwargs).correct:
            return True
    return False


def constants_of(tree: Tree) -> tuple[list[int], np.ndarray]:
    """Positions and values of the float leaves of ``tree``."""
    where = [i for i, t in enumerate(tree) if is_float(t)]
    return where, np.array([float(tree[i][1:]) for i in where], dtype=np.float64)


def with_constants(tree: Tree, where: list[int], values: np.ndarray) -> Tree:
    out = list(tree)
    for i, v in zip(where, values.tolist(), strict=True):
        out[i] = float_token(v)
    return tuple(out)


def _env(x: np.ndarray) -> dict[str, np.ndarray]:
    return {f"x_{j}": x[:, j] for j in range(x.shape[1])}


def mse(tree: Tree, x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of ``tree`` at the rows of ``x`` (inf where it is not finite)."""
    try:
        program = numeric.compile(tree)
    except ValueError:
        return np.inf
    return _program_mse(program, _env(x), y)


def _program_mse(program: numeric.Program, env: dict[str, np.ndarray], y: np.ndarray) -> float:
    try:
        y_hat = np.broadcast_to(program(env), y.shape)
    except KeyError:
        return np.inf
    with np.errstate(all="ignore"):
        value = float(np.mean((y_hat - y) ** 2))
    return value if np.isfinite(value) else np.inf


class _Parametric:
    """``tree`` compiled once, its float leaves at ``where`` replaceable: the same values as
    compiling :func:`with_constants` (a float token round-trips its value exactly)."""

    def __init__(self, tree: Tree, where: list[int]):
        self.program = numeric.compile(tree)
        leaf_steps = [j for j, (kind, _) in enumerate(self.program.steps) if kind != "op"]
        leaf_rank = {i: r for r, i in enumerate(i for i, t in enumerate(tree) if arity(t) == 0)}
        self.slots = [leaf_steps[leaf_rank[i]] for i in where]

    def with_values(self, values: np.ndarray) -> numeric.Program:
        steps = list(self.program.steps)
        for slot, v in zip(self.slots, values.tolist(), strict=True):
            steps[slot] = ("const", float(v))
        return numeric.Program(tuple(steps), self.program.variables)


class _Budget(Exception):
    """The loss evaluation budget of :func:`refine` is spent."""


def refine(
    tree: Tree,
    x: np.ndarray,
    y: np.ndarray,
    *,
    start: str = "predicted",
    rng: np.random.Generator | None = None,
    max_iter: int = 100,
    max_evals: int = 5000,
    max_points: int = 1024,
    max_seconds: float | None = None,
) -> tuple[Tree, float]:
    """``(tree with refined constants, MSE)``: BFGS on the MSE over at most ``max_points``
    rows, started from the tree's constants (``start="predicted"``) or from N(0, 1) draws of
    ``rng`` (``"random"``, the skeleton baseline). ``max_iter`` caps BFGS iterations and
    ``max_evals`` the loss evaluations (a deterministic stand-in for the release's wall cap:
    the best constants seen so far are kept); ``max_seconds`` adds a wall cap (results then
    depend on the machine: off by default). The result is never worse than the start; a
    fit that turns non-finite keeps the start."""
    if start not in ("predicted", "random"):
        raise ValueError(f"start: expected 'predicted' or 'random', got {start!r}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(y) > max_points:
        keep = (rng or np.random.default_rng(0)).choice(len(y), max_points, replace=False)
        x, y = x[keep], y[keep]
    where, c0 = constants_of(tree)
    if start == "random":
        if rng is None:
            raise ValueError("refine: start='random' needs an rng")
        c0 = rng.standard_normal(len(where))
        tree = with_constants(tree, where, c0)
    start_loss = mse(tree, x, y)
    if not where:
        return tree, start_loss

    env = _env(x)
    parametric = _Parametric(tree, where)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    seen = {"evals": 0, "best": (start_loss, c0)}

    def loss(c: np.ndarray) -> float:
        if seen["evals"] >= max_evals or (deadline is not None and time.monotonic() > deadline):
            raise _Budget
        seen["evals"] += 1
        value = _program_mse(parametric.with_values(c), env, y)
        if value < seen["best"][0] and np.isfinite(c).all():
            seen["best"] = (value, np.array(c, dtype=np.float64))
        return value if np.isfinite(value) else 1e300

    try:
        with np.errstate(all="ignore"):
            minimize(loss, c0, method="BFGS", options={"maxiter": max_iter})
    except _Budget:
        pass
    fitted = with_constants(tree, where, seen["best"][1])
    fitted_loss = mse(fitted, x, y)
    if not fitted_loss <= start_loss:
        return tree, start_loss
    return fitted, fitted_loss


def skeleton(tree: Tree) -> Tree:
    """``tree`` with every float constant replaced by ``C`` (for deduplication)."""
    return tuple("C" if is_float(t) else t for t in tree)


#: the modes of :func:`select`: no refinement, BFGS from the predicted constants (E2E), or
#: from N(0, 1) constants (the skeleton + BFGS baseline)
REFINE_MODES = ("none", "e2e", "skeleton")


def fit_r2(tree: Tree, x: np.ndarray, y: np.ndarray) -> float:
    """R^2 of ``tree`` at the rows of ``x`` (-inf when it does not evaluate)."""
    try:
        y_hat = np.broadcast_to(numeric.compile(tree)(_env(x)), np.shape(y))
    except (ValueError, KeyError):
        return -np.inf
    return r2(y, y_hat)


def select(
    candidates: list[Tree],
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_refine: int = 10,
    mode: str = "e2e",
    rng: np.random.Generator | None = None,
    **refine_args,
) -> list[tuple[Tree, float, bool]]:
    """E2E's selection: drop candidates that do not evaluate to finite values at ``x``,
    keep one per skeleton (the best by R^2; the first at equal R^2), refine the constants of
    the ``n_refine`` best and return refined and unrefined candidates as
    ``(tree, R^2, refined)``, best R^2 first (stable: ties keep their order).

    ``mode`` (:data:`REFINE_MODES`): ``"e2e"`` starts BFGS from the predicted constants;
    ``"skeleton"`` first replaces every constant by an N(0, 1) draw of ``rng`` (the model
    gives only the skeleton), so its unrefined candidates carry those random constants;
    ``"none"`` refines nothing. ``refine_args`` go to :func:`refine`."""
    if mode not in REFINE_MODES:
        raise ValueError(f"mode: expected one of {', '.join(REFINE_MODES)}, got {mode!r}")
    if mode == "skeleton" and rng is None:
        raise ValueError("select: mode='skeleton' needs an rng")
    x = np.asarray(x, dtype=np.float64)
    best: dict[Tree, tuple[Tree, float, bool]] = {}
    for tree in candidates:
        key = skeleton(tree)
        if mode == "skeleton":
            if key in best:
                continue
            where, _ = constants_of(tree)
            tree = with_constants(tree, where, rng.standard_normal(len(where)))
        score = fit_r2(tree, x, y)
        if np.isfinite(score) and (key not in best or score > best[key][1]):
            best[key] = (tree, score, False)
    scored = sorted(best.values(), key=lambda row: -row[1])
    out = list(scored)
    if mode != "none":
        for tree, _, _ in scored[:n_refine]:
            fitted, _ = refine(tree, x, y, rng=rng, **refine_args)
            score = fit_r2(fitted, x, y)
            if np.isfinite(score) and fitted != tree:
                out.append((fitted, score, True))
    out.sort(key=lambda row: -row[1])
    return out
