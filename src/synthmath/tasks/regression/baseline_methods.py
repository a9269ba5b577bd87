"""Classic baselines as "methods" of the regression tasks, scored by the tasks themselves.

A method reads each example of a test set's raw batch as a model would (the observations
only: never the truth or the clean trajectory), fits it, and writes its answer as tokens in
the task's output format, so that ``task.score`` (and :mod:`synthmath.eval.summary`) compute
exactly the model's metrics on exactly the same points:

- ``sindy`` (our SINDy, hyperparameters chosen on the last 30% of the observations:
  :func:`~synthmath.tasks.regression.baselines.sindy_select`) and ``pysindy`` (the same
  selection over pysindy fits; extra ``baselines``): task ``odeformer``. The fit sees the
  observations in the coordinates the model reads (with ``rescale``: t on [1, 10], each
  variable over its first observed value) and writes the system there, as the model does;
  the task rewrites it back before scoring.
- ``operon`` (genetic programming, :func:`~synthmath.tasks.regression.baselines_gp.operon_fit`;
  extra ``baselines``): task ``symreg``, on the input points (standardised, as the model
  reads them). The test set's ``refine`` applies to its answer as to the model's (BFGS from
  its constants).

Numbers: the answer goes through the task's codec, so its constants are rounded to
``P10000``'s 4 significant digits, the precision the model writes. Decided: score the rounded
tokens (one code path, the model's constraint); the effect is measured by
:func:`rounding_effect` (the fit scored before and after rounding) and reported in the
evaluation JSON's ``rounding`` (mean |R^2 change| and the examples whose main accuracy
changes). A fit that fails (singular library, solver error, non-finite data) answers an empty
hypothesis, which the task scores as a parse error, like a model's malformed answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthmath.core.errors import ConfigError
from synthmath.core.task import RawBatch, Task
from synthmath.expressions.operators import Tree
from synthmath.tasks.regression import baselines

#: method -> the task whose test sets it answers
METHOD_TASKS = {"sindy": "odeformer", "pysindy": "odeformer", "operon": "symreg"}
#: method -> the Python module of its optional extra (None: numpy only)
METHOD_EXTRAS = {"sindy": None, "pysindy": "pysindy", "operon": "pyoperon"}
#: exceptions that mean "this fit failed" (scored as a failed answer, the run goes on)
FIT_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError)


@dataclass
class MethodAnswers:
    """A method's answers to a raw batch: one n-best list of one hypothesis per example (the
    task's tokens), the fits before rounding, the wall time of each fit and each failure."""

    hypotheses: list[list[list[str]]] = field(default_factory=list)
    fits: list[tuple[Tree, ...] | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def check_method(method: str, task_name: str, where: str = "method") -> None:
    """ConfigError unless ``method`` is a baseline of task ``task_name``."""
    if method not in METHOD_TASKS:
        raise ConfigError(
            f"{where}: unknown baseline {method!r}; allowed: {', '.join(METHOD_TASKS)}"
        )
    if METHOD_TASKS[method] != task_name:
        allowed = [m for m, t in METHOD_TASKS.items() if t == task_name]
        raise ConfigError(
            f"{where}: {method!r} is a baseline of task {METHOD_TASKS[method]!r}, not of "
            f"{task_name!r}; allowed: {', '.join(allowed) or '(none)'}"
        )


def _ode_fitter(method: str, select: bool) -> Callable[[np.ndarray, np.ndarray], tuple]:
    fit = baselines.sindy_fit if method == "sindy" else baselines.pysindy_fit
    if select:
        return lambda t, x: baselines.sindy_select(t, x, fit=fit)[0]
    return lambda t, x: fit(t, x, baselines.SindyConfig())


def answer(
    method: str,
    task: Task,
    raw: RawBatch,
    *,
    seed: int = 0,
    max_time: int = 10,
    select: bool = True,
    progress: Callable[[int, MethodAnswers], None] | None = None,
) -> MethodAnswers:
    """``method``'s answers to every example of ``raw`` (see the module docstring).
    ``max_time``: operon's seconds per problem; ``select``: SINDy's hyperparameter
    selection (False: pysindy's defaults)."""
    check_method(method, task.name)
    if METHOD_EXTRAS[method]:
        baselines.require(METHOD_EXTRAS[method])
    out = MethodAnswers()
    n = len(raw["dim"])
    if task.name == "odeformer":
        fit = _ode_fitter(method, select)
    for i in range(n):
        start = time.perf_counter()
        error = ""
        try:
            if task.name == "odeformer":
                times, values = task.observed(raw, i)
                scale = task.scale(raw, i)
                if scale is not None:
                    times, values = scale.apply(times, values)
                trees = tuple(fit(times, values))
            else:
                from synthmath.tasks.regression.baselines_gp import operon_fit

                x, y = task.points(raw, i)
                trees = (operon_fit(x, y, seed=seed, max_time=max_time),)
        except FIT_ERRORS as err:
            trees, error = None, f"{type(err).__name__}: {err}"
        out.seconds.append(time.perf_counter() - start)
        out.fits.append(trees)
        out.errors.append(error)
        out.hypotheses.append([tokens(task, trees)])
        if progress:
            progress(i, out)
    return out


def tokens(task: Task, trees: tuple[Tree, ...] | None) -> list[str]:
    """The task's answer tokens of a fit (constants rounded by its codec); [] for no fit."""
    if trees is None:
        return []
    try:
        if task.name == "odeformer":
            return list(task.answer_tokens(trees))
        return list(task.codec.encode(trees[0]))
    except (ValueError, KeyError):
        return []


def rounding_effect(task: Task, raw: RawBatch, answers: MethodAnswers) -> dict[str, Any]:
    """How much rounding the fits to ``P10000`` changes their scores: each fit and its tokens
    read back, scored the same direct way (odeformer: the reconstruction R^2, integrated as
    the task does; symreg: R^2 on the
    input points against the truth, without ``refine``/``extrapolation_scale``):
    ``mean_abs_r2_change`` over the fits, ``main_changed`` the examples whose accuracy at the
    main level (R^2 >= 0.9, resp. 0.99) differs."""
    changes, flips = [], 0
    for i, trees in enumerate(answers.fits):
        if trees is None or not answers.hypotheses[i][0]:
            continue
        exact, rounded = _r2(task, raw, i, trees), _r2(task, raw, i, None, answers.hypotheses[i][0])
        level = 0.9 if task.name == "odeformer" else 0.99
        flips += int((exact >= level) != (rounded >= level))
        if np.isfinite(exact) and np.isfinite(rounded):
            changes.append(abs(exact - rounded))
    return {
        "mean_abs_r2_change": float(np.mean(changes)) if changes else 0.0,
        "main_changed": flips,
        "fits": len(changes),
    }


def _r2(task: Task, raw: RawBatch, i: int, trees=None, hypothesis=None) -> float:
    """R^2 of a fit (``trees``) or of its tokens (``hypothesis``), see :func:`rounding_effect`."""
    from synthmath.expressions.errors import ExprParseError

    try:
        if task.name == "odeformer":
            from synthmath.tasks.regression import odeformer_scoring as scoring

            dim = int(raw["dim"][i])
            trees = trees if hypothesis is None else task.parse_system(hypothesis, dim)
            scale = task.scale(raw, i)
            original = trees if scale is None else scale.from_scaled(trees)
            times, clean = task.trajectory(raw, i)
            pred = scoring.solve(original, clean[0], times, task.solver_args())
            return scoring.r2_weighted(clean, pred) if pred is not None else 0.0
        from synthmath.tasks.regression import symreg_gen
        from synthmath.tasks.regression.fitting import r2

        tree = trees[0] if hypothesis is None else task.codec.parse(hypothesis)
        x, _ = task.points(raw, i)
        truth = tuple(str(raw["tree"][i]).split())
        return float(r2(symreg_gen.evaluate(truth, x), symreg_gen.evaluate(tree, x)))
    except (ExprParseError, *FIT_ERRORS, KeyError):
        return -np.inf
