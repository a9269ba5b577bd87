"""Baselines as methods of the regression tasks: their answers are the task's tokens and the
task scores them (specs/regression.md, Benchmarks and Scoring)."""

import numpy as np
import pytest

from synthmath.core.errors import ConfigError
from synthmath.tasks.registry import make_task
from synthmath.tasks.regression import baseline_methods as bm

#: the Strogatz problems are (system, start); Lotka-Volterra is system 4 (problems 12-15)
LV = 13


def lotka_volterra(rescale: bool = True, **params):
    task = make_task("odeformer", {"benchmark": "strogatz", "rescale": rescale, **params})
    raw = task.to_raw([task.benchmark_example(LV)], seed=0)
    assert "Lotka" in str(raw["system"][0])
    return task, raw


def test_sindy_answers_a_clean_lotka_volterra_trajectory():
    task, raw = lotka_volterra()
    answers = bm.answer("sindy", task, raw)
    (tokens,) = answers.hypotheses[0]
    vocab = set(task.tgt_vocab().tokens)
    assert tokens and set(tokens) <= vocab  # the model's output format, P10000 constants
    assert tokens.count("|") == 1  # two components
    scores = task.score(raw, answers.hypotheses)
    assert scores["r2"][0, 0] > 0.99 and scores["acc_r2_0.9"][0, 0]
    assert scores["parse_error"][0, 0] == 0.0
    assert answers.seconds[0] > 0 and answers.errors == [""]
    effect = bm.rounding_effect(task, raw, answers)
    assert effect["fits"] == 1 and effect["mean_abs_r2_change"] < 1e-2


def test_a_failed_fit_is_a_wrong_answer_not_an_error():
    task, raw = lotka_volterra(rescale=False)
    raw["obs_times"][0, :] = 1.0  # times no longer increase: the finite differences fail
    answers = bm.answer("sindy", task, raw)
    assert answers.hypotheses == [[[]]] and "ValueError" in answers.errors[0]
    scores = task.score(raw, answers.hypotheses)
    assert scores["parse_error"][0, 0] == 1.0 and not scores["acc_r2_0.9"][0, 0]


def test_pysindy_answers_in_the_same_format():
    pytest.importorskip("pysindy")
    task, raw = lotka_volterra()
    answers = bm.answer("pysindy", task, raw)
    assert task.score(raw, answers.hypotheses)["r2"][0, 0] > 0.99


def test_operon_answers_a_symreg_benchmark_problem():
    pytest.importorskip("pyoperon")
    task = make_task("symreg", {"benchmark": "strogatz", "max_points": 50})
    raw = task.sample(1, np.random.default_rng(0))
    answers = bm.answer("operon", task, raw, max_time=1)
    (tokens,) = answers.hypotheses[0]
    assert tokens and task.codec.parse(tokens)
    scores = task.score(raw, answers.hypotheses)
    assert scores["parse_error"][0, 0] == 0.0 and np.isfinite(scores["r2"][0, 0])


@pytest.mark.parametrize(
    ("method", "task", "message"),
    [
        ("sindy", "symreg", "a baseline of task 'odeformer', not of 'symreg'; allowed: operon"),
        ("operon", "odeformer", "allowed: sindy, pysindy"),
        ("pysr", "odeformer", "unknown baseline 'pysr'"),
    ],
)
def test_a_method_of_another_task_is_a_config_error(method, task, message):
    with pytest.raises(ConfigError, match=message):
        bm.check_method(method, task)
