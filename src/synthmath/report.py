"""Study reports: a table (CSV and Markdown) and a figure (PNG) from the evaluation JSONs.

The report spec of a study (config ``report:``) picks the rows and columns among the grid keys,
``test_set`` and ``size`` (the task's size breakdown), the metric, and the figure kind:
``bars`` (grouped bars), ``heatmap`` (e.g. the OOD train x test grid) or ``lines`` (e.g.
accuracy vs matrix size).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
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


def pivot(frame: pd.DataFrame, rows: str, cols: str, metric: str) -> pd.DataFrame:
    """Table of ``metric`` (mean over the runs that share a cell), rows x cols."""
    data = (
        frame[frame["group"] == "size"]
        if "size" in (rows, cols)
        else frame[frame["group"] == "all"]
    )
    if data.empty or metric not in data:
        raise ValueError(f"no values of metric {metric!r} for rows={rows!r} cols={cols!r}")
    if rows == cols:
        table = data.groupby(rows, sort=False)[metric].mean().to_frame(metric)
    else:
        table = data.pivot_table(
            index=rows, columns=cols, values=metric, aggfunc="mean", sort=False
        )
    table = table.reindex(sorted(table.index, key=_order_key))
    if rows != cols:
        table = table[sorted(table.columns, key=_order_key)]
    return table


def _order_key(label):
    text = str(label)
    head = text.split("x")[0]
    try:
        return (0, float(head), text)
    except ValueError:
        return (1, 0.0, text)


def to_markdown(table: pd.DataFrame, metric: str, percent: bool = True) -> str:
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
        lines.append(f"| {label} | " + " | ".join(fmt(v) for v in row.values) + " |")
    unit = " (%)" if percent else ""
    return f"{metric}{unit}\n\n" + "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, kind: str, metric: str, title: str, path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = 100 * table.to_numpy(dtype=float)
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
        xs = list(range(table.shape[1]))
        for label, row in zip(table.index, values):
            ax.plot(xs, row, marker="o", label=str(label))
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
            bars = ax.bar(xs, np.nan_to_num(values[:, j]), width, label=str(table.columns[j]))
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


def study_report(
    study: str,
    report: dict,
    eval_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    description: str = "",
) -> dict[str, Path]:
    """Write table.csv, table.md and figure.png of a study; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = collect(eval_paths)
    metric = report.get("metric", "acc_tol5")
    table = pivot(frame, report["rows"], report["cols"], metric)
    table.index.name = report["rows"].split(".")[-1]
    table.columns.name = report["cols"].split(".")[-1]
    paths = {
        "csv": out / "table.csv",
        "md": out / "table.md",
        "png": out / "figure.png",
        "all": out / "results.csv",
    }
    table.to_csv(paths["csv"])
    frame.to_csv(paths["all"], index=False)
    title = report.get("title") or f"{study}: {metric}"
    body = f"# {study}\n\n{description}\n\n" if description else f"# {study}\n\n"
    paths["md"].write_text(body + TABLE_MARK + "\n" + to_markdown(table, metric))
    plot(table, report.get("kind", "bars"), metric, title, paths["png"])
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
