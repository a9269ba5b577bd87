"""Reports with baselines: kind robustness (metric vs a test-set parameter, per method) and
the baseline tables of the other kinds, from fabricated evaluation JSONs."""

import json

import pandas as pd
import pytest

from synthmath.report.robustness import collect_params, plot_robustness
from synthmath.report.study import study_report

INFO = {
    "acc_r2_0.9": {"aggregate": "mean", "higher_is_better": True, "format": "percent",
                   "accuracy": True},
    "r2_zero": {"aggregate": "mean", "higher_is_better": True, "format": "number",
                "accuracy": False},
}  # fmt: skip


def value(method: str, bench: str, sub: float, noise: float) -> float:
    """A distinct, known accuracy per cell."""
    return round(0.9 - noise * 5 - sub / 4 - (0.3 if method != "model" else 0.0)
                 - (0.05 if bench == "strogatz" else 0.0), 6)  # fmt: skip


def write_evals(tmp_path) -> list:
    paths = []
    for method in ("model", "baseline:sindy"):
        for bench in ("odebench", "strogatz"):
            for sub in (0.0, 0.5):
                for noise in (0.0, 0.01, 0.05):
                    test = f"{bench}_n{round(noise * 1000)}_s{round(sub * 100)}"
                    acc = value(method, bench, sub, noise)
                    summary = {
                        "run_id": "run-1" if method == "model" else method,
                        "test_set": test, "n": 10, "grid": {},
                        "metrics": {"acc_r2_0.9": acc, "r2_zero": acc / 2},
                        "by_group": {"dim": {"1": {"n": 5, "acc_r2_0.9": acc},
                                             "2": {"n": 5, "acc_r2_0.9": acc}}},
                        "metric_info": INFO,
                        # the test set's parameters (here deliberately not its name's order)
                        "test_params": {"benchmark": bench, "subsample": sub, "noise": noise,
                                        "random_levels": False},
                        "seconds_per_problem": 0.01 if method == "model" else 0.5,
                    }  # fmt: skip
                    if method != "model":
                        summary["method"] = method
                    path = tmp_path / f"{method.replace(':', '-')}-{test}.json"
                    path.write_text(json.dumps(summary))
                    paths.append(path)
    noisy = tmp_path / "id_noisy.json"  # levels drawn per example: left out
    noisy.write_text(json.dumps({
        "run_id": "run-1", "test_set": "id_noisy", "n": 10, "grid": {}, "metrics":
        {"acc_r2_0.9": 0.1, "r2_zero": 0.1}, "metric_info": INFO,
        "test_params": {"benchmark": "none", "subsample": 0.5, "noise": 0.1, "random_levels": True},
    }))  # fmt: skip
    return [*paths, noisy]


def test_the_robustness_figure_draws_one_line_per_method_and_rate(tmp_path):
    paths = write_evals(tmp_path)
    frame = collect_params(paths, ["subsample", "noise", "benchmark"], ["acc_r2_0.9", "r2_zero"])
    assert len(frame) == 24  # id_noisy left out
    drawn = plot_robustness(
        frame, ["acc_r2_0.9", "r2_zero"], "subsample", "noise", "benchmark", "t",
        tmp_path / "f.png", {"acc_r2_0.9": True, "r2_zero": False},
    )  # fmt: skip
    assert set(drawn) == {
        (m, b) for m in ("acc_r2_0.9", "r2_zero") for b in ("odebench", "strogatz")
    }
    lines = drawn[("acc_r2_0.9", "strogatz")]
    assert {(line["method"], line["series"]) for line in lines} == {
        (m, s) for m in ("model", "baseline:sindy") for s in (0.0, 0.5)
    }
    for line in lines:
        assert line["x"] == [0.0, 0.01, 0.05]
        expected = [value(line["method"], "strogatz", line["series"], x) for x in line["x"]]
        assert line["y"] == pytest.approx(expected)
    assert (tmp_path / "f.png").stat().st_size > 0


def test_the_robustness_report_tables_and_timing(tmp_path):
    report = {"kind": "robustness", "rows": "subsample", "cols": "noise", "panels": "benchmark",
              "metric": "acc_r2_0.9", "more_metrics": ["r2_zero"]}  # fmt: skip
    paths = study_report("ode", report, write_evals(tmp_path), tmp_path / "out")
    table = pd.read_csv(paths["csv"], index_col=0)
    assert table.loc["baseline:sindy / odebench / 0.5", "0.05"] == pytest.approx(
        value("baseline:sindy", "odebench", 0.5, 0.05)
    )
    assert table.index[0].startswith("model / odebench")  # the model first
    md = paths["md"].read_text()
    assert "r2_zero" in md and "Inference time per problem" in md
    assert "| baseline:sindy | 0.5 | 0.5 |" in md and "| model | 0.01 | 0.01 |" in md


def test_other_kinds_show_the_model_and_list_the_baselines(tmp_path):
    evals = write_evals(tmp_path)
    report = {"kind": "bars", "rows": "dim", "cols": "test_set", "metric": "acc_r2_0.9"}
    paths = study_report("ode", report, evals, tmp_path / "out")
    table = pd.read_csv(paths["csv"], index_col=0)
    assert table.loc[1, "strogatz_n10_s50"] == pytest.approx(value("model", "strogatz", 0.5, 0.01))
    md = paths["md"].read_text()
    assert "**baseline:sindy**" in md and "Inference time per problem (s)" in md
    # method as an axis: both in one table
    report = {"kind": "heatmap", "rows": "method", "cols": "test_set", "metric": "acc_r2_0.9"}
    table = pd.read_csv(study_report("ode", report, evals, tmp_path / "m")["csv"], index_col=0)
    assert table.loc["baseline:sindy", "odebench_n0_s0"] == pytest.approx(
        value("baseline:sindy", "odebench", 0.0, 0.0)
    )


def test_the_summary_shows_further_reports_after_the_main_table(tmp_path):
    from synthmath.report.study import write_summary

    study = tmp_path / "ode"
    study.mkdir()
    (study / "table.md").write_text("# ode\n\n<!-- table -->\nMAIN TABLE\n")
    (study / "table-robust.md").write_text("# ode\n\n<!-- table -->\nROBUST TABLE\n")
    info = {"ode": {"task": "odeformer", "paper": "P", "more": [("robust", "faster")]}}
    write_summary(info, [study / "table.md"], tmp_path / "README.md")
    text = (tmp_path / "README.md").read_text()
    assert text.index("MAIN TABLE") < text.index("### ode: robust") < text.index("ROBUST TABLE")
    assert "**Paper:** faster" in text and "(ode/figure-robust.png)" in text
