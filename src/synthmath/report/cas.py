"""The CAS baseline beside the paper: Markdown in the layouts of its Tables 3 and 8.

Table 3 compares accuracies (percent): the paper's Mathematica (30 s), Matlab and Maple rows,
our SymPy at each timeout, then the paper's model and ours at each beam width. Table 8 gives,
per timeout, the share of problems solved / failed / still running: the paper's Mathematica
on integration, our SymPy on each problem. The CAS result is what
:func:`synthmath.jobs.cas.cas_job` writes; the model rows come from evaluation JSON files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from synthmath.report.tables import NO_VALUE, TABLE_MARK
from synthmath.tasks.symbolic.cas import PAPER_TABLE3, PAPER_TABLE3_MODEL, PAPER_TABLE8

PROBLEM_LABELS = {
    "prim_fwd": "integration (FWD)",
    "prim_bwd": "integration (BWD)",
    "prim_ibp": "integration (IBP)",
    "ode1": "ODE 1",
    "ode2": "ODE 2",
}


def _pct(value: float | None) -> str:
    return NO_VALUE if value is None else f"{100 * value:.1f}"


def _quoted(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.1f}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def model_rows(evals: Sequence[dict], problems: Sequence[str]) -> dict[str, dict[str, float]]:
    """Row label ("model, beam 10", or with the run's other grid values) -> problem -> accuracy
    (a fraction): ``acc_beam<b>`` of each evaluation, or ``acc`` when it has no beam widths."""
    rows: dict[str, dict[str, float]] = {}
    for ev in evals:
        problem = (ev.get("test_params") or {}).get("problem")
        if problem not in problems:
            continue
        metrics = ev.get("metrics") or {}
        beams = sorted(int(m.group(1)) for k in metrics if (m := re.fullmatch(r"acc_beam(\d+)", k)))
        values = {b: metrics[f"acc_beam{b}"] for b in beams}
        if not values:
            values = {int(ev.get("beam_size", 1)): metrics.get("acc")}
        # the run's grid values, but not the test problem itself (a grid over the problem)
        other = {
            k.split(".")[-1]: v
            for k, v in (ev.get("grid") or {}).items()
            if not (k == "params.problem" and v == problem)
        }
        label = "model" + (
            " (" + ", ".join(f"{k}={v}" for k, v in other.items()) + ")" if other else ""
        )
        for b, value in values.items():
            rows.setdefault(f"{label}, beam {b}", {})[problem] = value
    return rows


def table3(result: dict, evals: Sequence[dict] = ()) -> str:
    """Table 3's layout: accuracy (%) of each solver per problem."""
    problems = list(result["problems"])
    head = ["", *(PROBLEM_LABELS.get(p, p) for p in problems)]
    lines = [_row(head), _row(["---"] * len(head))]
    for name, values in PAPER_TABLE3.items():
        lines.append(_row([f"{name}, paper", *(_quoted(values.get(p)) for p in problems)]))
    for t in result["timeouts"]:
        cells = [result["problems"][p]["by_timeout"][f"{t:g}"]["success"] for p in problems]
        lines.append(_row([f"SymPy ({t:g} s)", *map(_pct, cells)]))
    ours = model_rows(evals, problems)
    beams = sorted({int(label.rsplit(" ", 1)[1]) for label in ours} | set(PAPER_TABLE3_MODEL))
    for b in beams:
        paper = PAPER_TABLE3_MODEL.get(b)
        if paper:
            lines.append(
                _row([f"model, beam {b}, paper", *(_quoted(paper.get(p)) for p in problems)])
            )
        for label, values in ours.items():
            if label.endswith(f", beam {b}"):
                lines.append(_row([label, *(_pct(values.get(p)) for p in problems)]))
    return "\n".join(lines)


def table8(result: dict) -> str:
    """Table 8's layout: success / failure / timeout (%) per timeout."""
    problems = list(result["problems"])
    head = [
        "timeout",
        "Mathematica, integration (paper)",
        *(f"SymPy, {PROBLEM_LABELS.get(p, p)}" for p in problems),
    ]
    lines = [_row(head), _row(["---"] * len(head))]
    timeouts = sorted({float(t) for t in result["timeouts"]} | {float(t) for t in PAPER_TABLE8})
    for t in timeouts:
        paper = PAPER_TABLE8.get(int(t)) if t == int(t) else None
        cells = [f"{t:g} s", " / ".join(map(_quoted, paper)) if paper else NO_VALUE]
        for p in problems:
            row = result["problems"][p]["by_timeout"].get(f"{t:g}")
            cells.append(
                " / ".join(_pct(row[k]) for k in ("success", "failure", "timeout"))
                if row
                else NO_VALUE
            )
        lines.append(_row(cells))
    return "\n".join(lines)


def cas_markdown(result: dict, evals: Sequence[dict] = ()) -> str:
    """The report of one CAS result (``results/cas/<study>.md``): how it was run, then
    Tables 3 and 8 (the part the results README shows comes after :data:`TABLE_MARK`)."""
    n = ", ".join(f"{p} {r['n']}" for p, r in result["problems"].items())
    model_n = sorted({int(ev["n"]) for ev in evals if "n" in ev})
    model = (
        f" The model's accuracies are on the whole test sets ({', '.join(map(str, model_n))} "
        "problems), verified as in Table 2."
        if model_n
        else " No evaluation of the study's models yet: no model rows."
    )
    intro = (
        f"SymPy {result.get('sympy_version', '')} on the `{result['test_set']}` test sets of "
        f"study `{result['study']}` (problems: {n}; workers: {result.get('workers', 1)}, "
        f"{result.get('seconds', 0):g} s): `integrate` (solved if no integral remains and the "
        "derivative checks), `dsolve` (solved if a solution satisfies the equation); a problem "
        "still running at a timeout counts as a timeout. Mathematica, Matlab and Maple are "
        "quoted from the paper (500 problems; integration on BWD)." + model
    )
    return "\n".join(
        [
            f"# CAS baseline: {result['study']}",
            "",
            intro,
            "",
            TABLE_MARK,
            "**Table 3**, accuracy (%):",
            "",
            table3(result, evals),
            "",
            "**Table 8**, success / failure / timeout (%):",
            "",
            table8(result),
            "",
        ]
    )
