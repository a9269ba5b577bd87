"""Study reports of the runs' training milestones (steps_to_acc90, ..., final_loss) and the
validation-curve figure (kind curves)."""

from __future__ import annotations

import copy
import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

from synthmath.core.errors import ConfigError
from synthmath.report.figures import curves_figure, figure
from synthmath.report.study import study_report
from synthmath.report.tables import collect, collect_curves, spread
from synthmath.runs.config import validate_config

matplotlib.use("Agg")


def write_eval(tmp_path, beta, seed, test_set, steps90):
    """A run reaching 90% at ``steps90`` (None: never), 99% never; curve of three points."""
    run = f"b{beta}-s{seed}"
    curve = {"metric": "valid_acc", "step": [100, 1000, 10000], "value": [0.1, 0.5 + beta, 0.95]}
    summary = {
        "run_id": run,
        "test_set": test_set,
        "n": 10,
        "grid": {"training.power_beta": beta, "training.lr": 0.001, "training.seed": seed},
        "metrics": {"acc": 0.5},
        "by_group": {},
        "metric_info": {"acc": {"format": "percent", "aggregate": "mean"}},
        "training": {
            "steps_to_acc90": steps90,
            "steps_to_acc99": None,
            "final_loss": 0.125 * (seed + 1),
            "curve": curve,
        },
    }
    path = tmp_path / f"{run}-{test_set}.json"
    path.write_text(json.dumps(summary, allow_nan=False))
    return path


@pytest.fixture
def evals(tmp_path):
    steps = {(0.0, 0): 20000, (0.0, 1): 30000, (0.0, 2): None, (0.25, 0): None}
    steps.update({(0.25, 1): None, (0.25, 2): 40000})
    return [
        write_eval(tmp_path, beta, seed, test, s)
        for (beta, seed), s in steps.items()
        for test in ("id", "ood")
    ]


def test_not_reached_is_the_worst_value_in_medians_and_shown_as_such(evals, tmp_path):
    frame = collect(evals)
    assert np.isposinf(frame["steps_to_acc99"]).all()
    seeds = spread(frame, "training.power_beta", "training.lr", "steps_to_acc90")
    assert seeds.median.loc["0.0", "0.001"] == 30000  # not median(20000, 30000) = 25000
    assert np.isposinf(seeds.median.loc["0.25", "0.001"])
    report = {
        "kind": "curves",
        "rows": "training.power_beta",
        "cols": "training.lr",
        "seeds": "training.seed",
        "metric": "steps_to_acc90",
        "more_metrics": ["final_loss", "acc"],
    }
    paths = study_report("beta", report, evals, tmp_path / "out")
    md = paths["md"].read_text()
    assert "| 0.0 | 30000 [20000, not reached] |" in md
    assert "| 0.25 | not reached [40000, not reached] |" in md
    assert "steps_to_acc90, median" in md and "steps_to_acc90 (%)" not in md
    assert "| 0.0 | 0.25 [0.125, 0.375] |" in md  # final_loss, a number
    assert "acc (%)" in md and "| 50.0 |" in md
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    assert pd.read_csv(paths["csv"], index_col=0).loc[0.0, "0.001"] == 30000


def test_curves_figure_one_line_per_row_value_and_median_over_runs(evals):
    curves = collect_curves(evals)
    assert len(curves) == 6 * 3  # each run once, whatever its test sets
    fig = curves_figure(curves, "training.power_beta", "training.lr", "t")
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in ("0.0", "0.25")]
    assert [line.get_label() for line in lines] == ["0.0", "0.25"]
    assert list(lines[1].get_ydata()) == pytest.approx([10, 75, 95])
    assert ax.get_xscale() == "log" and ax.get_title() == "lr = 0.001"


def test_heatmap_of_a_number_metric_is_not_in_percent():
    table = pd.DataFrame([[1000.0, np.inf, 30000.0]], index=["0.5"], columns=["a", "b", "c"])
    ax = figure(table, "heatmap", "steps_to_acc90", "t", percent=False).axes[0]
    assert [t.get_text() for t in ax.texts] == ["1000", "n.r.", "30000"]
    assert ax.get_images()[0].get_clim() == (1000.0, 30000.0)
    ax = figure(table, "bars", "steps_to_acc90", "t", percent=False).axes[0]
    assert "n.r." in [t.get_text() for t in ax.texts] and ax.get_ylim()[1] > 30000


def test_config_accepts_milestones_and_checks_curves():
    config = {
        "studies": {
            "s": {
                "task": "linalg",
                "params": {"op": "transpose", "dim": 2},
                "grid": {"training.power_beta": [0.0, 1.0], "training.seed": [0, 1]},
                "report": {
                    "kind": "curves",
                    "rows": "training.power_beta",
                    "metric": "steps_to_acc90",
                    "more_metrics": ["steps_to_acc99", "final_loss"],
                    "seeds": "training.seed",
                },
            }
        }
    }
    assert validate_config(copy.deepcopy(config)).studies["s"].report["kind"] == "curves"
    bad = copy.deepcopy(config)
    bad["studies"]["s"]["report"]["more_metrics"] = ["steps_to_acc95"]
    with pytest.raises(ConfigError, match=r"more_metrics\[0\]: unknown metric 'steps_to_acc95'"):
        validate_config(bad)
    bad = copy.deepcopy(config)
    bad["studies"]["s"]["report"]["rows"] = "test_set"
    with pytest.raises(ConfigError, match="kind curves draws one line per value of a grid key"):
        validate_config(bad)
