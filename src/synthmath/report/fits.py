"""The figure of ``synthmath fit symreg --plot``: a fitted expression against the points.

Left: predicted vs observed values (the diagonal is a perfect fit). Right, for one input:
the observed points and the expression as a curve over the inputs' range.
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


def plot_file_fit(fitted: Any, path: str | os.PathLike) -> None:
    """The figure of a :class:`~synthmath.tasks.regression.inference.FileFit`."""
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
