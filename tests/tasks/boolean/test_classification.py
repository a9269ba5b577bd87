"""The classification protocol on scikit-learn's breast cancer data: split, binarisation,
baselines on the same split, and a formula's scores."""

from __future__ import annotations

import numpy as np
import pytest

from synthmath.core.errors import ConfigError
from synthmath.tasks.boolean import classification as C


def test_breast_cancer_split_and_baselines():
    split = C.load_split("breast_cancer", seed=0)
    assert split.x_train.shape == (455, 30) and split.x_test.shape == (114, 30)  # 80% of 569
    assert set(np.unique(split.x_train)) == {0, 1} and len(split.features) == 30
    assert abs(split.x_train.mean() - 0.5) < 0.01  # median thresholds from the training rows
    again = C.load_split("breast_cancer", seed=0)
    assert np.array_equal(split.x_test, again.x_test)
    results = C.run_baselines(split)
    assert set(results) == set(C.BASELINES)
    for name, s in results.items():
        assert 0.8 < s["f1"] <= 1.0 and 0.8 < s["acc"] <= 1.0, name
    # a one-feature formula scores as its own predictions do
    scores = C.evaluate_formula(("var", 0), split)
    manual = C.scores(split.y_test, split.x_test[:, 0])
    assert scores["test_f1"] == manual["f1"] and scores["test_acc"] == manual["acc"]


def test_a_model_is_scored_on_its_formula_for_the_training_rows(monkeypatch):
    from synthmath.tasks.registry import make_task

    split = C.load_split("wine", seed=0)
    task = make_task("boolean", {"regime": "noisy"})  # 130 variables, 601 rows
    beam = [["x_0"], ["and", "x_0", "x_2"], ["@@"]]
    monkeypatch.setattr("synthmath.eval.predict.predict_nbest", lambda *a, **k: [beam])
    result = C.run_formula_model(None, task, split, beam_size=3)
    errors = {
        "x_0": (split.x_train[:, 0] != split.y_train).mean(),
        "x_0 & x_2": ((split.x_train[:, 0] & split.x_train[:, 2]) != split.y_train).mean(),
    }
    pick = min(errors, key=lambda f: (errors[f], f.count("&")))
    assert result["formula"] == pick
    assert abs(result["train_acc"] - (1 - errors[pick])) < 1e-12


def test_binarise_keeps_binary_features_and_caps_the_count():
    x = np.array([[0.0, 1.0, 5.0], [1.0, 1.0, 6.0], [0.0, 1.0, 7.0], [1.0, 1.0, 8.0]])
    train, test, names = C.binarise(x, x[:2], ["a", "b", "c"], bits=1)
    assert names == ["a > 0", "c > 6.5"]  # b is constant
    assert train.tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]] and test.shape == (2, 2)
    with pytest.raises(ConfigError, match="at most 100"):
        C.binarise(np.random.default_rng(0).random((50, 60)), np.zeros((1, 60)), ["f"] * 60, 2)
    with pytest.raises(ConfigError, match="allowed: breast_cancer"):
        C.load_split("mushroom")
