"""``synthmath baseline``: a classic baseline on a benchmark, through the task's own test set
and scoring (one code path with the workflow's ``baselines:``; no corruption or metric of its
own).

ODE systems (methods ``sindy``, ``pysindy``; benchmarks ``strogatz``, ``odebench``): for each
noise level g and dropped share r, the ``odeformer`` task's benchmark test set (its problems:
ODEBench's systems from their first initial condition, generalising to the second; Strogatz's
7 systems from each of 4 starts; integrated by the benchmark's solver on ``max_points`` times,
corrupted by the task, seeded) is answered by
:func:`~synthmath.tasks.regression.baseline_methods.answer` and scored by ``task.score``:
reconstruction R^2 (variance-weighted) and accuracy at 0.9 / 0.99, generalisation, recovery...

Functions (method ``operon``; benchmarks ``strogatz``, ``feynman``): the ``symreg`` task's
benchmark test set (one example per problem: 200 standardised points, noise on y), scored
on the input points against the noiseless truth (R^2, acc at 0.99 / 0.999, Acc_tau,
recovery, complexity).

Rows (one per problem and level) are written as CSV and strict JSON (with the answers).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from synthmath.core.errors import ConfigError
from synthmath.core.files import atomic_open, write_json
from synthmath.core.task import RawBatch, Task
from synthmath.expressions.operators import infix
from synthmath.tasks.regression import baseline_methods as methods
from synthmath.tasks.regression.benchmarks import BENCHMARKS
from synthmath.tasks.regression.odeformer import OdeformerTask
from synthmath.tasks.regression.symreg import SymregTask
from synthmath.tasks.regression.symreg_bench import SYMREG_BENCHMARKS

#: ODE-system baselines (task odeformer) and function baselines (task symreg)
ODE_METHODS = ("sindy", "pysindy")
FUNCTION_METHODS = ("operon",)


def benchmark_set(
    method: str,
    benchmark: str,
    noise: float = 0.0,
    subsample: float = 0.0,
    systems: Sequence[int] | None = None,
    seed: int = 0,
    n_points: int | None = None,
    rescale: bool = False,
) -> tuple[Task, RawBatch, list[dict]]:
    """The task of ``method``, its benchmark test set at these levels (``systems``: ODE
    system ids, or 1-based problem numbers of a function benchmark; None: all) and a label
    per example (system or problem)."""
    if method not in ODE_METHODS + FUNCTION_METHODS:
        allowed = ", ".join(ODE_METHODS + FUNCTION_METHODS)
        raise ConfigError(f"unknown baseline {method!r}; allowed: {allowed}")
    rng = np.random.default_rng(seed)
    if method in ODE_METHODS:
        if benchmark not in BENCHMARKS:
            raise ConfigError(f"{method} runs on {', '.join(BENCHMARKS)}, not {benchmark!r}")
        params = {"benchmark": benchmark, "noise": noise, "subsample": subsample,
                  "rescale": rescale} | ({"max_points": n_points} if n_points else {})  # fmt: skip
        task = OdeformerTask(**params)
        problems = task.benchmark_problems()
        ids = [system.id for system, _, _ in problems]
        chosen = _chosen(systems, ids)
        raw = task.to_raw([task.benchmark_example(i) for i in chosen], int(rng.integers(2**62)))
        labels = [
            {"system": ids[i], "name": problems[i][0].name, "start": problems[i][1]} for i in chosen
        ]
        return task, raw, labels
    if benchmark not in SYMREG_BENCHMARKS or benchmark == "none":
        allowed = ", ".join(b for b in SYMREG_BENCHMARKS if b != "none")
        raise ConfigError(f"{method} runs on {allowed}, not {benchmark!r}")
    task = SymregTask(benchmark=benchmark, noise=noise)
    raw = task.sample(len(task.problems), rng)
    chosen = _chosen(systems, list(range(1, len(task.problems) + 1)))
    raw = {k: v[chosen] for k, v in raw.items()}
    labels = [{"system": i + 1, "name": task.problems[i].name} for i in chosen]
    return task, raw, labels


def _chosen(systems: Sequence[int] | None, ids: list[int]) -> list[int]:
    if not systems:
        return list(range(len(ids)))
    missing = sorted(set(systems) - set(ids))
    if missing:
        raise ConfigError(f"--systems: no system {missing[0]} (ids {min(ids)}..{max(ids)})")
    return [i for i, v in enumerate(ids) if v in set(systems)]


def evaluate(
    method: str,
    benchmark: str,
    noises: Sequence[float] = (0.0,),
    subsamples: Sequence[float] = (0.0,),
    systems: Sequence[int] | None = None,
    seed: int = 0,
    select: bool = True,
    n_points: int | None = None,
    max_time: int = 10,
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """One row per (problem, noise, subsample): the task's scores of the method's answer
    (see the module docstring). Function benchmarks have no subsampling (only 0)."""
    if method in FUNCTION_METHODS and any(s != 0 for s in subsamples):
        raise ConfigError("--subsample: function benchmarks have no subsampling (use 0)")
    rows = []
    for noise in noises:
        for subsample in subsamples:
            task, raw, labels = benchmark_set(
                method, benchmark, noise, subsample, systems, seed, n_points
            )
            answers = methods.answer(method, task, raw, seed=seed, max_time=max_time,
                                     select=select)  # fmt: skip
            scores = task.score(raw, answers.hypotheses)
            for i, label in enumerate(labels):
                row = {"benchmark": benchmark, "method": method, **label,
                       "dim": int(raw["dim"][i]), "noise": noise, "subsample": subsample,
                       "seed": seed}  # fmt: skip
                if "n_obs" in raw:
                    row["n_points"] = int(raw["n_obs"][i])
                row["fit_time_s"] = answers.seconds[i]
                row |= {name: float(values[i, 0]) for name, values in scores.items()}
                fit = answers.fits[i]
                row["equations"] = " | ".join(infix(t) for t in fit) if fit else ""
                row["prefix"] = " ".join(answers.hypotheses[i][0])
                row["error"] = answers.errors[i]
                rows.append(row)
                if progress:
                    progress(row)
    return rows


# ---- summary and files -------------------------------------------------------------------
def summarize(rows: list[dict]) -> list[dict]:
    """Means by (noise, subsample): the accuracies, R^2 clipped at 0, recovery, fit time."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["noise"], row["subsample"]), []).append(row)
    out = []
    for (noise, subsample), group in sorted(groups.items()):
        summary = {"noise": noise, "subsample": subsample, "n": len(group)}
        for key in group[0]:
            if key.startswith(("acc", "recovery")) or key in ("r2_zero", "gen_r2_zero"):
                summary[key] = float(np.mean([row[key] for row in group]))
        summary["fit_time_s"] = float(np.mean([row["fit_time_s"] for row in group]))
        out.append(summary)
    return out


def format_table(summary: list[dict]) -> str:
    from tabulate import tabulate

    headers = list(summary[0]) if summary else []
    return tabulate([[row[h] for h in headers] for row in summary], headers, floatfmt=".3f")


def write_results(rows: list[dict], out: str | Path) -> tuple[Path, Path]:
    """``out`` (CSV, one row per problem) and ``out`` with suffix ``.json`` (strict JSON:
    rows and summary)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out.with_suffix(".csv"), out.with_suffix(".json")
    with atomic_open(csv_path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    clean = [{k: _finite(v) for k, v in row.items()} for row in rows]
    write_json(json_path, {"rows": clean, "summary": summarize(rows)})
    return csv_path, json_path


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
