"""Evaluation summaries are strict JSON: a metric with no finite value is null."""

from __future__ import annotations

import json

import numpy as np

from synthmath.core.files import write_json
from synthmath.core.metrics import Metric
from synthmath.eval.summary import summarize


class _Task:
    """Two examples whose errors are infinite (e.g. answers of the wrong length)."""

    name = "fake"

    def metrics(self):
        return [Metric.acc("acc", "right answer"), Metric.error("rel_error", "relative error")]

    def score(self, raw, nbest):  # one hypothesis per example: arrays (n, 1)
        return {"acc": np.array([[False], [True]]), "rel_error": np.array([[np.inf], [np.nan]])}

    def groups(self, raw):
        return {"size": np.array(["3", "3"])}

    def to_json(self, raw, i):
        return {"problem": int(raw["x"][i])}


def test_median_without_finite_values_is_null(tmp_path):
    summary = summarize(_Task(), {"x": np.arange(2)}, [[["a"]], [["b"]]])
    assert summary["metrics"] == {"acc": 0.5, "median_rel_error": None}
    assert summary["by_group"]["size"]["3"]["median_rel_error"] is None
    assert [ex["rel_error"] for ex in summary["examples"]] == [None, None]
    write_json(tmp_path / "e.json", summary)  # strict: would raise on inf or nan
    text = (tmp_path / "e.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text)["metrics"]["median_rel_error"] is None


def test_evaluate_records_the_seconds_per_problem(monkeypatch, tmp_path):
    """Decoding plus scoring time over the examples, declared as a number (lower is better)."""
    import time

    from synthmath.eval import summary as summary_module

    def slow_decode(model, task, encoded, **kwargs):
        time.sleep(0.2)
        return [[["a"]], [["b"]]]

    monkeypatch.setattr(summary_module, "EncodedSet", lambda task, raw: None)
    monkeypatch.setattr(summary_module, "predict_nbest", slow_decode)
    summary = summary_module.evaluate(None, _Task(), {"x": np.arange(2)})
    assert 0.1 <= summary["seconds_per_problem"] < 5
    assert summary["metric_info"]["seconds_per_problem"]["format"] == "number"
    assert "seconds_per_problem" not in summary["metrics"]  # a timing, not a task metric
    write_json(tmp_path / "e.json", summary)
