"""Fitting a trained ``odeformer`` model to a user's trajectory (specs/regression.md,
"Inference and refinement" and "odeformer generation"; ODEFormer's ``ODEFormer.fit``).

:class:`ODERegressor` ``fit(times, trajectory)``:

1. checks: times (n,) finite and strictly increasing (an error, not a sort: a file of several
   trajectories one after the other, as PMLB's Strogatz files are, must not be merged), a
   trajectory (n, D) finite with 1 <= D <= the model's ``max_dim``, at least
   :data:`MIN_POINTS` points;
2. encoding as the task encodes its observations (:meth:`OdeformerTask.encode_src`): with
   the task's ``rescale`` (how the model was trained) t is mapped onto [1, 10] and each
   variable divided by its first value, else the values go in as they are; above the task's
   ``max_points`` observations, ``max_points`` rows evenly spread over the index (the first
   and the last included) are encoded, and every row is used below;
3. candidates: ``sampling`` samples at ``temperature`` (ODEFormer's default: 50 at 0.1), or
   beam search (``sampling=0``, ``beam_size``; 1 is greedy decoding);
4. every hypothesis that parses as a system of D components in x_0..x_{D-1} is rewritten back
   to the data's units (:meth:`Scale.from_scaled`: x_j' = s_j b g_j(x / s)), identical
   systems are kept once, and each is integrated from the first observed state over the
   observed times with the task's solver (a budget of right-hand-side calls and a wall cap:
   :func:`~synthmath.tasks.regression.odeformer_scoring.solve`);
5. ranked by sum_d RMSE_d / std_d on all the observed points (ties: decoding order); one that
   does not integrate ranks last.

:func:`read_trajectory` reads a CSV (``synthmath fit odeformer FILE --run RUN``) and
:func:`fit_file` fits it; :class:`TrajectoryFit` is what the command prints and plots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import sympy as sp
import torch

from synthmath.core.errors import ConfigError, DataError
from synthmath.expressions.errors import ExprParseError
from synthmath.expressions.operators import Tree, infix
from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.tasks.regression.inference import decode_candidates
from synthmath.tasks.regression.odeformer_scale import Scale
from synthmath.tasks.regression.odeformer_scoring import r2_weighted, snmse, solve
from synthmath.tasks.regression.tables import read_table

#: fewest time points a trajectory may have
MIN_POINTS = 3
#: ODEFormer's decoding: 50 samples at temperature 0.1
DEFAULT_SAMPLES, DEFAULT_TEMPERATURE = 50, 0.1


class Candidate(NamedTuple):
    """A ranked hypothesis: the system in the data's units, as the model wrote it (in the
    scaled coordinates with ``rescale``), and its score (lower first; inf: not integrable)."""

    trees: tuple[Tree, ...]
    predicted: tuple[Tree, ...]
    score: float


def check_trajectory(times: Any, trajectory: Any, max_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``times`` (n,) and ``trajectory`` (n, D) as float arrays, or a :class:`DataError`."""
    t = np.asarray(times, dtype=np.float64)
    x = np.asarray(trajectory, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if t.ndim != 1 or x.ndim != 2 or len(t) != len(x):
        raise DataError(f"fit: times {t.shape} and trajectory {x.shape} do not match (n,), (n, D)")
    if not 1 <= x.shape[1] <= max_dim:
        raise DataError(f"fit: {x.shape[1]} components; the model reads 1 to {max_dim}")
    if len(t) < MIN_POINTS:
        raise DataError(f"fit: {len(t)} time point(s); need at least {MIN_POINTS}")
    if not (np.isfinite(t).all() and np.isfinite(x).all()):
        raise DataError("fit: times and trajectory must be finite (no NaN or inf)")
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        k = int(bad[0]) + 1
        raise DataError(
            f"fit: times must increase strictly: times[{k}] = {float(t[k])!r} after "
            f"times[{k - 1}] = {float(t[k - 1])!r} (one trajectory, sorted by time)"
        )
    return t, x


class ODERegressor:
    """A trained ``odeformer`` model as a scikit-learn-style estimator of ODE systems (see
    the module docstring).

    After :meth:`fit`: ``trees_`` (the components in x_0..x_{D-1}, prefix, the data's
    units), ``expression_`` (``"<x_0'> | <x_1'>"`` infix), ``r2_`` (variance-weighted R^2 of
    the system integrated from the first observed state against the data), ``scale_``
    (the rescaling, None without), ``candidates_`` (ranked :class:`Candidate` s, distinct
    systems), ``n_decoded_`` (hypotheses), ``n_parsed_`` (well-formed ones),
    ``n_integrable_`` and ``fit_seconds_``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        task: Any,
        *,
        beam_size: int = 1,
        sampling: int = DEFAULT_SAMPLES,
        temperature: float = DEFAULT_TEMPERATURE,
        max_len: int | None = None,
        seed: int = 0,
    ):
        if beam_size < 1 or sampling < 0:
            raise ConfigError(f"beam_size >= 1 and sampling >= 0, got {beam_size}, {sampling}")
        if not temperature >= 0:
            raise ConfigError(f"temperature: expected >= 0, got {temperature}")
        self.model, self.task = model, task
        self.beam_size, self.sampling, self.temperature = beam_size, sampling, temperature
        self.max_len, self.seed = max_len, seed

    # ---- fitting ------------------------------------------------------------------------
    def fit(self, times: Any, trajectory: Any) -> ODERegressor:
        start = time.perf_counter()
        t, x = check_trajectory(times, trajectory, self.task.config.max_dim)
        self.times_, self.trajectory_ = t, x
        dim = x.shape[1]
        rows = encoded_rows(len(t), self.task.config.max_points)
        raw = {
            "obs_times": t[rows][None],
            "obs_values": x[rows][None],
            "n_obs": np.array([len(rows)], dtype=np.int64),
            "dim": np.array([dim], dtype=np.int64),
        }
        self.scale_: Scale | None = self.task.scale(raw, 0)
        hypotheses = self._decode(raw)
        self.n_decoded_ = len(hypotheses)
        systems: dict[tuple[Tree, ...], None] = {}
        for tokens in hypotheses:
            try:
                systems.setdefault(self.task.parse_system(tokens, dim))
            except (ExprParseError, ValueError, KeyError):
                continue
        self.n_parsed_ = len(systems)
        solver = self.task.solver_args()
        ranked = []
        for predicted in systems:
            trees = predicted if self.scale_ is None else self.scale_.from_scaled(predicted)
            fitted = solve(trees, x[0], t, solver)
            ranked.append(
                Candidate(trees, predicted, snmse(x, fitted) if fitted is not None else np.inf)
            )
        ranked.sort(key=lambda c: c.score)
        self.candidates_ = ranked
        self.n_integrable_ = sum(bool(np.isfinite(c.score)) for c in ranked)
        if not self.n_integrable_:
            raise DataError(
                f"fit: none of the model's {len(hypotheses)} hypotheses is a system of {dim} "
                f"component(s) that integrates over the observed times ({len(systems)} "
                "well-formed)"
            )
        self.trees_ = ranked[0].trees
        self.expression_ = " | ".join(infix(tree) for tree in self.trees_)
        self.r2_ = r2_weighted(x, self.predict(t))
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _decode(self, raw: dict[str, np.ndarray]) -> list[list[str]]:
        """The model's hypotheses for the encoded observations, as target tokens."""
        return decode_candidates(self, raw)[0]

    # ---- results ------------------------------------------------------------------------
    def _fitted(self) -> None:
        if not hasattr(self, "trees_"):
            raise ValueError("ODERegressor: call fit(times, trajectory) first")

    def predict(self, times: Any, y0: Any = None) -> np.ndarray:
        """The fitted system integrated at ``times`` (increasing): from ``y0`` at
        ``times[0]``, or (``y0`` None) from the first observed state at the first observed
        time (then ``times`` must not start before it). (len(times), D); all NaN when the
        solver gives up (its budget, a pole, a non-finite value)."""
        self._fitted()
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        dim = len(self.trees_)
        if t.ndim != 1 or not np.isfinite(t).all() or (np.diff(t) <= 0).any():
            raise DataError("predict: times must be finite and strictly increasing")
        if y0 is None:
            t0, start = float(self.times_[0]), self.trajectory_[0]
            if t[0] < t0:
                raise DataError(
                    f"predict: times start at {float(t[0])!r}, before the first observed time {t0!r} "
                    "(pass y0 to start elsewhere)"
                )
            grid = t if t[0] == t0 else np.concatenate([[t0], t])
        else:
            start = np.asarray(y0, dtype=np.float64).ravel()
            if start.shape != (dim,) or not np.isfinite(start).all():
                raise DataError(f"predict: y0 must be {dim} finite values, got {start.shape}")
            grid = t
        if len(grid) == 1:
            out: np.ndarray | None = start[None].copy()
        else:
            out = solve(self.trees_, start, grid, self.task.solver_args())
        if out is None:
            return np.full((len(t), dim), np.nan)
        return out[len(grid) - len(t) :]

    def sympy(self) -> list[sp.Expr]:
        """The components x_0', x_1', ... in SymPy (built from the trees, never from text)."""
        self._fitted()
        return [to_sympy(tree) for tree in self.trees_]


def encoded_rows(n: int, max_points: int) -> np.ndarray:
    """The rows of ``n`` observations the model reads: all of them, or ``max_points`` evenly
    spread over the index (the first and the last included)."""
    if n <= max_points:
        return np.arange(n)
    return np.round(np.linspace(0, n - 1, max_points)).astype(np.int64)


# ---- CSV files ----------------------------------------------------------------------------
@dataclass
class Trajectory:
    times: np.ndarray  # (n,)
    values: np.ndarray  # (n, D)
    time_name: str
    names: list[str]  # state columns: x_k is names[k]


def read_trajectory(
    path: str | Path, time_column: str | None = None, max_dim: int = 6
) -> Trajectory:
    """A CSV trajectory with a header line: the ``time_column`` (default ``t`` when there is
    one, else the first column), then 1..``max_dim`` state columns; times strictly
    increasing. A one-line :class:`DataError` naming the file (row, line and column) for
    every problem (:func:`~synthmath.tasks.regression.tables.read_table`)."""
    chosen: list[str] = []

    def check(names: list[str]) -> None:
        name = time_column or ("t" if "t" in names else names[0])
        if name not in names:
            raise DataError(f"{path}: no time column {name!r} (columns: {', '.join(names)})")
        states = [n for n in names if n != name]
        if len(states) > max_dim:
            raise DataError(
                f"{path}: {len(states)} state columns ({', '.join(states)}); the model reads "
                f"at most {max_dim} (its max_dim)"
            )
        chosen.append(name)

    table = read_table(
        path,
        check_names=check,
        row_name="time point",
        layout="a time column, then the states",
        min_rows=MIN_POINTS,
    )
    name = chosen[0]
    k = table.names.index(name)
    times = table.data[:, k]
    bad = np.flatnonzero(np.diff(times) <= 0)
    if len(bad):
        r = int(bad[0]) + 1
        where = f"{path}: {table.where(r, name)}"
        now, previous = float(times[r]), f"row {r}'s {float(times[r - 1])!r}"
        if times[r] == times[r - 1]:
            raise DataError(f"{where}: time {now!r} repeats {previous} (times must increase)")
        raise DataError(
            f"{where}: time {now!r} comes before {previous} (times must increase: one "
            "trajectory per file, sorted by time)"
        )
    states = [j for j in range(len(table.names)) if j != k]
    return Trajectory(times, table.data[:, states], name, [table.names[j] for j in states])


@dataclass
class TrajectoryFit:
    """A fit of a CSV trajectory: what ``synthmath fit odeformer`` prints (and plots)."""

    trajectory: Trajectory
    regressor: ODERegressor
    path: str

    def named(self, digits: int | None = None) -> list[sp.Expr]:
        """The fitted components in SymPy with the column names as variables (floats to
        ``digits`` significant digits: display)."""
        traj = self.trajectory
        names = {sp.Symbol(f"x_{k}"): sp.Symbol(name) for k, name in enumerate(traj.names)}
        out = [e.subs(names, simultaneous=True) for e in self.regressor.sympy()]
        return out if digits is None else [e.evalf(digits) for e in out]

    def text(self) -> str:
        reg, traj = self.regressor, self.trajectory
        named = self.named()
        width = max(len(n) for n in traj.names) + 1
        lines = [f"system:     {reg.expression_}"]
        for k, (name, expr) in enumerate(zip(traj.names, named, strict=True)):
            lines.append(f"{'named:' if k == 0 else '':<12}{name + chr(39):<{width}} = {expr}")
        used = ", ".join(f"x_{k} = {name}" for k, name in enumerate(traj.names))
        if reg.sampling > 0:
            decoding = f"{reg.sampling} samples at temperature {reg.temperature:g}"
        else:
            decoding = f"beam {reg.beam_size}" if reg.beam_size > 1 else "greedy"
        rescaled = "rescaled inputs" if reg.scale_ is not None else "raw inputs"
        lines += [
            f"variables:  {used}; time {traj.time_name}",
            f"R^2:        {reg.r2_:.6g} on the {len(traj.times)} time points of {self.path} "
            "(integrated from the first observed state)",
            f"time:       {reg.fit_seconds_:.3g} s ({decoding}, {reg.n_decoded_} hypotheses, "
            f"{reg.n_parsed_} distinct systems, {reg.n_integrable_} integrate; {rescaled})",
        ]
        return "\n".join(lines) + "\n"


def fit_file(
    model: Any,
    task: Any,
    path: str | Path,
    *,
    time_column: str | None = None,
    beam_size: int | None = None,
    sampling: int | None = None,
    temperature: float | None = None,
    **options: Any,
) -> TrajectoryFit:
    """Read ``path`` (:func:`read_trajectory`) and fit it. Decoding: ``sampling`` samples at
    ``temperature`` (default 0.1), or beam search of ``beam_size``; neither given: ODEFormer's
    50 samples at 0.1. ``options``: the other :class:`ODERegressor` arguments."""
    if beam_size is not None and sampling is not None:
        raise ConfigError("fit: beam search (--beam) or sampling (--sample), not both")
    if temperature is not None and beam_size is not None:
        raise ConfigError("fit: --temperature applies to sampling (--sample N), not to --beam")
    if beam_size is not None:
        options |= {"beam_size": beam_size, "sampling": 0}
    else:
        options["sampling"] = DEFAULT_SAMPLES if sampling is None else sampling
        options["temperature"] = DEFAULT_TEMPERATURE if temperature is None else temperature
        if options["sampling"] < 1:
            raise ConfigError(f"fit: --sample: expected >= 1, got {options['sampling']}")
    trajectory = read_trajectory(path, time_column, task.config.max_dim)
    regressor = ODERegressor(model, task, **options).fit(trajectory.times, trajectory.values)
    return TrajectoryFit(trajectory, regressor, str(path))
