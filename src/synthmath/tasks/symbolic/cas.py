"""The computer-algebra baseline: SymPy on the test problems (the paper's Tables 3 and 8).

Mathematica, Maple and Matlab are not available; their rows are quoted from the paper. SymPy
solves each problem in a worker process (:class:`~synthmath.expressions.workers.VerifyPool`),
under the largest timeout: ``integrate(f, x)`` for integration (solved if no ``Integral``
remains and the derivative check passes) and ``dsolve`` for ODEs (solved if a returned
solution satisfies the equation). Each outcome is (solved, seconds); a smaller timeout T
counts a problem as a success if it was solved within T, as a timeout if it was still running
at T, and as a failure otherwise. SymPy is deterministic, so one run at the largest timeout
gives every column of Table 8 (up to timing noise near a threshold).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import sympy as sp

from synthmath.core.task import RawBatch
from synthmath.expressions.equivalence import verify_ode, verify_primitive
from synthmath.expressions.errors import TimeoutExpired
from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.expressions.workers import VerifyPool

X = sp.Symbol("x")
Y = sp.Function("Y")(X)

#: the paper's CAS rows (Table 3, 500 equations; integration on the BWD test set), percent
PAPER_TABLE3 = {
    "Mathematica (30 s)": {"prim_bwd": 84.0, "ode1": 77.2, "ode2": 61.6},
    "Matlab": {"prim_bwd": 65.2},
    "Maple": {"prim_bwd": 67.4},
}
#: the paper's model in Table 3 (same 500 equations), percent, per beam width
PAPER_TABLE3_MODEL = {
    1: {"prim_bwd": 98.4, "ode1": 81.2, "ode2": 40.8},
    10: {"prim_bwd": 99.6, "ode1": 94.0, "ode2": 73.2},
    50: {"prim_bwd": 99.6, "ode1": 97.0, "ode2": 81.0},
}
#: the paper's Table 8: Mathematica on 500 integrals, (success, failure, timeout) percent
PAPER_TABLE8 = {
    5: (77.8, 9.8, 12.4),
    10: (82.2, 11.6, 6.2),
    30: (84.0, 12.8, 3.2),
    60: (84.4, 13.4, 2.2),
    180: (84.6, 13.8, 1.6),
}


def solve_job(job: tuple[str, str]) -> bool:
    """Whether SymPy solves one problem: (problem name, raw src)."""
    problem, src = job
    expr = to_sympy(tuple(src.split()))
    if problem.startswith(("prim", "robust")):
        primitive = sp.integrate(expr, X)
        if primitive.has(sp.Integral):
            return False
        return verify_primitive(primitive, expr, timeout_s=5.0).verdict == "equal"
    solutions = sp.dsolve(expr, Y)
    for sol in solutions if isinstance(solutions, list) else [solutions]:
        if isinstance(sol, sp.Eq) and sol.lhs == Y and not sol.rhs.has(Y):
            if verify_ode(sol.rhs, expr, timeout_s=5.0).verdict == "equal":
                return True
    return False


def _safe_solve(job) -> bool:
    try:
        return solve_job(job)
    except TimeoutExpired:
        raise  # the pool reports the timeout
    except Exception:  # noqa: BLE001 - SymPy raises anything; a crash is a failure of the CAS
        return False


def run_cas(
    raw: RawBatch, timeouts: Sequence[float], workers: int = 1, progress=None
) -> dict[str, dict]:
    """Per problem name, Table 8 rows ``{timeout: {"success", "failure", "timeout"}}``
    (fractions) and ``n``, plus ``times``: the solve time of every problem (None when it
    reached the largest timeout)."""
    timeouts = sorted(float(t) for t in timeouts)
    jobs = [(str(p), str(s)) for p, s in zip(raw["problem"], raw["src"])]
    t0 = time.time()
    with VerifyPool(workers) as pool:
        outcomes = pool.map(_safe_solve, jobs, timeout_s=timeouts[-1])
    out: dict[str, dict] = {}
    problems = np.asarray(raw["problem"]).astype(str)
    for name in sorted(set(problems)):
        idx = np.flatnonzero(problems == name)
        rows = {}
        for t in timeouts:
            success = failure = timeout = 0
            for i in idx:
                o = outcomes[i]
                if o.status == "timeout" or o.seconds > t:
                    timeout += 1
                elif o.status == "ok" and o.value:
                    success += 1
                else:
                    failure += 1
            n = len(idx)
            rows[_key(t)] = {"success": success / n, "failure": failure / n, "timeout": timeout / n}
        out[name] = {
            "n": int(len(idx)),
            "by_timeout": rows,
            "times": [
                round(outcomes[i].seconds, 3) if outcomes[i].status != "timeout" else None
                for i in idx
            ],
        }
    out["_seconds"] = round(time.time() - t0, 1)
    return out


def _key(t: float) -> str:
    return f"{t:g}"


def table(result: dict) -> str:
    """Table 8 layout: one row per (problem, timeout) with our SymPy figures, and the paper's
    Mathematica figures for integration."""
    lines = ["problem   timeout  success  failure  timeout   | paper Mathematica (integration)"]
    for name, res in result.items():
        if name.startswith("_"):
            continue
        for t, row in res["by_timeout"].items():
            paper = PAPER_TABLE8.get(int(float(t))) if name.startswith("prim") else None
            ref = " / ".join(f"{v:.1f}" for v in paper) if paper else "-"
            lines.append(
                f"{name:9s} {t:>6s} s {100 * row['success']:7.1f}  {100 * row['failure']:7.1f}  "
                f"{100 * row['timeout']:7.1f}   | {ref}"
            )
    return "\n".join(lines)
