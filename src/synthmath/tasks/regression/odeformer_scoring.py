"""Scores of predicted ODE systems (specs/regression.md, "Scoring", odeformer).

A hypothesis is integrated (:func:`~synthmath.tasks.regression.odeformer_gen.integrate`, the
right-hand-side budget included) from the clean first state of the reconstruction and of the
generalisation trajectory and compared with them: R^2 variance-weighted over dimensions
(1 - sum_d SS_res,d / sum_d SS_tot,d, as sklearn's ``variance_weighted``; a system that does
not integrate, or does not parse, scores 0), accuracy at R^2 >= 0.9 and 0.99, ``acc_biggio``
(at least 95% of the values ``numpy.isclose`` at rtol 0.05, atol 1e-3). Symbolic recovery
asks every component to equal the truth's at 1e-3 relative (the equivalence engine's numeric
comparison: an ODE's right-hand side has no free additive constant); with rescaling, the
hypothesis as predicted against the answer in the scaled coordinates (both rounded there). ``term_diff`` counts the
additive terms (constants as ``C``, a leading constant factor dropped) missing from or extra
to the truth, over the truth's number of terms. Reranking uses ODEFormer's
sum_d RMSE_d / std_d on the observed points.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthmath.core.metrics import Metric
from synthmath.expressions.equivalence import numeric_compare
from synthmath.expressions.operators import Tree, is_float, subtree_end
from synthmath.tasks.regression import odeformer_gen as gen
from synthmath.tasks.regression.odeformer_solve import integrate

R2_LEVELS = (0.9, 0.99)
RECOVERY_RTOL = 1e-3

METRICS = (
    *(Metric.acc(f"acc_r2_{t}", f"R^2 >= {t} on the trajectory (reconstruction)")
      for t in R2_LEVELS),
    Metric.acc("acc_biggio", "95% of the values isclose (rtol 0.05, atol 1e-3)"),
    *(Metric.acc(f"acc_gen_{t}", f"R^2 >= {t} from the other initial condition")
      for t in R2_LEVELS),
    Metric.acc("recovery", "every component equals the truth (1e-3 relative)"),
    Metric("r2", "variance-weighted R^2 (invalid: 0)", "median", True, "number"),
    Metric("r2_zero", "R^2 clipped at 0", "mean", True, "number"),
    Metric("gen_r2", "R^2 from the other initial condition (invalid: 0)", "median", True,
           "number"),
    Metric("gen_r2_zero", "generalisation R^2 clipped at 0", "mean", True, "number"),
    Metric.fraction("integrable", "the system integrates on the whole grid"),
    Metric("term_diff", "missing plus extra additive terms / the truth's (median: failures "
           "are inf)", "median", False, "number"),
    Metric("complexity", "prefix nodes of the hypothesis", "median", False, "number"),
    Metric("parse_error", "not a well-formed system of the right dimension", "mean", False,
           "percent"),
)  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """What a hypothesis is scored against: the truth's components, the clean (times,
    states) of reconstruction and generalisation, and the observed (times, values)."""

    truth: tuple[Tree, ...]
    full: tuple[np.ndarray, np.ndarray]
    gen: tuple[np.ndarray, np.ndarray]
    observed: tuple[np.ndarray, np.ndarray]


def r2_weighted(y: np.ndarray, y_hat: np.ndarray) -> float:
    """1 - sum_d SS_res,d / sum_d SS_tot,d; 0 when ``y_hat`` is missing or not finite; a
    constant truth gives 1 for an exact fit and 0 otherwise."""
    y, y_hat = np.asarray(y, dtype=np.float64), np.asarray(y_hat, dtype=np.float64)
    if y_hat.shape != y.shape or not np.isfinite(y_hat).all():
        return 0.0
    with np.errstate(all="ignore"):
        ss_res = float(np.sum((y - y_hat) ** 2))
        ss_tot = float(np.sum((y - y.mean(axis=0)) ** 2))
    if not np.isfinite(ss_res):
        return 0.0
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def biggio(y: np.ndarray, y_hat: np.ndarray, share: float = 0.95) -> bool:
    """At least ``share`` of the values ``numpy.isclose(y_hat, y, rtol=0.05, atol=1e-3)``."""
    y, y_hat = np.asarray(y), np.asarray(y_hat)
    if y_hat.shape != y.shape or y.size == 0:
        return False
    return bool(np.mean(np.isclose(y_hat, y, rtol=0.05, atol=1e-3)) >= share)


def snmse(y: np.ndarray, y_hat: np.ndarray) -> float:
    """ODEFormer's selection score: sum_d RMSE_d / std_d (a constant dimension: / 1); inf
    for a missing or non-finite prediction."""
    y, y_hat = np.asarray(y, dtype=np.float64), np.asarray(y_hat, dtype=np.float64)
    if y_hat.shape != y.shape or not np.isfinite(y_hat).all():
        return np.inf
    with np.errstate(all="ignore"):
        rmse = np.sqrt(np.mean((y - y_hat) ** 2, axis=0))
        std = y.std(axis=0)
        value = float(np.sum(rmse / np.where(std > 0, std, 1.0)))
    return value if np.isfinite(value) else np.inf


def additive_terms(tree: Tree) -> Counter:
    """The skeletons of the top-level additive terms (floats as ``C``, a leading constant
    factor ``mul C .`` dropped), with multiplicity."""
    terms: Counter = Counter()
    stack = [0]
    while stack:
        i = stack.pop()
        end = subtree_end(tree, i)
        if tree[i] in ("add", "sub"):
            left_end = subtree_end(tree, i + 1)
            stack += [left_end, i + 1]
            continue
        term = tuple("C" if is_float(t) else t for t in tree[i:end])
        while len(term) > 2 and term[0] == "mul" and term[1] == "C":
            term = term[2:]
        terms[term] += 1
    return terms


def term_difference(pred: tuple[Tree, ...], truth: tuple[Tree, ...]) -> float:
    """Missing plus extra additive terms over all components / the truth's term count."""
    missing = extra = total = 0
    for p, t in zip(pred, truth, strict=True):
        tp, tt = additive_terms(p), additive_terms(t)
        missing += sum((tt - tp).values())
        extra += sum((tp - tt).values())
        total += sum(tt.values())
    return (missing + extra) / max(total, 1)


def recovered(pred: tuple[Tree, ...], truth: tuple[Tree, ...]) -> bool:
    """Every component equals the truth's at :data:`RECOVERY_RTOL` (numeric comparison)."""
    names = gen.variables(len(truth))
    for p, t in zip(pred, truth, strict=True):
        if p == t:
            continue
        verdict = numeric_compare(
            p, t, names, rtol=RECOVERY_RTOL, atol=1e-9, n_points=40, timeout_s=0.5
        )
        if not verdict.correct:
            return False
    return True


def failed(parse_error: bool) -> dict[str, Any]:
    row: dict[str, Any] = {m.name: False for m in METRICS if m.accuracy}
    row |= {"r2": 0.0, "r2_zero": 0.0, "gen_r2": 0.0, "gen_r2_zero": 0.0, "integrable": 0.0}
    row |= {"term_diff": np.inf, "complexity": np.inf, "parse_error": float(parse_error)}
    return row | {"_fit": np.inf}


def solve(trees: tuple[Tree, ...], y0: np.ndarray, times: np.ndarray, solver: dict):
    """The trajectory of ``trees`` from ``y0`` at ``times[0]``, or None (not integrable)."""
    out = integrate(trees, y0, times, max_value=None, **solver)
    return None if isinstance(out, str) else out


def score_system(
    trees: tuple[Tree, ...],
    problem: Problem,
    solver: dict,
    rerank: bool = False,
    as_predicted: tuple[tuple[Tree, ...], tuple[Tree, ...]] | None = None,
) -> dict[str, Any]:
    """The metrics of one parsed hypothesis (plus ``_fit``, the rerank key: lower first).

    ``as_predicted``: (the hypothesis as predicted, the answer) where the model writes
    systems in other coordinates (rescaling): the symbolic scores (recovery, terms,
    complexity) compare those; the trajectories always use ``trees``, in the data's."""
    symbolic, answer = as_predicted or (trees, problem.truth)
    row: dict[str, Any] = {}
    times, clean = problem.full
    pred = solve(trees, clean[0], times, solver)
    score = r2_weighted(clean, pred) if pred is not None else 0.0
    row |= {f"acc_r2_{t}": bool(score >= t) for t in R2_LEVELS}
    row["acc_biggio"] = pred is not None and biggio(clean, pred)
    gen_times, gen_clean = problem.gen
    gen_pred = solve(trees, gen_clean[0], gen_times, solver)
    gen_score = r2_weighted(gen_clean, gen_pred) if gen_pred is not None else 0.0
    row |= {f"acc_gen_{t}": bool(gen_score >= t) for t in R2_LEVELS}
    row["recovery"] = recovered(symbolic, answer)
    row |= {"r2": score, "r2_zero": max(score, 0.0), "gen_r2": gen_score}
    row |= {"gen_r2_zero": max(gen_score, 0.0), "integrable": float(pred is not None)}
    row["term_diff"] = term_difference(symbolic, answer)
    row["complexity"] = float(gen.complexity(symbolic))
    row["parse_error"] = 0.0
    fit = np.inf
    if rerank:
        t_obs, x_obs = problem.observed
        fitted = solve(trees, x_obs[0], t_obs, solver)
        fit = snmse(x_obs, fitted) if fitted is not None else np.inf
    return row | {"_fit": fit}
