"""Scoring of recurrence hypotheses (d'Ascoli et al. 2022, the released evaluator).

Symbolic output: a hypothesis is parsed into a recurrence and rolled forward from the observed
prefix (the given terms) for the 10 target steps, each step reading its own earlier outputs
(:func:`~synthmath.tasks.recurrence.generator.roll`). Numeric output: the hypothesis is
decoded as exactly 10 numbers, compared with the targets as the answer tokens write them
(float targets rounded by the number encoding, so the exact tokens score as exact).

The error of a term is |p - t| / |t| (|p| where t = 0); a hypothesis's error is the largest
over the required terms (inf when it does not parse, decode or roll). Verdicts:

- ``acc``: all 10 terms within the mode's tolerance (integers exact, floats 1e-10);
- ``acc_tol<t>``: all 10 terms within t, for t = 0, 1e-10, ..., 1e-1 (0: exact);
- ``acc_terms<k>``: the first k terms within the mode's tolerance, k = 1..10;
- ``rel_error`` (median over examples of the finite errors) and ``parse_error``.

Every accuracy of an n-best list is "solved by some hypothesis of the top k"
(:meth:`~synthmath.core.metrics.Metric.best_of`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from synthmath.core.errors import DecodeError
from synthmath.core.metrics import Metric
from synthmath.core.task import RawBatch, nbest_shape
from synthmath.expressions.errors import ExprParseError
from synthmath.tasks.recurrence.generator import parse_terms, roll

#: the tolerances of ``acc_tol<t>``: exact, then 1e-10 .. 1e-1
TOLERANCES = (0.0, *(10.0**-k for k in range(10, 0, -1)))
#: the tolerance of ``acc`` per mode (the release's float_tolerance 1e-10; integers exact)
MAIN_TOLERANCE = {"int": 0.0, "float": 1e-10}


def tol_name(tol: float) -> str:
    return "acc_tol0" if tol == 0 else f"acc_tol1e-{round(-math.log10(tol))}"


def declared_metrics(mode: str, n_predict: int) -> tuple[Metric, ...]:
    main = "exact" if mode == "int" else f"relative error < {MAIN_TOLERANCE[mode]:g}"
    return (
        Metric.acc("acc", f"all {n_predict} next terms right ({main}) for the hypothesis"),
        *(
            Metric.acc(tol_name(t), f"all next terms within relative error {t:g}")
            for t in TOLERANCES
        ),
        *(
            Metric.acc(f"acc_terms{k}", f"the first {k} next terms right ({main})")
            for k in range(1, n_predict + 1)
        ),
        Metric.error("rel_error", "largest relative error over the next terms"),
        Metric("parse_error", "not one recurrence / not the number of terms", "mean", False),
    )


def term_errors(pred: Sequence, true: Sequence) -> np.ndarray:
    """|p - t| / |t| per term (|p| where t = 0); exact for Python integers of any size."""
    out = np.empty(len(true))
    for j, (p, t) in enumerate(zip(pred, true)):
        diff = abs(p - t)
        try:
            out[j] = diff / abs(t) if t != 0 else float(diff)
        except OverflowError:
            out[j] = math.inf
        if isinstance(p, float) and not math.isfinite(p):
            out[j] = math.inf
    return out


def hypothesis_errors(task, raw: RawBatch, i: int, tokens: Sequence[str]) -> np.ndarray | None:
    """Per-term errors of one hypothesis of example ``i`` (inf where it fails), or None when
    it does not parse or decode."""
    mode, n_pred = task.params["mode"], task.params["n_predict"]
    terms = parse_terms(str(raw["terms"][i]), mode)
    n_input = int(raw["n_input"][i])
    given, targets = terms[:n_input], terms[n_input : n_input + n_pred]
    if task.params["output"] == "numeric":
        try:
            pred = task.decode_terms(tokens, n_pred)
        except DecodeError:
            return None
        return term_errors(pred, task.shown_targets(targets))
    try:
        tree = task.tgt_codec.parse(list(tokens))
    except ExprParseError:
        return None
    try:
        pred = roll(tree, given, n_pred, mode)
    except ValueError:
        pred = "undefined"
    if isinstance(pred, str):
        return np.full(n_pred, math.inf)
    return term_errors(pred, targets)


def score_nbest(task, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]) -> dict:
    """Per-hypothesis scores ``(n, k)`` of every declared metric."""
    n, k = nbest_shape(hypotheses)
    metrics = task.metrics()
    out = {
        m.name: np.zeros((n, k), dtype=bool) if m.accuracy else np.full((n, k), math.inf)
        for m in metrics
    }
    out["parse_error"] = np.zeros((n, k))
    main = MAIN_TOLERANCE[task.params["mode"]]
    for i, hyps in enumerate(hypotheses):
        seen: dict[tuple[str, ...], tuple[int, int]] = {}
        for j, tokens in enumerate(hyps):
            key = tuple(tokens)
            if key in seen:  # identical hypotheses: copy the verdicts
                for m in metrics:
                    out[m.name][i, j] = out[m.name][seen[key]]
                continue
            seen[key] = (i, j)
            errors = hypothesis_errors(task, raw, i, tokens)
            if errors is None:
                out["parse_error"][i, j] = 1.0
                continue
            worst = float(errors.max())
            out["rel_error"][i, j] = worst
            out["acc"][i, j] = _within(worst, main)
            for t in TOLERANCES:
                out[tol_name(t)][i, j] = _within(worst, t)
            running = np.maximum.accumulate(errors)
            for q in range(1, len(errors) + 1):
                out[f"acc_terms{q}"][i, j] = _within(float(running[q - 1]), main)
    return out


def _within(error: float, tol: float) -> bool:
    """Exact for tol 0, else error < tol (the release's strict inequality)."""
    return error == 0.0 if tol == 0 else error < tol
