"""Baselines on the benchmark systems, scored as the spec's "Scoring" section says.

ODE systems (methods :data:`ODE_METHODS`; benchmarks ``strogatz`` and ``odebench``): for each
system, noise level g and subsampling rate r, the clean trajectory from the first initial
condition (the benchmark's solver and grid) is corrupted (:func:`corrupt`, seeded),
the method fits the whole system, and the fit is integrated (bounded solver: a failure scores
0) from the first *observed* state over the clean times from there on: **reconstruction**
R^2 (variance-weighted over dimensions) and accuracy at R^2 >= 0.9 / 0.99; then both systems
from the second initial condition: **generalisation**. Fit time per problem.

Functions (method ``operon``; benchmark ``strogatz``): the 14 component regressions as PMLB's
ODE-Strogatz builds them (x = the states of the system's 4 trajectories of 100 points,
y = the component's true derivative there), a seeded 75/25 train/test split, noise on the
training targets y(1 + g eps); test R^2, acc at 0.99/0.999, symbolic recovery, complexity.

Rows are written as CSV and strict JSON (with the fitted trees as prefix tokens).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from synthmath.core.errors import ConfigError
from synthmath.expressions import numeric
from synthmath.expressions.operators import Tree, infix
from synthmath.tasks.regression import baselines
from synthmath.tasks.regression.benchmarks import integrate, load_benchmark
from synthmath.tasks.regression.fitting import r2, symbolic_recovery

#: ODE-system baselines: (times, states, select) -> one tree per component
ODE_METHODS = ("sindy", "pysindy")
#: function baselines: (x, y, seed, max_time) -> tree
FUNCTION_METHODS = ("operon",)
R2_LEVELS_ODE = (0.9, 0.99)
R2_LEVELS_FUNCTION = (0.99, 0.999)


def corrupt(
    times: np.ndarray, traj: np.ndarray, noise: float, subsample: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """ODEFormer's corruption, seeded: drop round(subsample * n) of the points (at random,
    order kept), then multiplicative noise x (1 + noise * eps), eps ~ N(0, 1)."""
    n = len(times)
    keep = np.sort(rng.choice(n, n - int(round(subsample * n)), replace=False))
    kept = np.asarray(traj, dtype=np.float64)[keep]
    return np.asarray(times)[keep], kept * (1.0 + noise * rng.standard_normal(kept.shape))


def _ode_fit(method: str, select: bool) -> Callable[[np.ndarray, np.ndarray], tuple[Tree, ...]]:
    if method not in ODE_METHODS:
        raise ConfigError(f"unknown ODE baseline {method!r}; allowed: {', '.join(ODE_METHODS)}")
    fit = baselines.sindy_fit if method == "sindy" else baselines.pysindy_fit
    if method == "pysindy":
        baselines.require("pysindy")
    if select:
        return lambda t, x: baselines.sindy_select(t, x, fit=fit)[0]
    return lambda t, x: fit(t, x, baselines.SindyConfig())


def _rng(seed: int, system_id: int, noise: float, subsample: float) -> np.random.Generator:
    return np.random.default_rng([seed, system_id, round(noise * 1e6), round(subsample * 1e6)])


def evaluate_ode(
    method: str,
    benchmark: str,
    noises: Sequence[float] = (0.0,),
    subsamples: Sequence[float] = (0.0,),
    systems: Sequence[int] | None = None,
    seed: int = 0,
    select: bool = True,
    n_points: int | None = None,
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """One row per (system, noise, subsample); see the module docstring. ``n_points``:
    points per clean trajectory (default the benchmark's: ODEBench 512, Strogatz 100)."""
    fit = _ode_fit(method, select)
    bench = load_benchmark(benchmark)
    chosen = [bench.system(i) for i in systems] if systems else list(bench.systems)
    rows = []
    for system in chosen:
        clean = integrate(system, system.initial_conditions[0], bench.solver, n_points)
        other = integrate(system, system.initial_conditions[1], bench.solver, n_points)
        for noise in noises:
            for subsample in subsamples:
                rng = _rng(seed, system.id, noise, subsample)
                times, states = corrupt(clean.times, clean.states, noise, subsample, rng)
                row = {
                    "benchmark": benchmark, "method": method, "system": system.id,
                    "name": system.name, "dim": system.dim, "noise": noise,
                    "subsample": subsample, "seed": seed, "n_points": len(times),
                }  # fmt: skip
                start = time.perf_counter()
                try:
                    trees = fit(times, states)
                    error = ""
                except (ValueError, np.linalg.LinAlgError, RuntimeError) as err:
                    trees, error = None, str(err)
                row["fit_time_s"] = time.perf_counter() - start
                rec = gen = 0.0
                if trees is not None:
                    on = clean.times >= times[0]
                    pred = baselines.simulate(trees, states[0], clean.times[on], t0=times[0])
                    rec = baselines.trajectory_r2(clean.states[on], pred)
                    pred = baselines.simulate(trees, other.states[0], other.times)
                    gen = baselines.trajectory_r2(other.states, pred)
                row |= {"r2_rec": rec, "r2_gen": gen}
                for level in R2_LEVELS_ODE:
                    row[f"acc_rec_{level}"] = float(rec >= level)
                    row[f"acc_gen_{level}"] = float(gen >= level)
                row["equations"] = " | ".join(infix(t) for t in trees) if trees else ""
                row["prefix"] = " | ".join(" ".join(t) for t in trees) if trees else ""
                row["error"] = error
                rows.append(row)
                if progress:
                    progress(row)
    return rows


def strogatz_regressions(
    n_points: int | None = None,
) -> list[tuple[int, int, np.ndarray, np.ndarray, Tree]]:
    """``(system id, component, x, y, truth)`` of the 14 Strogatz component regressions."""
    bench = load_benchmark("strogatz")
    out = []
    for system in bench.systems:
        x = np.concatenate(
            [
                integrate(system, y0, bench.solver, n_points).states
                for y0 in system.initial_conditions
            ]
        )
        env = {f"x_{j}": x[:, j] for j in range(system.dim)}
        for j, tree in enumerate(system.trees):
            y = np.broadcast_to(numeric.compile(tree)(env), (len(x),)).astype(np.float64)
            out.append((system.id, j, x, y, tree))
    return out


def evaluate_functions(
    method: str,
    benchmark: str = "strogatz",
    noises: Sequence[float] = (0.0,),
    systems: Sequence[int] | None = None,
    seed: int = 0,
    max_time: int = 10,
    progress: Callable[[dict], None] | None = None,
    **fit_args,
) -> list[dict]:
    """One row per (component regression, noise); see the module docstring."""
    if method not in FUNCTION_METHODS:
        allowed = ", ".join(FUNCTION_METHODS)
        raise ConfigError(f"unknown function baseline {method!r}; allowed: {allowed}")
    if benchmark != "strogatz":
        raise ConfigError(f"function baselines run on strogatz, not {benchmark!r}")
    from synthmath.tasks.regression.baselines_gp import operon_fit

    baselines.require("pyoperon")
    rows = []
    for system_id, comp, x, y, truth in strogatz_regressions():
        if systems and system_id not in systems:
            continue
        for noise in noises:
            rng = _rng(seed, 100 * system_id + comp, noise, 0.0)
            order = rng.permutation(len(y))
            train, test = order[: 3 * len(y) // 4], order[3 * len(y) // 4 :]
            y_train = y[train] * (1.0 + noise * rng.standard_normal(len(train)))
            row = {
                "benchmark": benchmark, "method": method, "system": system_id,
                "component": comp, "noise": noise, "seed": seed,
            }  # fmt: skip
            start = time.perf_counter()
            tree = operon_fit(x[train], y_train, seed=seed, max_time=max_time, **fit_args)
            row["fit_time_s"] = time.perf_counter() - start
            env = {f"x_{j}": x[test, j] for j in range(x.shape[1])}
            y_hat = np.broadcast_to(numeric.compile(tree)(env), (len(test),))
            score = r2(y[test], y_hat)
            row["r2"] = score
            for level in R2_LEVELS_FUNCTION:
                row[f"acc_r2_{level}"] = float(score >= level)
            variables = tuple(f"x_{j}" for j in range(x.shape[1]))
            row["recovery"] = float(symbolic_recovery(tree, truth, variables))
            row["complexity"] = len(tree)
            row["equation"] = infix(tree)
            row["prefix"] = " ".join(tree)
            rows.append(row)
            if progress:
                progress(row)
    return rows


# ---- summary and files -------------------------------------------------------------------
def summarize(rows: list[dict]) -> list[dict]:
    """Means by (noise, subsample): R^2 clipped at 0, the accuracies, recovery, fit time."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["noise"], row.get("subsample", 0.0)), []).append(row)
    out = []
    for (noise, subsample), group in sorted(groups.items()):
        summary = {"noise": noise, "subsample": subsample, "n": len(group)}
        for key in group[0]:
            if key.startswith(("r2", "acc", "recovery")) or key == "fit_time_s":
                values = [max(row[key], 0.0) if key.startswith("r2") else row[key] for row in group]
                summary[key] = float(np.mean(values))
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
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    clean = [{k: _finite(v) for k, v in row.items()} for row in rows]
    payload = {"rows": clean, "summary": summarize(rows)}
    json_path.write_text(json.dumps(payload, allow_nan=False, indent=1), encoding="utf-8")
    return csv_path, json_path


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
