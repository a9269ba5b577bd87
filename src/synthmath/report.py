"""Study reports: a table (CSV and Markdown) and a figure (PNG) from the evaluation JSONs.

The report spec of a study (config ``report:``) picks the rows and columns among the grid keys,
``test_set`` and the task's breakdown groups (``size``, and e.g. ``network`` for the known
metabolic networks), the metric, and the figure kind: ``bars`` (grouped bars), ``heatmap``
(e.g. the OOD train x test grid), ``lines`` (e.g. accuracy vs test length) or ``threshold``
(the smallest value of the column axis whose accuracy reaches a threshold, per row: e.g. the
priming count needed at each training-set size). With ``seeds`` (a grid key, e.g.
``training.seed``) cells are the median over seeds, shown with their range.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

NO_VALUE = "-"
TABLE_MARK = "<!-- table -->"


def collect(eval_paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per (run, test set, group label) with grid values and metrics.

    Rows with ``group == "all"`` hold the overall metrics; others the per-group breakdown.
    """
    rows = []
    for path in eval_paths:
        summary = json.loads(Path(path).read_text())
        base = {"run_id": summary["run_id"], "test_set": summary["test_set"], "n": summary["n"]}
        base.update({k: _label(v) for k, v in summary.get("grid", {}).items()})
        rows.append({**base, "group": "all", "size": "all", **summary["metrics"]})
        for group, per in summary.get("by_group", {}).items():
            for label, values in per.items():
                rows.append({**base, "group": group, group: label, **values})
    return pd.DataFrame(rows)


def _label(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def group_axes(frame: pd.DataFrame) -> set[str]:
    """Names of the task's breakdown groups present in ``frame`` (e.g. size, network)."""
    return set(frame["group"].unique()) - {"all"} if "group" in frame else set()


def _cells(frame: pd.DataFrame, rows: str, cols: str, metric: str) -> pd.DataFrame:
    """The rows of ``frame`` that feed a rows x cols table (one group breakdown, or overall)."""
    groups = [axis for axis in dict.fromkeys((rows, cols)) if axis in group_axes(frame)]
    if len(groups) > 1:
        raise ValueError(f"rows={rows!r} and cols={cols!r} are two breakdowns; pick one of them")
    data = frame[frame["group"] == (groups[0] if groups else "all")]
    if data.empty or metric not in data:
        raise ValueError(f"no values of metric {metric!r} for rows={rows!r} cols={cols!r}")
    return data


def pivot(
    frame: pd.DataFrame, rows: str, cols: str, metric: str, how: str = "mean"
) -> pd.DataFrame:
    """Table of ``metric`` over the runs that share a cell (``how``: mean, median, min, max).

    Runs that share a cell differ only in keys that are not axes, e.g. their seed.
    """
    data = _cells(frame, rows, cols, metric)
    if rows == cols:
        table = data.groupby(rows, sort=False)[metric].agg(how).to_frame(metric)
    else:
        table = data.pivot_table(index=rows, columns=cols, values=metric, aggfunc=how, sort=False)
    table = table.reindex(sorted(table.index, key=_order_key))
    if rows != cols:
        table = table[sorted(table.columns, key=_order_key)]
    return table


def spread(frame: pd.DataFrame, rows: str, cols: str, metric: str) -> SeedTable:
    """Median over seeds with its range (min, max): the spread a reader should see."""
    return SeedTable(
        pivot(frame, rows, cols, metric, "median"),
        pivot(frame, rows, cols, metric, "min"),
        pivot(frame, rows, cols, metric, "max"),
        int(_cells(frame, rows, cols, metric).groupby(_axes(rows, cols)).size().max()),
    )


def _axes(rows: str, cols: str) -> list[str]:
    return [rows] if rows == cols else [rows, cols]


@dataclass
class SeedTable:
    """Median table and its per-cell range over ``n`` seeds."""

    median: pd.DataFrame
    low: pd.DataFrame
    high: pd.DataFrame
    n: int


def smallest_reaching(table: pd.DataFrame, threshold: float) -> pd.Series:
    """Per row, the smallest numeric column whose value reaches ``threshold`` (NaN if none)."""
    out = {}
    cols = sorted(table.columns, key=lambda c: float(c))
    for label, row in table.iterrows():
        hits = [float(c) for c in cols if np.isfinite(row[c]) and row[c] >= threshold]
        out[label] = min(hits) if hits else np.nan
    return pd.Series(out, name=f"smallest {table.columns.name or 'value'}")


def _order_key(label):
    text = str(label)
    head = text.split("x")[0]
    try:
        return (0, float(head), text)
    except ValueError:
        return (1, 0.0, text)


def to_markdown(
    table: pd.DataFrame, metric: str, percent: bool = True, seeds: SeedTable | None = None
) -> str:
    """A Markdown table; with ``seeds``, cells read ``median [min, max]`` over the seeds."""

    def fmt(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return NO_VALUE
        return f"{100 * v:.1f}" if percent else f"{v:.4g}"

    index_name = table.index.name or ""
    cols = [str(c) for c in table.columns]
    head = f"| {index_name} \\ {table.columns.name or ''} | " + " | ".join(cols) + " |"
    sep = "|" + "---|" * (len(cols) + 1)
    lines = [head, sep]
    for label, row in table.iterrows():
        cells = []
        for col, v in row.items():
            cell = fmt(v)
            if seeds is not None and cell != NO_VALUE:
                lo, hi = seeds.low.loc[label, col], seeds.high.loc[label, col]
                if lo != hi:
                    cell += f" [{fmt(lo)}, {fmt(hi)}]"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    unit = " (%)" if percent else ""
    note = f", median [min, max] over {seeds.n} seeds" if seeds is not None else ""
    return f"{metric}{unit}{note}\n\n" + "\n".join(lines) + "\n"


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
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
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
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def study_report(
    study: str,
    report: dict,
    eval_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    description: str = "",
) -> dict[str, Path]:
    """Write table.csv, table.md and figure.png of a study; returns their paths.

    ``report`` keys: rows, cols, metric, kind (bars | heatmap | lines | threshold), title,
    seeds (a grid key aggregated as median [min, max]), logx (numeric x on a log axis), and
    for kind threshold: test_set and threshold (the table gives, per row, the smallest
    column value whose accuracy on that test set reaches the threshold).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = collect(eval_paths)
    metric = report.get("metric", "acc_tol5")
    kind = report.get("kind", "bars")
    rows, cols = report["rows"], report["cols"]
    if kind == "threshold":
        test_set = report.get("test_set")
        if test_set is not None:
            frame = frame[frame["test_set"] == test_set]
            if frame.empty:
                raise ValueError(f"report.test_set: no evaluations on test set {test_set!r}")
    seeds = spread(frame, rows, cols, metric) if report.get("seeds") else None
    table = seeds.median if seeds else pivot(frame, rows, cols, metric)
    for t in [table] + ([seeds.low, seeds.high] if seeds else []):
        t.index.name = rows.split(".")[-1]
        t.columns.name = cols.split(".")[-1]
    paths = {
        "csv": out / "table.csv",
        "md": out / "table.md",
        "png": out / "figure.png",
        "all": out / "results.csv",
    }
    frame.to_csv(paths["all"], index=False)
    title = report.get("title") or f"{study}: {metric}"
    body = f"# {study}\n\n{description}\n\n" if description else f"# {study}\n\n"
    if kind == "threshold":
        threshold = float(report.get("threshold", 0.9))
        smallest = smallest_reaching(table, threshold)
        smallest.index.name = table.index.name
        smallest.to_frame().to_csv(paths["csv"])
        head = f"{smallest.name} reaching {metric} >= {100 * threshold:g}%"
        lines = [f"| {table.index.name} | {smallest.name} |", "|---|---|"]
        lines += [
            f"| {i} | {NO_VALUE if not np.isfinite(v) else f'{v:g}'} |" for i, v in smallest.items()
        ]
        text = head + "\n\n" + "\n".join(lines) + "\n\n" + to_markdown(table, metric, seeds=seeds)
        paths["md"].write_text(body + TABLE_MARK + "\n" + text)
        plot_threshold(smallest, threshold, table.index.name, title, paths["png"])
        return paths
    table.to_csv(paths["csv"])
    if seeds is not None:
        seeds.low.to_csv(out / "table_min.csv")
        seeds.high.to_csv(out / "table_max.csv")
    paths["md"].write_text(body + TABLE_MARK + "\n" + to_markdown(table, metric, seeds=seeds))
    plot(table, kind, metric, title, paths["png"], seeds=seeds, logx=report.get("logx", False))
    return paths


def log_report(
    tracking_uri: str | None, study: str, paths: dict[str, Path], table_path: Path
) -> None:
    """Log the study's table and figure as artifacts of a study-level MLflow run."""
    if not tracking_uri:
        return
    from synthmath.tracking import Tracker, git_commit

    tracker = Tracker(tracking_uri)
    exp = tracker.experiment(study)
    found = tracker.client.search_runs([exp], filter_string="tags.kind = 'study-report'")
    if found:
        run_id = found[0].info.run_id
    else:
        run = tracker.client.create_run(
            exp, run_name=f"{study}-report", tags={"kind": "study-report", "study": study}
        )
        run_id = run.info.run_id
    tracker.set_tags(run_id, {"git_commit": git_commit()})
    tracker.log_artifacts(run_id, [p for p in paths.values() if Path(p).exists()])
    table = pd.read_csv(table_path, index_col=0)
    rows = []
    for r, row in table.iterrows():
        for c, v in row.items():
            if np.isfinite(v):
                rows.append((re.sub(r"[^A-Za-z0-9_\-./ ]", "_", f"table/{r}/{c}"), float(v), 0))
    tracker.log_metrics(run_id, rows)
    tracker.end_run(run_id)


def write_summary(
    studies: dict[str, dict], table_paths: Sequence[str | os.PathLike], out: str | os.PathLike
) -> None:
    """results/README.md: each study's table next to what its paper reports."""
    lines = [
        "# Results",
        "",
        "Generated by the workflow (`snakemake --cores all`); each study's figure is beside its table.",
        "Numbers are accuracies in percent on fixed, seeded test sets.",
        "",
    ]
    for (name, info), table_path in zip(studies.items(), table_paths):
        lines += [f"## {name} ({info.get('task', '')})", ""]
        if info.get("description"):
            lines += [info["description"], ""]
        if info.get("paper"):
            lines += [f"**Paper:** {info['paper']}", ""]
        text = Path(table_path).read_text() if Path(table_path).exists() else ""
        table = text.split(TABLE_MARK, 1)[-1]
        lines += ["**Ours:**", "", table.strip(), "", f"![{name}]({name}/figure.png)", ""]
    Path(out).write_text("\n".join(lines))
