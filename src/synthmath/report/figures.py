"""Study figures: grouped bars, heatmaps, lines and threshold plots."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from synthmath.core.files import atomic_path
from synthmath.report.tables import SeedTable


def _numeric(labels) -> list[float] | None:
    try:
        return [float(label) for label in labels]
    except (TypeError, ValueError):
        return None


def plot(
    table: pd.DataFrame,
    kind: str,
    metric: str,
    title: str,
    path: str | os.PathLike,
    seeds: SeedTable | None = None,
    logx: bool = False,
) -> None:
    """Figure of a study table: bars, heatmap or lines (x = columns); ranges over seeds
    are drawn as error bars (bars) or shaded bands (lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = 100 * table.to_numpy(dtype=float)
    low = 100 * seeds.low.to_numpy(dtype=float) if seeds is not None else None
    high = 100 * seeds.high.to_numpy(dtype=float) if seeds is not None else None
    fig, ax = plt.subplots(
        figsize=(max(5.0, 1.0 + 0.9 * table.shape[1]), max(3.5, 0.6 * table.shape[0] + 2))
    )
    if kind == "heatmap":
        im = ax.imshow(values, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        ax.set_xticks(
            range(table.shape[1]), [str(c) for c in table.columns], rotation=30, ha="right"
        )
        ax.set_yticks(range(table.shape[0]), [str(r) for r in table.index])
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if np.isfinite(values[i, j]):
                    color = "white" if values[i, j] < 60 else "black"
                    ax.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", color=color)
        fig.colorbar(im, ax=ax, label=f"{metric} (%)")
        ax.set_xlabel(table.columns.name or "")
        ax.set_ylabel(table.index.name or "")
    elif kind == "lines":
        numeric = _numeric(table.columns) if logx else None
        xs = numeric if numeric is not None else list(range(table.shape[1]))
        for i, (label, row) in enumerate(zip(table.index, values)):
            (line,) = ax.plot(xs, row, marker="o", label=str(label))
            if low is not None:
                ax.fill_between(xs, low[i], high[i], color=line.get_color(), alpha=0.15)
        if numeric is not None:
            ax.set_xscale("log")
        else:
            ax.set_xticks(xs, [str(c) for c in table.columns])
        ax.set_xlabel(table.columns.name or "")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
        ax.legend(title=table.index.name, fontsize="small")
    else:
        n_rows, n_cols = values.shape
        width = 0.8 / max(n_cols, 1)
        for j in range(n_cols):
            xs = np.arange(n_rows) + (j - (n_cols - 1) / 2) * width
            err = None
            if low is not None:
                err = np.nan_to_num(np.stack([values[:, j] - low[:, j], high[:, j] - values[:, j]]))
            bars = ax.bar(
                xs, np.nan_to_num(values[:, j]), width, yerr=err, label=str(table.columns[j])
            )
            ax.bar_label(bars, fmt="%.0f", fontsize="small")
        ax.set_xticks(range(n_rows), [str(r) for r in table.index], rotation=20, ha="right")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_ylim(0, 105)
        ax.grid(axis="y", alpha=0.3)
        if n_cols > 1:
            ax.legend(title=table.columns.name, fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:  # the format from the real name, not the temporary one
        fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)


def plot_threshold(
    smallest: pd.Series, threshold: float, xlabel: str, title: str, path: str | os.PathLike
) -> None:
    """The smallest axis value reaching ``threshold`` against the rows (log x-axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    xs = _numeric(smallest.index)
    ys = smallest.to_numpy(dtype=float)
    if xs is None:
        xs = list(range(len(ys)))
        ax.set_xticks(xs, [str(i) for i in smallest.index])
    else:
        ax.set_xscale("log")
    ax.plot(xs, ys, marker="o")
    for x, y in zip(xs, ys):
        if not np.isfinite(y):
            ax.annotate("not reached", (x, 0), ha="center", fontsize="small", color="grey")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{smallest.name} (reaching {100 * threshold:.0f}%)")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:  # the format from the real name, not the temporary one
        fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
