"""Training milestones: first step reaching 90% / 99% validation accuracy, final loss."""

from __future__ import annotations

import json

from synthmath.train.milestones import NAMES, first_step_reaching, milestones, training_metrics

HISTORY = [
    {"epoch": 0, "step": 100, "train_loss": 2.0, "valid_acc": 0.5},
    {"epoch": 1, "step": 200, "train_loss": 1.0, "valid_acc": 0.9},  # exactly the level
    {"epoch": 2, "step": 300, "train_loss": 0.5, "valid_acc": 0.95},
    {"epoch": 3, "step": 400, "train_loss": 0.25, "valid_acc": 0.991},
]


def test_first_logged_step_reaching_each_level():
    assert milestones(HISTORY, "valid_acc") == {
        "steps_to_acc90": 200,
        "steps_to_acc99": 400,
        "final_loss": 0.25,
    }
    assert first_step_reaching(HISTORY, "valid_acc", 0.999) is None
    assert first_step_reaching(HISTORY, "valid_missing", 0.1) is None


def test_not_reached_and_diverged_are_null_in_strict_json():
    history = [{"epoch": 0, "step": 10, "train_loss": float("nan"), "valid_acc": float("nan")}]
    out = milestones(history, "valid_acc")
    assert out == {"steps_to_acc90": None, "steps_to_acc99": None, "final_loss": None}
    json.dumps(out, allow_nan=False)
    assert milestones([], None) == {"final_loss": None}


def test_training_metrics_of_a_summary_with_and_without_milestones():
    summary = {"main_metric": "valid_acc", "history": HISTORY, **milestones(HISTORY, "valid_acc")}
    out = training_metrics(summary)
    assert {k: out[k] for k in NAMES} == {k: summary[k] for k in NAMES}
    assert out["curve"] == {
        "metric": "valid_acc",
        "step": [100, 200, 300, 400],
        "value": [0.5, 0.9, 0.95, 0.991],
    }
    old = {"main_metric": "valid_acc", "history": HISTORY}  # written before milestones
    assert training_metrics(old)["steps_to_acc90"] == 200
