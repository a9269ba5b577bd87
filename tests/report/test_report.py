"""Study reports from evaluation JSONs: tables, seed aggregation, breakdown axes, thresholds."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from synthmath.core.errors import ConfigError
from synthmath.report.study import study_report
from synthmath.report.tables import collect, pivot, smallest_reaching, spread
from synthmath.runs.config import validate_config


def write_eval(tmp_path, run_id, grid, test_set, acc, by_group=None):
    path = tmp_path / f"{run_id}-{test_set}.json"
    summary = {
        "run_id": run_id,
        "test_set": test_set,
        "n": 100,
        "grid": grid,
        "metrics": {"acc": acc},
        "by_group": by_group or {},
    }
    path.write_text(json.dumps(summary))
    return path


def seeded_evals(tmp_path):
    """positions x seed runs, two test sets; accuracies chosen so median != mean."""
    accs = {
        ("learned", 0): (0.9, 0.10),
        ("learned", 1): (0.8, 0.00),
        ("learned", 2): (1.0, 0.05),
        ("rpe_k", 0): (0.9, 0.90),
        ("rpe_k", 1): (0.7, 0.20),
        ("rpe_k", 2): (0.95, 0.85),
    }
    paths = []
    for (pos, seed), (short, long) in accs.items():
        grid = {"model.positions": pos, "training.seed": seed}
        run = f"{pos}-{seed}"
        paths.append(write_eval(tmp_path, run, grid, "d5", short))
        paths.append(write_eval(tmp_path, run, grid, "d10", long))
    return paths


def test_seed_aggregation_median_and_range(tmp_path):
    frame = collect(seeded_evals(tmp_path))
    mean = pivot(frame, "model.positions", "test_set", "acc")
    assert mean.loc["rpe_k", "d10"] == pytest.approx((0.9 + 0.2 + 0.85) / 3)
    seeds = spread(frame, "model.positions", "test_set", "acc")
    assert seeds.n == 3
    assert seeds.median.loc["rpe_k", "d10"] == pytest.approx(0.85)
    assert seeds.low.loc["rpe_k", "d10"] == pytest.approx(0.2)
    assert seeds.high.loc["learned", "d5"] == pytest.approx(1.0)
    report = {"rows": "model.positions", "cols": "test_set", "metric": "acc", "kind": "lines"}
    report["seeds"] = "training.seed"
    paths = study_report("arith", report, seeded_evals(tmp_path), tmp_path / "out")
    md = paths["md"].read_text()
    assert "median [min, max] over 3 seeds" in md
    assert "85.0 [20.0, 90.0]" in md
    table = pd.read_csv(paths["csv"], index_col=0)
    assert table.loc["rpe_k", "d10"] == pytest.approx(0.85)
    assert paths["png"].stat().st_size > 1000


def test_breakdown_axis_other_than_size(tmp_path):
    by_group = {
        "network": {"cholesterol": {"n": 10, "acc": 1.0}, "tca": {"n": 10, "acc": 0.5}},
        "size": {"6": {"n": 10, "acc": 1.0}, "9": {"n": 10, "acc": 0.5}},
    }
    paths = [
        write_eval(tmp_path, "a", {"params.family": "dag"}, "known", 0.75, by_group),
        write_eval(tmp_path, "b", {"params.family": "erdos_renyi"}, "known", 0.5, {}),
    ]
    frame = collect(paths)
    table = pivot(frame, "network", "params.family", "acc")
    assert table.loc["tca", "dag"] == pytest.approx(0.5)
    assert table.loc["cholesterol", "dag"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="two breakdowns"):
        pivot(frame, "network", "size", "acc")


def test_smallest_reaching_threshold(tmp_path):
    table = pd.DataFrame(
        {"0": [0.1, 0.0], "10": [0.95, 0.3], "50": [0.99, 0.92], "100": [1.0, 0.97]},
        index=["1000000", "5000000"],
    )
    table.columns.name = "prime_size"
    got = smallest_reaching(table, 0.9)
    assert got["1000000"] == 10 and got["5000000"] == 50
    got = smallest_reaching(table, 0.99)
    assert got["1000000"] == 50 and np.isnan(got["5000000"])
    paths = []
    for size, row in table.iterrows():
        for k, acc in row.items():
            grid = {"data.train_size": int(size), "data.prime_size": int(k)}
            paths.append(write_eval(tmp_path, f"{size}-{k}", grid, "n35", acc))
            paths.append(write_eval(tmp_path, f"{size}-{k}", grid, "n5", 1.0))
    report = {
        "kind": "threshold",
        "rows": "data.train_size",
        "cols": "data.prime_size",
        "metric": "acc",
        "test_set": "n35",
        "threshold": 0.9,
    }
    out = study_report("priming", report, paths, tmp_path / "out")
    csv = pd.read_csv(out["csv"], index_col=0)
    assert list(csv.iloc[:, 0]) == [10, 50]
    assert "reaching acc >= 90%" in out["md"].read_text()


CONFIG = {
    "studies": {
        "s": {
            "task": "linalg",
            "params": {"op": "transpose", "dim": 2},
            "grid": {"params.encoding": ["P10", "P1000"], "training.seed": [0, 1]},
            "report": {"rows": "params.encoding", "seeds": "training.seed"},
        }
    }
}


def test_config_report_checks():
    plan = validate_config(copy.deepcopy(CONFIG))
    assert plan.studies["s"].report["metric"] == "acc_tol5"  # the task's main metric
    bad = copy.deepcopy(CONFIG)
    bad["studies"]["s"]["report"]["seeds"] = "training.lr"
    with pytest.raises(ConfigError, match="report.seeds: 'training.lr' is not a grid key"):
        validate_config(bad)
    bad = copy.deepcopy(CONFIG)
    bad["studies"]["s"]["report"]["cols"] = "network"  # not a breakdown of linalg
    with pytest.raises(ConfigError, match="report.cols: unknown value 'network'"):
        validate_config(bad)
    bad = copy.deepcopy(CONFIG)
    bad["studies"]["s"]["report"].update(kind="threshold", test_set="nope")
    with pytest.raises(ConfigError, match="report.test_set: unknown test set 'nope'"):
        validate_config(bad)


def test_tables_format_metrics_as_their_task_declares(tmp_path):
    """An error (declared format "number") is not shown in percent; an accuracy is."""
    paths = []
    for run, (acc, err) in {"a": (0.5, 0.0123), "b": (0.25, 0.5)}.items():
        path = tmp_path / f"{run}.json"
        summary = {
            "run_id": run,
            "test_set": "t",
            "n": 10,
            "grid": {"model.positions": run},
            "metrics": {"acc_tol5": acc, "median_rel_error": err},
            "by_group": {},
            "metric_info": {
                "acc_tol5": {"format": "percent", "aggregate": "mean"},
                "median_rel_error": {"format": "number", "aggregate": "median"},
            },
        }
        path.write_text(json.dumps(summary))
        paths.append(path)
    report = {"rows": "model.positions", "cols": "test_set", "metric": "median_rel_error"}
    md = study_report("s", report, paths, tmp_path / "err")["md"].read_text()
    assert "0.0123" in md and "median_rel_error (%)" not in md
    report["metric"] = "acc_tol5"
    md = study_report("s", report, paths, tmp_path / "acc")["md"].read_text()
    assert "| 50.0 |" in md and "acc_tol5 (%)" in md


def test_config_report_labels():
    good = copy.deepcopy(CONFIG)
    good["studies"]["s"]["report"]["labels"] = {"rows": "encoding", "cols": "test set"}
    plan = validate_config(good)
    assert plan.studies["s"].report["labels"]["rows"] == "encoding"
    bad = copy.deepcopy(CONFIG)
    bad["studies"]["s"]["report"]["labels"] = {"x": "digits"}
    with pytest.raises(ConfigError, match="labels"):
        validate_config(bad)


def test_seconds_per_problem_is_a_reportable_overall_number(tmp_path):
    """The evaluation's timing (eval.summary) joins the overall row; configs may report it."""
    paths = []
    for test_set, seconds in (("id", 0.02), ("bench", 0.5)):
        path = write_eval(tmp_path, "a", {"model.positions": "a"}, test_set, 1.0)
        summary = json.loads(path.read_text())
        summary["seconds_per_problem"] = seconds
        path.write_text(json.dumps(summary))
        paths.append(path)
    table = pivot(collect(paths), "model.positions", "test_set", "seconds_per_problem")
    assert table.loc["a", "bench"] == pytest.approx(0.5)
    config = copy.deepcopy(CONFIG)
    config["studies"]["s"]["report"]["metric"] = "seconds_per_problem"
    validate_config(config)
    for metric in ("seconds_per_problem@2", "seconds_per_problem_beam2"):
        config["studies"]["s"]["report"]["metric"] = metric
        with pytest.raises(ConfigError, match="unknown metric"):
            validate_config(config)
