"""Declared metrics: aggregation over examples and over the top k hypotheses."""

import numpy as np
import pytest

from synthmath.core.metrics import Metric, at_k


def test_best_of_top_k_follows_the_declared_direction():
    acc = Metric.acc("acc", "right")
    verdicts = np.array([[False, True, False], [False, False, False], [True, False, False]])
    assert acc.best_of(verdicts, 1).tolist() == [False, False, True]
    assert acc.best_of(verdicts, 2).tolist() == [True, False, True]
    err = Metric.error("rel_error", "error")
    errors = np.array([[0.5, 0.1, np.inf], [np.inf, np.inf, 0.2]])
    assert err.best_of(errors, 1).tolist() == [0.5, np.inf]
    assert err.best_of(errors, 3).tolist() == [0.1, 0.2]
    frac = Metric.fraction("digit_acc", "digits right")
    assert frac.best_of(np.array([[0.2, 0.9]]), 2).tolist() == [0.9]


def test_summaries_keep_their_names_and_rules():
    err = Metric.error("rel_error", "error")
    assert err.summary_name == "median_rel_error" and at_k(err.summary_name, 5).endswith("@5")
    assert err.summarise(np.array([np.inf, 0.3, 0.1, 0.2])) == pytest.approx(0.2)
    assert err.summarise(np.array([np.inf])) is None  # strict JSON: null, not Infinity
    acc = Metric.acc("acc", "right")
    assert acc.summary_name == "acc" and acc.summarise(np.array([True, False])) == 0.5
    assert acc.info() == {
        "aggregate": "mean",
        "higher_is_better": True,
        "format": "percent",
        "accuracy": True,
    }
    with pytest.raises(ValueError, match="aggregate"):
        Metric("x", "bad", aggregate="mode")
