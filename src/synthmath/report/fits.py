"""The figures of ``synthmath fit symreg|odeformer --plot``.

symreg, a fitted expression against the points: left, predicted vs observed values (the
diagonal is a perfect fit); right, for one input, the observed points and the expression as
a curve over the inputs' range. odeformer, a fitted system against the trajectory: one panel
per component, the observed points and the system integrated from the first observed state
on a fine grid of the observed time span.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from synthmath.report.figures import save_figure


def plot_fit(
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray,
    y_hat: np.ndarray,
    *,
    curve: Callable[[np.ndarray], np.ndarray] | None = None,
    x_name: str = "x",
    y_name: str = "y",
    title: str = "",
) -> None:
    """Write the figure to ``path`` (format from its suffix) atomically. ``curve`` maps a
    column of inputs (n, 1) to values: drawn when ``x`` has one column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one_d = x.shape[1] == 1 and curve is not None
    fig, axes = plt.subplots(1, 2 if one_d else 1, figsize=(10 if one_d else 5, 4.2))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    finite = np.isfinite(y_hat)
    ax.scatter(y[finite], y_hat[finite], s=10, alpha=0.7)
    low, high = float(np.min(y)), float(np.max(y))
    ax.plot([low, high], [low, high], color="black", linewidth=0.8, linestyle="--")
    ax.set_xlabel(f"observed {y_name}")
    ax.set_ylabel(f"predicted {y_name}")
    if one_d:
        grid = np.linspace(x[:, 0].min(), x[:, 0].max(), 400)[:, None]
        ax = axes[1]
        ax.scatter(x[:, 0], y, s=10, alpha=0.7, label="points")
        with np.errstate(all="ignore"):
            ax.plot(grid[:, 0], curve(grid), color="C1", label="expression")
        ax.set_xlabel(x_name)
        ax.set_ylabel(y_name)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_trajectory(
    path: str | os.PathLike,
    times: np.ndarray,
    values: np.ndarray,
    fine_times: np.ndarray,
    fitted: np.ndarray,
    *,
    names: list[str],
    time_name: str = "t",
    labels: list[str] | None = None,
    title: str = "",
) -> None:
    """Write one panel per component (``values[:, k]`` observed, ``fitted[:, k]`` at
    ``fine_times``; non-finite fitted values are not drawn) to ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dim = values.shape[1]
    fig, axes = plt.subplots(dim, 1, figsize=(7, 2.4 * dim + 0.6), sharex=True, squeeze=False)
    for k, ax in enumerate(axes[:, 0]):
        ax.scatter(times, values[:, k], s=9, alpha=0.7, label="data")
        ax.plot(fine_times, fitted[:, k], color="C1", linewidth=1.2, label="fitted system")
        ax.set_ylabel(names[k])
        if labels:
            ax.set_title(labels[k], fontsize=8, loc="left")
    axes[-1, 0].set_xlabel(time_name)
    axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def plot_file_fit(fitted: Any, path: str | os.PathLike) -> None:
    """The figure of a :class:`~synthmath.tasks.regression.inference.FileFit` or a
    :class:`~synthmath.tasks.regression.ode_inference.TrajectoryFit`."""
    if hasattr(fitted, "trajectory"):
        plot_trajectory_fit(fitted, path)
        return
    reg, points = fitted.regressor, fitted.points
    plot_fit(
        path,
        points.x,
        points.y,
        reg.predict(points.x),
        curve=reg.predict,
        x_name=points.names[0],
        y_name=points.target,
        title=f"{points.target} = {reg.expression_}  (R^2 {reg.r2_:.4g})",
    )


#: points of the fitted trajectory's curve
FINE_POINTS = 500


def plot_trajectory_fit(fitted: Any, path: str | os.PathLike) -> None:
    """The figure of a :class:`~synthmath.tasks.regression.ode_inference.TrajectoryFit`."""
    reg, traj = fitted.regressor, fitted.trajectory
    fine = np.linspace(traj.times[0], traj.times[-1], FINE_POINTS)
    named = fitted.named(digits=4)
    labels = [f"{name}' = {_short(str(e))}" for name, e in zip(traj.names, named, strict=True)]
    plot_trajectory(
        path,
        traj.times,
        traj.values,
        fine,
        reg.predict(fine),
        names=traj.names,
        time_name=traj.time_name,
        labels=labels,
        title=f"{fitted.path}: R^2 {reg.r2_:.4g}",
    )


def _short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
