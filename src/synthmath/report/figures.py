"""Study figures: grouped bars, heatmaps, lines and threshold plots.

Axis names come from the report's ``labels`` mapping (config ``report.labels``): ``rows``
names the row axis (lines: the legend; bars and threshold: the x-axis; heatmap: the y-axis),
``cols`` the column axis (lines and heatmap: the x-axis; bars: the legend; threshold: the
quantity on the y-axis) and ``metric`` the value axis (e.g. "exact-match accuracy (%)").
Without them an axis is named after its key, underscores as spaces ("test set").
Long titles are wrapped to the figure width. In ``lines`` plots every series has its own
marker, marker size and line style, so that series lying on top of each other (two models
both at 0% or 100%) all stay visible.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthmath.core.files import atomic_path
from synthmath.report.tables import SeedTable

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
LABEL_KEYS = ("rows", "cols", "metric")
OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)}  # legends never hide data


@dataclass(frozen=True)
class AxisLabels:
    """Names of the row axis, the column axis and the metric as shown in a figure."""

    rows: str
    cols: str
    metric: str

    @classmethod
    def of(cls, table: pd.DataFrame | pd.Series, metric: str, labels: dict | None) -> AxisLabels:
        """Labels from the report's ``labels`` mapping, else from the table's axis names."""
        labels = labels or {}
        unknown = sorted(set(labels) - set(LABEL_KEYS))
        if unknown:
            raise ValueError(
                f"report.labels: unknown key {unknown[0]!r}; allowed: rows, cols, metric"
            )
        if isinstance(table, pd.Series):
            rows_name, cols_name = table.index.name, table.name
        else:
            rows_name, cols_name = table.index.name, table.columns.name
        return cls(
            rows=labels.get("rows") or _humanise(rows_name),
            cols=labels.get("cols") or _humanise(cols_name),
            metric=labels.get("metric") or f"{metric} (%)",
        )


def _humanise(name) -> str:
    return str(name or "").split(".")[-1].replace("_", " ")


def _numeric(labels) -> list[float] | None:
    try:
        return [float(label) for label in labels]
    except (TypeError, ValueError):
        return None


def wrap_title(title: str, width_inches: float) -> str:
    """The title broken into lines that fit a figure ``width_inches`` wide (12 pt font)."""
    return textwrap.fill(title, width=max(24, int(11.5 * width_inches)))


def series_style(i: int) -> dict:
    """Marker, size, fill and line style of the i-th series of a lines plot: all differ
    between neighbours, and later markers are smaller and hollow so earlier ones show."""
    return {
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
        "markersize": max(4.0, 9.0 - 1.5 * (i % 4)),
        "markerfacecolor": "none" if i % 2 else None,
        "linewidth": max(1.0, 2.2 - 0.4 * (i % 4)),
    }


def figure(
    table: pd.DataFrame,
    kind: str,
    metric: str,
    title: str,
    seeds: SeedTable | None = None,
    logx: bool = False,
    labels: dict | None = None,
    percent: bool = True,
):
    """Matplotlib figure of a study table: bars, heatmap or lines (x = columns); ranges over
    seeds are drawn as error bars (bars) or shaded bands (lines). ``percent``: values are
    fractions shown in percent on a 0-100 scale; else plain numbers on their own scale, where
    +inf (a training milestone never reached) is left blank, "n.r." in a heatmap cell. The
    caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = AxisLabels.of(table, metric, labels)
    if not percent and not (labels or {}).get("metric"):
        names = AxisLabels(names.rows, names.cols, _humanise(metric))
    scale = 100.0 if percent else 1.0

    def shown(frame: pd.DataFrame) -> np.ndarray:
        out = scale * frame.to_numpy(dtype=float)
        return np.where(np.isinf(out), np.nan, out)

    raw = table.to_numpy(dtype=float)
    values = shown(table)
    low = shown(seeds.low) if seeds is not None else None
    high = shown(seeds.high) if seeds is not None else None
    width = max(5.5, 1.0 + 0.9 * table.shape[1]) + (0 if kind == "heatmap" else 1.5)  # legend
    fig, ax = plt.subplots(figsize=(width, max(3.5, 0.6 * table.shape[0] + 2)))
    if kind == "heatmap":
        finite = values[np.isfinite(values)]
        vmin, vmax = (
            (0, 100) if percent else (finite.min(), finite.max()) if finite.size else (0, 1)
        )
        im = ax.imshow(values, vmin=vmin, vmax=vmax, cmap="viridis", aspect="auto")
        dark_below = 60 if percent else (vmin + vmax) / 2  # white text on dark cells
        ax.set_xticks(
            range(table.shape[1]), [str(c) for c in table.columns], rotation=30, ha="right"
        )
        ax.set_yticks(range(table.shape[0]), [str(r) for r in table.index])
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if np.isfinite(values[i, j]):
                    v = values[i, j]
                    text = f"{v:.0f}" if percent or v.is_integer() else f"{v:.3g}"
                    color = "white" if v < dark_below else "black"
                    ax.text(j, i, text, ha="center", va="center", color=color)
                elif np.isposinf(raw[i, j]):
                    ax.text(j, i, "n.r.", ha="center", va="center", color="grey")
        fig.colorbar(im, ax=ax, label=names.metric)
        ax.set_xlabel(names.cols)
        ax.set_ylabel(names.rows)
    elif kind == "lines":
        numeric = _numeric(table.columns) if logx else None
        xs = numeric if numeric is not None else list(range(table.shape[1]))
        for i, (label, row) in enumerate(zip(table.index, values)):
            (line,) = ax.plot(xs, row, label=str(label), **series_style(i))
            if low is not None:
                ax.fill_between(xs, low[i], high[i], color=line.get_color(), alpha=0.15)
        if numeric is not None:
            ax.set_xscale("log")
        else:
            ax.set_xticks(xs, [str(c) for c in table.columns])
        ax.set_xlabel(names.cols)
        ax.set_ylabel(names.metric)
        if percent:
            ax.set_ylim(-4, 104)
        ax.grid(alpha=0.3)
        ax.legend(title=names.rows, fontsize="small", **OUTSIDE)
    else:
        n_rows, n_cols = values.shape
        bar_width = 0.8 / max(n_cols, 1)
        for j in range(n_cols):
            xs = np.arange(n_rows) + (j - (n_cols - 1) / 2) * bar_width
            err = None
            if low is not None:
                err = np.nan_to_num(np.stack([values[:, j] - low[:, j], high[:, j] - values[:, j]]))
            bars = ax.bar(
                xs, np.nan_to_num(values[:, j]), bar_width, yerr=err, label=str(table.columns[j])
            )
            ax.bar_label(bars, fmt="%.0f" if percent else "%.3g", fontsize="small")
            for x in xs[np.isposinf(raw[:, j])]:  # a milestone never reached: no bar
                ax.text(x, 0, "n.r.", ha="center", va="bottom", fontsize="small", color="grey")
        ax.set_xticks(range(n_rows), [str(r) for r in table.index], rotation=20, ha="right")
        ax.set_xlabel(names.rows)
        ax.set_ylabel(names.metric)
        if percent:
            ax.set_ylim(0, 110)  # room for the bar labels
        ax.grid(axis="y", alpha=0.3)
        if n_cols > 1:
            ax.legend(title=names.cols, fontsize="small", **OUTSIDE)
    fig.suptitle(wrap_title(title, width), fontsize=12)  # centred on the figure, not the axes
    fig.tight_layout()
    return fig


def plot(
    table: pd.DataFrame,
    kind: str,
    metric: str,
    title: str,
    path: str | os.PathLike,
    seeds: SeedTable | None = None,
    logx: bool = False,
    labels: dict | None = None,
    percent: bool = True,
) -> None:
    """Write :func:`figure` of the table as a PNG."""
    import matplotlib.pyplot as plt

    fig = figure(table, kind, metric, title, seeds=seeds, logx=logx, labels=labels, percent=percent)
    save_figure(fig, path)
    plt.close(fig)


def plot_threshold(
    smallest: pd.Series,
    threshold: float,
    xlabel: str,
    title: str,
    path: str | os.PathLike,
    labels: dict | None = None,
    metric: str = "acc",
) -> None:
    """The smallest column value reaching ``threshold`` against the rows (log x-axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = AxisLabels.of(smallest, metric, labels)
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
    ax.set_xlabel((labels or {}).get("rows") or xlabel)
    metric_name = names.metric.removesuffix(" (%)")
    ax.set_ylabel(f"smallest {names.cols}\n(reaching {100 * threshold:.0f}% {metric_name})")
    ax.grid(alpha=0.3)
    fig.suptitle(wrap_title(title, 5.5), fontsize=12)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def save_figure(fig, path: str | os.PathLike) -> None:
    """Write ``fig`` atomically (the format from the real name, not the temporary one)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=Path(path).suffix.lstrip(".") or "png")


def curves_figure(
    curves: pd.DataFrame,
    rows: str,
    cols: str,
    title: str,
    labels: dict | None = None,
    levels: tuple[float, ...] = (0.9, 0.99),
):
    """The main validation metric against the training step (log x): one line per value of
    ``rows`` (the median over the runs sharing it, e.g. seeds, with their range shaded), one
    panel per value of ``cols`` (a single panel when ``cols`` is not a column of ``curves``,
    e.g. ``test_set``); dotted lines at ``levels``. ``curves``: :func:`collect_curves`'s
    frame. The caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    metric = curves.attrs.get("metric") or "validation metric"
    panel_key = cols if cols in curves and cols != rows else None
    panels = _sorted(curves[panel_key].unique()) if panel_key else [None]
    width = 4.2 * len(panels) + 1.5
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 4), sharey=True, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        data = curves if panel is None else curves[curves[panel_key] == panel]
        for i, label in enumerate(_sorted(data[rows].unique())):
            stats = data[data[rows] == label].groupby("step")["value"].agg(["median", "min", "max"])
            style = series_style(i)
            style["markersize"] = min(style["markersize"], 5.0)
            (line,) = ax.plot(stats.index, 100 * stats["median"], label=str(label), **style)
            if (stats["min"] != stats["max"]).any():
                ax.fill_between(
                    stats.index,
                    100 * stats["min"],
                    100 * stats["max"],
                    color=line.get_color(),
                    alpha=0.15,
                )
        for level in levels:
            ax.axhline(100 * level, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("training step")
        ax.set_ylim(-4, 104)
        ax.grid(alpha=0.3)
        if panel is not None:
            ax.set_title(f"{labels.get('cols') or _humanise(cols)} = {panel}", fontsize=10)
    axes[0][0].set_ylabel(labels.get("metric") or f"{metric.replace('_', ' ')} (%)")
    axes[0][-1].legend(title=labels.get("rows") or _humanise(rows), fontsize="small", **OUTSIDE)
    fig.suptitle(wrap_title(title, width), fontsize=12)
    fig.tight_layout()
    return fig


def plot_curves(curves: pd.DataFrame, rows: str, cols: str, title: str, path, **kwargs) -> None:
    """Write :func:`curves_figure` as an image (format from the suffix)."""
    import matplotlib.pyplot as plt

    fig = curves_figure(curves, rows, cols, title, **kwargs)
    save_figure(fig, path)
    plt.close(fig)


def _sorted(values) -> list:
    numeric = _numeric(values)
    if numeric is None:
        return sorted(values, key=str)
    return [v for _, v in sorted(zip(numeric, values, strict=True), key=lambda p: p[0])]
