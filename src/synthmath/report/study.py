"""Study reports: a table (CSV and Markdown) and a figure (PNG) from the evaluation JSONs.

The report spec of a study (config ``report:``) picks the rows and columns among the grid keys,
``test_set`` and the task's breakdown groups (``size``, and e.g. ``network`` for the known
metabolic networks), the metric, and the figure kind: ``bars`` (grouped bars), ``heatmap``
(e.g. the OOD train x test grid), ``lines`` (e.g. accuracy vs test length) or ``threshold``
(the smallest value of the column axis whose accuracy reaches a threshold, per row: e.g. the
priming count needed at each training-set size) or ``curves`` (the table as for a heatmap; the
figure is each run's main validation metric against the training step, log x, one line per
row value, one panel per column value: e.g. accuracy vs step per decay exponent beta). With
``seeds`` (a grid key, e.g. ``training.seed``) cells are the median over seeds, shown with
their range. Besides the task's test metrics, ``metric`` may be a training milestone of the
runs (``steps_to_acc90``, ``steps_to_acc99``, ``final_loss``; :mod:`synthmath.train.milestones`);
``more_metrics`` adds one table per further metric to table.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from synthmath.core.files import atomic_path, write_text
from synthmath.report.figures import plot, plot_curves, plot_threshold
from synthmath.report.robustness import robustness_report
from synthmath.report.tables import (
    MODEL,
    NO_VALUE,
    TABLE_MARK,
    collect,
    collect_curves,
    is_percent,
    pivot,
    smallest_reaching,
    spread,
    to_markdown,
)


def study_report(
    study: str,
    report: dict,
    eval_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    description: str = "",
    name: str | None = None,
) -> dict[str, Path]:
    """Write table.csv, table.md and figure.png of a study; returns their paths (a further
    report of the study, ``name``: table-<name>.csv, table-<name>.md, figure-<name>.png).

    ``report`` keys: rows, cols, metric, kind (bars | heatmap | lines | threshold | curves),
    more_metrics (further tables in table.md), title,
    labels (axis names: rows, cols, metric; see :mod:`synthmath.report.figures`), seeds (a grid key aggregated as median [min, max]), logx (numeric x on a log axis), and
    for kind threshold: test_set and threshold (the table gives, per row, the smallest
    column value whose accuracy on that test set reaches the threshold).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metric = report.get("metric", "acc_tol5")
    kind = report.get("kind", "bars")
    title = report.get("title") or f"{study}: {metric}"
    body = f"# {study}\n\n{description}\n\n" if description else f"# {study}\n\n"
    tail = f"-{name}" if name else ""
    paths = {
        "csv": out / f"table{tail}.csv",
        "md": out / f"table{tail}.md",
        "png": out / f"figure{tail}.png",
        "all": out / f"results{tail}.csv",
    }
    if kind == "robustness":
        robustness_report(report, eval_paths, paths, body, title)
        return paths
    frame = collect(eval_paths)
    rows, cols = report["rows"], report["cols"]
    frame, others = _split_methods(frame, rows, cols)
    percent = is_percent(frame, metric)
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
    with atomic_path(paths["all"]) as tmp:
        (pd.concat([frame, others]) if len(others) else frame).to_csv(tmp, index=False)
    if kind == "threshold":
        threshold = float(report.get("threshold", 0.9))
        smallest = smallest_reaching(table, threshold)
        smallest.index.name = table.index.name
        _write_csv(smallest.to_frame(), paths["csv"])
        head = f"{smallest.name} reaching {metric} >= {100 * threshold:g}%"
        lines = [f"| {table.index.name} | {smallest.name} |", "|---|---|"]
        lines += [
            f"| {i} | {NO_VALUE if not np.isfinite(v) else f'{v:g}'} |" for i, v in smallest.items()
        ]
        text = (
            head
            + "\n\n"
            + "\n".join(lines)
            + "\n\n"
            + to_markdown(table, metric, percent, seeds=seeds)
        )
        write_text(paths["md"], body + TABLE_MARK + "\n" + text)
        plot_threshold(
            smallest,
            threshold,
            table.index.name,
            title,
            paths["png"],
            labels=report.get("labels"),
            metric=metric,
        )
        return paths
    _write_csv(table, paths["csv"])
    if seeds is not None:
        _write_csv(seeds.low, out / f"table{tail}_min.csv")
        _write_csv(seeds.high, out / f"table{tail}_max.csv")
    text = to_markdown(table, metric, percent, seeds=seeds)
    for extra in report.get("more_metrics") or ():
        text += "\n" + _table_text(frame, rows, cols, extra, bool(report.get("seeds")))
    text += _baseline_text(frame, others, rows, cols, [metric, *(report.get("more_metrics") or ())])
    write_text(paths["md"], body + TABLE_MARK + "\n" + text)
    if kind == "curves":
        plot_curves(
            collect_curves(eval_paths), rows, cols, title, paths["png"], labels=report.get("labels")
        )
        return paths
    plot(
        table,
        kind,
        metric,
        title,
        paths["png"],
        seeds=seeds,
        logx=report.get("logx", False),
        labels=report.get("labels"),
        percent=percent,
    )
    return paths


def _split_methods(frame: pd.DataFrame, rows: str, cols: str):
    """(the model's rows, the baselines' rows): the table and figure show the model; the
    baselines get tables of their own in table.md, unless ``method`` is a table axis."""
    if "method" in (rows, cols) or "method" not in frame:
        return frame, frame.iloc[0:0]
    model = frame["method"] == MODEL
    return frame[model], frame[~model]


def _baseline_text(
    frame: pd.DataFrame, others: pd.DataFrame, rows: str, cols: str, metrics: list[str]
) -> str:
    """Each baseline's tables (same axes and metrics as the model's; a grid key axis, which
    a baseline does not have, reads its method), then the inference-time table."""
    if others.empty:
        return ""
    text = ""
    for method in sorted(others["method"].unique()):
        part = others[others["method"] == method].copy()
        for axis in (rows, cols):
            if axis not in part or part[axis].isna().all():
                part[axis] = method
        part.attrs = frame.attrs
        for metric in metrics:
            if metric in part and part[metric].notna().any():
                text += f"\n**{method}**: " + _table_text(part, rows, cols, metric, False)
    both = pd.concat([frame, others])
    both = both[both["group"] == "all"]
    if "seconds_per_problem" in both:
        timing = both.pivot_table(
            index="method", columns="test_set", values="seconds_per_problem", aggfunc="mean"
        )
        timing.index.name, timing.columns.name = "method", "test_set"
        text += "\nInference time per problem (s):\n\n" + to_markdown(
            timing, "seconds_per_problem", percent=False
        )
    return text


def _table_text(frame, rows: str, cols: str, metric: str, with_seeds: bool) -> str:
    """A further metric's Markdown table (``more_metrics``), with the same axes."""
    seeds = spread(frame, rows, cols, metric) if with_seeds else None
    table = seeds.median if seeds else pivot(frame, rows, cols, metric)
    for t in [table] + ([seeds.low, seeds.high] if seeds else []):
        t.index.name = rows.split(".")[-1]
        t.columns.name = cols.split(".")[-1]
    return to_markdown(table, metric, is_percent(frame, metric), seeds=seeds)


def write_summary(
    studies: dict[str, dict],
    table_paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    cas_paths: Sequence[str | os.PathLike] = (),
    theory_paths: Sequence[str | os.PathLike] = (),
) -> None:
    """results/README.md: each study's table next to what its paper reports, then the
    reports of ``cas_paths`` (markdown, a title line first: the CAS baseline's
    ``results/cas/<study>.md``, the theory studies' ``results/theory/convit.md``) if any, then
    the theory toys' figures (``results/theory/``), each with what it shows and what its paper
    predicts."""
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
        for more, paper in info.get("more") or ():  # further reports of the study
            path = Path(table_path).parent / f"table-{more}.md"
            text = path.read_text() if path.exists() else ""
            lines += [f"### {name}: {more}", ""]
            if paper:
                lines += [f"**Paper:** {paper}", ""]
            lines += [text.split(TABLE_MARK, 1)[-1].strip(), ""]
            lines += [f"![{name} {more}]({name}/figure-{more}.png)", ""]
    for path in cas_paths:
        title, _, body = Path(path).read_text().partition("\n")
        lines += [f"## {title.lstrip('# ')}", "", body.replace(TABLE_MARK + "\n", "").strip(), ""]
    if theory_paths:
        lines += _theory_section(theory_paths)
    write_text(out, "\n".join(lines))


def _theory_section(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Links to the theory figures (relative to results/), with their captions."""
    from synthmath.report.theory import CAPTIONS

    lines = [
        "## Theory toys (theory/)",
        "",
        "Figures of the toy models of spec dynamics.md, computed without training "
        "(`theory:` config section).",
        "",
    ]
    for path in map(Path, paths):
        shows, predicts = CAPTIONS.get(path.name, ("", ""))
        lines += [f"### {path.stem}", "", f"![{path.stem}](theory/{path.name})", ""]
        if shows:
            lines += [f"**Shows:** {shows}", ""]
        if predicts:
            lines += [f"**Paper:** {predicts}", ""]
    return lines


def _write_csv(frame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp)
