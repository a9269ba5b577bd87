"""Scoring of decoded predictions (differential.md "Scoring", the released evaluator).

- ``pde``: ``acc``, both words right; ``acc_exists``, the first.
- ``stability``, ``control``, ``control_t``: ``acc``, the YES/NO answer equals the label.
- ``convergence``: ``acc_tol10`` (main), ``acc_tol5``, ``acc_tol2``, ``acc_tol1``:
  |hyp - tgt| / |tgt| below the tolerance (|hyp| as the denominator when tgt = 0);
  ``acc_sign``: the sign of the predicted speed is right (the qualitative answer);
  ``rel_error``: the relative error (median).
- ``feedback``: ``acc``, "mathematically correct": max Re eig(A + B K_pred) < 0 with A, B
  recomputed from the input (same normalisation), so any stabilising K counts, not only the
  reference; ``acc_tol10`` .. ``acc_tol1``: every coefficient within the tolerance of the
  reference (relative; |hyp| as denominator where the reference is 0); ``rel_error``: the
  mean relative L1 error ||K_pred - K||_1 / ||K||_1 (median over examples).

A prediction that does not decode, or has the wrong shape, is wrong everywhere (error inf).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from synthmath.core.metrics import Metric
from synthmath.core.task import RawBatch
from synthmath.tasks.differential import labels

#: tolerances in percent, as in the metric names
TOLERANCES = (10, 5, 2, 1)
INF = float("inf")


def declared_metrics(problem: str) -> tuple[Metric, ...]:
    """The metrics :func:`score_decoded` returns for ``problem``, in the same order."""
    if problem in ("stability", "control", "control_t"):
        return (Metric.acc("acc", "the YES/NO answer is right"),)
    if problem == "pde":
        return (
            Metric.acc("acc", "both words (a solution exists, it vanishes) are right"),
            Metric.acc("acc_exists", "the existence word is right"),
        )
    tol = [Metric.acc(f"acc_tol{t}", f"relative error below {t}%") for t in TOLERANCES]
    if problem == "convergence":
        return (
            *tol,
            Metric.acc("acc_sign", "the sign of the speed (stable or not) is right"),
            Metric.error("rel_error", "|hyp - tgt| / |tgt|"),
        )
    tol = [Metric.acc(f"acc_tol{t}", f"every coefficient of K within {t}%") for t in TOLERANCES]
    return (
        Metric.acc("acc", "the predicted K stabilises A + B K (max Re eig < 0)"),
        *tol,
        Metric.error("rel_error", "||K_pred - K||_1 / ||K||_1"),
    )


def relative_errors(hyp: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Elementwise |hyp - tgt| / |tgt|, with |hyp| as denominator where tgt = 0 (0 when
    both are 0)."""
    hyp, tgt = np.asarray(hyp, float), np.asarray(tgt, float)
    den = np.where(tgt != 0, np.abs(tgt), np.abs(hyp))
    with np.errstate(all="ignore"):
        out = np.where(den > 0, np.abs(hyp - tgt) / np.where(den > 0, den, 1), 0.0)
    return np.where(np.isfinite(out), out, INF)


def score_decoded(
    problem: str, raw: RawBatch, decoded: Sequence[Any], normalize_b: bool = False
) -> dict[str, np.ndarray]:
    """Per-example metrics; ``decoded[i]`` is None when prediction i did not decode."""
    m = len(decoded)
    if problem == "pde":
        ok = [isinstance(d, tuple) and d == (bool(x), bool(v))
              for d, x, v in zip(decoded, raw["exists"], raw["vanishes"])]  # fmt: skip
        first = [isinstance(d, tuple) and d[0] == bool(x) for d, x in zip(decoded, raw["exists"])]
        return {"acc": np.array(ok, dtype=bool), "acc_exists": np.array(first, dtype=bool)}
    if problem in ("stability", "control", "control_t"):
        want = raw["speed"] > 0 if problem == "stability" else raw["deficit"] == 0
        ok = [d is not None and isinstance(d, bool) and d == bool(w) for d, w in zip(decoded, want)]
        return {"acc": np.array(ok, dtype=bool)}
    err = np.full(m, INF)
    worst = np.full(m, INF)  # feedback: the largest coefficient error
    extra = np.zeros(m, dtype=bool)  # convergence: sign; feedback: stabilising
    for i, d in enumerate(decoded):
        if d is None:
            continue
        if problem == "convergence":
            err[i] = worst[i] = float(relative_errors(np.float64(d), raw["speed"][i]))
            extra[i] = np.sign(d) == np.sign(raw["speed"][i])
            continue
        n, p = int(raw["n_eq"][i]), int(raw["n_ctrl"][i])
        if not isinstance(d, np.ndarray) or d.shape != (p, n) or not np.isfinite(d).all():
            continue
        k = raw["k"][i, :p, :n]
        worst[i] = float(relative_errors(d, k).max())
        total = np.abs(k).sum()
        err[i] = float(np.abs(d - k).sum() / total) if total > 0 else float(np.abs(d).sum() > 0)
        a, b = raw["a"][i, :n, :n], raw["b"][i, :n, :p]
        extra[i] = labels.closed_loop_max_real(a, b, d, normalize_b) < 0
    out: dict[str, np.ndarray] = {}
    if problem == "feedback":
        out["acc"] = extra
    for t in TOLERANCES:
        out[f"acc_tol{t}"] = worst < t / 100
    if problem == "convergence":
        out["acc_sign"] = extra
    out["rel_error"] = err
    return out
