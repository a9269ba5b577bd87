"""Robustness reports (``report.kind: robustness``): a metric against a test-set parameter,
for the model and its baselines (ODEFormer's accuracy vs noise by subsampling rate).

The axes are task parameters of the test sets, read from each evaluation's ``test_params``
(never parsed from test-set names): ``cols`` the x-axis (e.g. ``noise``), ``rows`` one line
per value (e.g. ``subsample``), ``panels`` one panel column per value (e.g. ``benchmark``),
and one panel row per metric (``metric`` then ``more_metrics``: e.g. reconstruction and
generalisation accuracy and R^2). Each method (``model``, ``baseline:<method>``) has its own
line style and marker, each ``rows`` value its own colour. Test sets whose parameters lack
an axis, or draw their levels per example (``random_levels``), are left out.

The table (table.csv, and table.md per metric) has one row per (method, panel, line value)
and one column per x value; table.md ends with the inference-time table (:func:`timing_table`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from synthmath.report.figures import LINESTYLES, MARKERS, save_figure, wrap_title
from synthmath.report.tables import MODEL, to_markdown


def collect_params(
    eval_paths: Sequence[str | os.PathLike], axes: Sequence[str], metrics: Sequence[str]
) -> pd.DataFrame:
    """One row per evaluation with its method, test set, the ``axes`` parameters (from its
    ``test_params``) and the overall ``metrics``; ``attrs["metric_info"]`` their declarations."""
    rows, info = [], {}
    for path in eval_paths:
        summary = json.loads(Path(path).read_text())
        params = summary.get("test_params") or {}
        if params.get("random_levels") or any(a not in params for a in axes):
            continue
        info.update(summary.get("metric_info", {}))
        row = {"method": summary.get("method", MODEL), "test_set": summary["test_set"]}
        row |= {a: params[a] for a in axes}
        row |= {m: summary["metrics"].get(m, np.nan) for m in metrics}
        row["seconds_per_problem"] = summary.get("seconds_per_problem", np.nan)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["metric_info"] = info
    return frame


def robustness_table(frame: pd.DataFrame, metric: str, rows: str, cols: str, panels: str):
    """``metric`` with one row per (method, panel value, rows value), one column per x value
    (the mean over evaluations sharing a cell: several runs of a grid)."""
    index = ["method", panels, rows]
    table = frame.pivot_table(index=index, columns=cols, values=metric, aggfunc="mean")
    table = table.sort_index(key=lambda s: s.map(_order)) if len(table) else table
    return table[sorted(table.columns, key=float)]


def _order(value):
    if value == MODEL:
        return (0, 0.0, "")
    try:
        return (1, float(value), "")
    except (TypeError, ValueError):
        return (2, 0.0, str(value))


def timing_table(frame: pd.DataFrame, panels: str) -> pd.DataFrame:
    """Mean ``seconds_per_problem`` by method (rows) and panel value (columns)."""
    table = frame.pivot_table(
        index="method", columns=panels, values="seconds_per_problem", aggfunc="mean"
    )
    return table.reindex(sorted(table.index, key=_order))


def plot_robustness(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    rows: str,
    cols: str,
    panels: str,
    title: str,
    path: str | os.PathLike,
    percent: dict[str, bool] | None = None,
    labels: dict | None = None,
) -> dict[tuple[str, str], list[dict]]:
    """Draw the figure; returns what each panel (metric, panel value) shows: one entry per
    line with its method, rows value and (x, y) points (tests read it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    percent = percent or {}
    methods = sorted(frame["method"].unique(), key=_order)
    series = sorted(frame[rows].unique(), key=_order)
    panel_values = sorted(frame[panels].unique(), key=_order)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(
        len(metrics), len(panel_values), squeeze=False, sharex=True,
        figsize=(4.2 * len(panel_values) + 2.0, 3.0 * len(metrics) + 0.8),
    )  # fmt: skip
    drawn: dict[tuple[str, str], list[dict]] = {}
    for r, metric in enumerate(metrics):
        scale = 100.0 if percent.get(metric, True) else 1.0
        for c, panel in enumerate(panel_values):
            ax = axes[r][c]
            lines = drawn.setdefault((metric, str(panel)), [])
            for m, method in enumerate(methods):
                for s, value in enumerate(series):
                    part = frame[
                        (frame["method"] == method)
                        & (frame[panels] == panel)
                        & (frame[rows] == value)
                    ]
                    part = part.groupby(cols)[metric].mean().sort_index()
                    if part.empty:
                        continue
                    x, y = part.index.to_numpy(float), part.to_numpy(float)
                    ax.plot(
                        x, y * scale, color=colours[s % len(colours)],
                        linestyle=LINESTYLES[m % len(LINESTYLES)], marker=MARKERS[m % len(MARKERS)],
                        markerfacecolor="none" if m else None,
                        label=f"{method}, {labels.get('rows') or rows} {value}",
                    )  # fmt: skip
                    lines.append({"method": method, "series": value, "x": x.tolist(),
                                  "y": y.tolist()})  # fmt: skip
            ax.set_title(f"{panel}", fontsize=10)
            if scale == 100.0:
                ax.set_ylim(-3, 103)
            ax.grid(alpha=0.3)
            if c == 0:
                ax.set_ylabel(f"{metric} (%)" if scale == 100.0 else metric)
            if r == len(metrics) - 1:
                ax.set_xlabel(labels.get("cols") or cols)
    handles, names = axes[0][-1].get_legend_handles_labels()
    width = 4.2 * len(panel_values) + 2.0
    if handles:  # right of the panels, in the figure (never over the data)
        fig.legend(handles, names, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(wrap_title(title, width - 2.5), fontsize=12)
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - 2.4 / width, 1.0))
    save_figure(fig, path)
    plt.close(fig)
    return drawn


def robustness_report(
    report: dict, eval_paths: Sequence[str | os.PathLike], paths: dict[str, Path], head: str,
    title: str,
) -> dict[tuple[str, str], list[dict]]:  # fmt: skip
    """table.csv, table.md and figure.png of a ``kind: robustness`` report (module doc)."""
    from synthmath.core.files import atomic_path, write_text
    from synthmath.report.tables import TABLE_MARK

    rows, cols, panels = report["rows"], report["cols"], report.get("panels") or "benchmark"
    metrics = [report["metric"], *(report.get("more_metrics") or ())]
    frame = collect_params(eval_paths, [rows, cols, panels], metrics)
    if frame.empty:
        raise ValueError(
            f"report: no evaluation has the test parameters {rows!r}, {cols!r} and {panels!r} "
            "(kind robustness reads them from each test set's parameters)"
        )
    info = frame.attrs["metric_info"]
    percent = {m: (info.get(m) or {}).get("format", "percent") == "percent" for m in metrics}
    with atomic_path(paths["all"]) as tmp:
        frame.to_csv(tmp, index=False)
    text = ""
    for k, metric in enumerate(metrics):
        table = robustness_table(frame, metric, rows, cols, panels)
        table.index = [" / ".join(map(str, i)) for i in table.index]
        table.index.name = f"method / {panels} / {rows}"
        table.columns.name = cols
        if k == 0:  # table.csv: the first metric, one index column (what MLflow logs)
            with atomic_path(paths["csv"]) as tmp:
                table.to_csv(tmp)
        text += to_markdown(table, metric, percent[metric]) + "\n"
    timing = timing_table(frame, panels)
    timing.index.name, timing.columns.name = "method", panels
    text += (
        "Inference time per problem (s, mean over test sets; the model: decoding and selection "
        "on its evaluation device; a baseline: its fit on one CPU thread):\n\n"
        + to_markdown(timing, "seconds_per_problem", percent=False)
    )
    write_text(paths["md"], head + TABLE_MARK + "\n" + text)
    return plot_robustness(
        frame, metrics, rows, cols, panels, title, paths["png"], percent, report.get("labels")
    )
