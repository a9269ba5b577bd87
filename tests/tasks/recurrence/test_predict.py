"""``synthmath predict RUN_DIR 1,1,2,3,5,8,13``: a model's recurrence for a user's terms."""

from __future__ import annotations

import pytest
import torch

import synthmath.eval.predict as predict_module
from synthmath.core.errors import ConfigError
from synthmath.tasks.recurrence.commands import read_terms
from synthmath.tasks.recurrence.task import RecurrenceTask


def tiny_model(task):
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer

    torch.manual_seed(0)
    cfg = ModelConfig(len(task.src_vocab()), len(task.tgt_vocab()), d_model=16, n_heads=2)
    return Transformer(cfg).eval()


def test_a_model_answers_terms_given_directly_or_in_a_file(tmp_path):
    task = RecurrenceTask(mode="int")
    text = task.predict_file(tiny_model(task), "1,1,2,3,5,8,13", beam_size=2)
    assert text.startswith("terms: 1, 1, 2, 3, 5, 8, 13\n")
    assert "beam 1:" in text and "beam 2:" in text  # an untrained model: anything parses or not
    path = tmp_path / "terms.txt"
    path.write_text("1 1 2 3 5\n8 13\n")
    assert task.predict_file(tiny_model(task), str(path)).startswith("terms: 1, 1, 2, 3, 5, 8")


def test_the_hypotheses_are_shown_with_their_next_terms(monkeypatch):
    hyps = [["add", "u_1", "u_2"], ["mul", "INT+", "2", "u_1"], ["add", "u_1"]]
    monkeypatch.setattr(predict_module, "predict_nbest", lambda *a, **k: [hyps])
    task = RecurrenceTask(mode="int")
    text = task.predict_file(None, "1,1,2,3,5,8,13", beam_size=3)
    assert "u_n = (u_1 + u_2)" in text
    assert "reproduces the given terms from term 3: yes" in text
    assert "next terms: 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597" in text
    assert "reproduces the given terms from term 2: no" in text  # 2 u_1
    assert "not a recurrence" in text
    numeric = RecurrenceTask(mode="int", output="numeric", int_base=10)
    monkeypatch.setattr(predict_module, "predict_nbest", lambda *a, **k: [[["INT+", "2", "1"]]])
    assert "does not decode (expected 10 numbers, got 1)" in numeric.predict_file(None, "1,2,3,4,5")


def test_bad_terms_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="term 'x' is not an integer"):
        read_terms("1,2,x,4,5", "int", 5, 30)
    with pytest.raises(ConfigError, match="term '1.5' is not an integer"):
        read_terms("1,2,1.5,4,5", "int", 5, 30)
    with pytest.raises(ConfigError, match="3 terms; the model needs at least 5"):
        read_terms("1,2,3", "int", 5, 30)
    with pytest.raises(ConfigError, match="not finite"):
        read_terms("1,2,nan,4,5", "float", 5, 30)
    with pytest.raises(ConfigError, match="at most 30"):
        read_terms(",".join(["1"] * 31), "int", 5, 30)
    assert read_terms("0.5, -2e3 1 2 3", "float", 5, 30) == [0.5, -2000.0, 1.0, 2.0, 3.0]


def test_the_cli_routes_terms_to_the_task(monkeypatch, capsys):
    import synthmath.cli as cli

    task = RecurrenceTask(mode="int")
    monkeypatch.setattr(cli, "_load_model", lambda where: (None, task, None))
    monkeypatch.setattr(predict_module, "predict_nbest", lambda *a, **k: [[["mul", "n", "u_1"]]])
    assert cli.main(["predict", "RUN", "1,1,2,6,24,120"]) == 0
    assert "next terms: 720, 5040" in capsys.readouterr().out
    assert cli.main(["predict", "RUN", "1,1,two"]) == 2
    assert "error: 1,1,two: term 'two' is not an integer" in capsys.readouterr().err
