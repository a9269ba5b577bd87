"""Study tables: evaluation JSONs collected into one frame, pivoted, medians over seeds."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthmath.train.milestones import LEVELS
from synthmath.train.milestones import METRICS as TRAINING_METRICS
from synthmath.train.milestones import NAMES as TRAINING_NAMES

NO_VALUE = "-"
NOT_REACHED = "not reached"  # a training milestone (e.g. steps_to_acc90) never reached


TABLE_MARK = "<!-- table -->"
#: the ``method`` of a run's evaluations (a baseline's: ``baseline:<method>``)
MODEL = "model"


def collect(eval_paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per (run, test set, group label) with grid values and metrics; with baseline
    evaluations among them, ``method``: :data:`MODEL` for a run's, ``baseline:<method>``.

    Rows with ``group == "all"`` hold the overall metrics; others the per-group breakdown.
    The metrics' declarations (``metric_info`` of the summaries) go to
    ``frame.attrs["metric_info"]`` (see :func:`is_percent`).
    """
    rows = []
    info: dict[str, dict] = {}
    for path in eval_paths:
        summary = json.loads(Path(path).read_text())
        info.update(summary.get("metric_info", {}))
        base = {"run_id": summary["run_id"], "test_set": summary["test_set"], "n": summary["n"]}
        if "method" in summary:  # a baseline's: baseline:<method> (runs' files have none)
            base["method"] = summary["method"]
        base.update({k: _label(v) for k, v in summary.get("grid", {}).items()})
        overall = dict(summary["metrics"])
        if "seconds_per_problem" in summary:  # a timing of the whole set (eval.summary)
            overall["seconds_per_problem"] = summary["seconds_per_problem"]
        trained = _training_values(summary)
        if trained:
            info.update({m.name: m.info() for m in TRAINING_METRICS})
        rows.append({**base, "group": "all", "size": "all", **overall, **trained})
        for group, per in summary.get("by_group", {}).items():
            for label, values in per.items():
                rows.append({**base, "group": group, group: label, **values})
    frame = pd.DataFrame(rows)
    if "method" in frame:
        frame["method"] = frame["method"].fillna(MODEL)
    frame.attrs["metric_info"] = info
    return frame


def _training_values(summary: dict) -> dict[str, float]:
    """The run's training milestones of an evaluation summary (its ``training`` section); a
    level never reached (null) is +inf, so that medians over seeds and "smaller is better"
    comparisons treat it as the worst value."""
    trained = summary.get("training") or {}
    out = {}
    for name in TRAINING_NAMES:
        if name in trained:
            value = trained[name]
            if value is None:
                value = math.inf if name in LEVELS else math.nan
            out[name] = float(value)
    return out


def collect_curves(eval_paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per (run, logged validation step): run_id, the grid values, ``step`` and
    ``value`` (the run's main validation metric, named in ``frame.attrs["metric"]``), from
    the ``training`` section of the evaluation JSONs (each run once, whatever its test sets)."""
    rows, seen, metric = [], set(), None
    for path in eval_paths:
        summary = json.loads(Path(path).read_text())
        curve = (summary.get("training") or {}).get("curve")
        if not curve or summary["run_id"] in seen:
            continue
        seen.add(summary["run_id"])
        metric = metric or curve["metric"]
        base = {"run_id": summary["run_id"]}
        base.update({k: _label(v) for k, v in summary.get("grid", {}).items()})
        rows += [
            {**base, "step": s, "value": v}
            for s, v in zip(curve["step"], curve["value"], strict=True)
        ]
    if not rows:
        raise ValueError(
            "no validation curves in the evaluations (a `training` section with a curve); "
            "evaluate the runs again"
        )
    frame = pd.DataFrame(rows)
    frame.attrs["metric"] = metric
    return frame


def is_percent(frame: pd.DataFrame, metric: str) -> bool:
    """Whether ``metric`` is shown in percent, as its task declares it (``Metric.format``).

    Evaluations written before metrics were declared carry no declaration: percent, as
    reports always showed them.
    """
    declared = frame.attrs.get("metric_info", {}).get(metric)
    return declared is None or declared.get("format") == "percent"


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
        if np.isinf(v):
            return NOT_REACHED if v > 0 else "-inf"
        if percent:
            return f"{100 * v:.1f}"
        return f"{v:.0f}" if float(v).is_integer() and abs(v) >= 1e4 else f"{v:.4g}"

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
