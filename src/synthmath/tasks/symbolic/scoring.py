"""Scoring of n-best lists by verification (Lample & Charton 2019, section 4.2 and the
released evaluator).

A hypothesis token-for-token equal to the reference is correct without a check. Any other
hypothesis is parsed (a parse error is wrong) and verified in a pool of worker processes with
a deadline per hypothesis (``verify_timeout``, 5 s as released; a worker stuck in SymPy is
killed and replaced, and the hypothesis counts as wrong and as a timeout):

- integration: the derivative of the hypothesis minus the integrand simplifies to 0 (1 s),
  else the hypothesis minus the reference simplifies to 0 (1 s) - ``acc``;
- ODEs: the hypothesis substituted for Y in the equation simplifies to 0 after ``doit``
  (1 s), else hypothesis minus reference simplifies to 0 - ``acc``;
- ``acc_numeric`` adds the numeric fallback of :mod:`synthmath.expressions.equivalence`.

Identical hypotheses of one example are verified once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from synthmath.core.task import RawBatch, nbest_shape
from synthmath.expressions.equivalence import verify_ode, verify_primitive
from synthmath.expressions.errors import ExprParseError, UnsupportedExpression
from synthmath.expressions.sympy_bridge import simplify, to_sympy

_ODE_LEAVES = {"Y", "Y'", "Y''"}
#: below this many checks the pool's start-up costs more than it saves
INLINE_BELOW = 8


def verify_job(job: tuple[str, str, str, str]) -> tuple[bool, bool]:
    """(symbolically verified, verified with the numeric fallback) of one hypothesis.

    ``job`` is (problem, raw src, raw tgt, raw hypothesis): plain strings, so the job runs
    in a worker process.
    """
    problem, src, tgt, hyp = job
    hyp_tree = tuple(hyp.split())
    if _ODE_LEAVES.intersection(hyp_tree):
        return False, False  # a solution written in terms of the unknown
    h = to_sympy(hyp_tree)
    if problem.startswith(("prim", "robust")):
        verdict = verify_primitive(h, to_sympy(tuple(src.split())), timeout_s=1.0)
    else:
        verdict = verify_ode(h, to_sympy(tuple(src.split())), timeout_s=1.0)
    if verdict.verdict == "equal":
        return True, True
    status, diff = simplify(h - to_sympy(tuple(tgt.split())), 1.0)
    if status == "ok" and diff == 0:
        return True, True
    return False, verdict.verdict == "numeric_equal"


def score_nbest(task, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]) -> dict:
    """Per-hypothesis scores ``(n, k)`` of every declared metric of the symbolic task."""
    n, k = nbest_shape(hypotheses)
    out = {m.name: np.zeros((n, k), dtype=bool) for m in task.metrics()}
    jobs: dict[tuple[int, str], tuple[str, str, str, str]] = {}
    where: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for i, hyps in enumerate(hypotheses):
        src, tgt = str(raw["src"][i]), str(raw["tgt"][i])
        reference = task.codec.encode(tuple(tgt.split()))
        for j, tokens in enumerate(hyps):
            tokens = list(tokens)
            if tokens == reference:
                for name in ("acc", "acc_numeric", "exact"):
                    out[name][i, j] = True
                continue
            try:
                tree = task.codec.parse(tokens)
            except ExprParseError:
                out["parse_error"][i, j] = True
                continue
            key = (i, " ".join(tree))
            jobs.setdefault(key, (str(raw["problem"][i]), src, tgt, key[1]))
            where.setdefault(key, []).append((i, j))
    keys = list(jobs)
    outcomes = _run(task, [jobs[key] for key in keys])
    for key, (status, value) in zip(keys, outcomes):
        for i, j in where[key]:
            if status == "ok":
                out["acc"][i, j], out["acc_numeric"][i, j] = value
            elif status == "timeout":
                out["verify_timeout"][i, j] = True
    return out


def _run(task, jobs: list) -> list[tuple[str, tuple[bool, bool] | None]]:
    if not jobs:
        return []
    workers = task.params["verify_workers"] or min(8, os.cpu_count() or 1)
    if len(jobs) < INLINE_BELOW:
        workers = 0  # inline: SymPy hangs in C are not interrupted, time_limit covers the rest
    from synthmath.expressions.workers import VerifyPool

    with VerifyPool(workers) as pool:
        outcomes = pool.map(_safe_verify, jobs, timeout_s=task.params["verify_timeout"])
    return [(o.status, o.value) for o in outcomes]


def _safe_verify(job) -> tuple[bool, bool]:
    """:func:`verify_job`, with a hypothesis SymPy cannot build counted wrong."""
    try:
        return verify_job(job)
    except (UnsupportedExpression, ValueError, TypeError, ZeroDivisionError, RecursionError):
        return False, False
