"""Fitting a user's 0/1 table: CSV errors, the exact baseline, a model's ranked beam, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthmath.cli import main
from synthmath.core.errors import ConfigError, DataError
from synthmath.tasks.boolean import fit
from synthmath.tasks.boolean import formulas as F
from synthmath.tasks.registry import make_task


def write(tmp_path, text: str):
    path = tmp_path / "table.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no rows"),
        ("a,b,y\n", "a header but no rows"),
        ("0,1,1\n0,2,1\n", "line 2, column 2: expected 0 or 1, got '2'"),
        ("0,1,1\n0,0.5,1\n", "line 2, column 2: expected 0 or 1, got '0.5'"),
        ("a,b,y\n0,1,1\n0,1\n", "line 3 has 2 columns, expected 3"),
        ("1\n0\n", "at least 2 columns"),
    ],
)
def test_bad_tables_are_one_line_errors_naming_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        fit.read_table(write(tmp_path, text))


def test_exact_fit_reproduces_the_rows_and_names_the_columns(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (40, 6)).astype(np.uint8)
    y = (x[:, 0] & ~x[:, 3] | x[:, 5]) & 1
    lines = ["a,b,c,d,e,f,out"] + [",".join(map(str, [*r, v])) for r, v in zip(x, y)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    table = fit.read_table(path)
    assert table.names[-1] == "out" and table.x.shape == (40, 6)
    result = fit.fit_exact(table)
    assert result.error == 0.0
    assert main(["fit", "boolean", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fit_error"] == 0 and out["named"].startswith("out = ")
    tree = F.parse_prefix(out["tokens"])
    got = F.unpack(F.evaluate(tree, F.pack_rows(x), F.row_mask(40)), 40)
    assert np.array_equal(got, y)
    # contradictory rows: the majority output, ties 1
    table = fit.Table(
        np.array([[0], [0], [0], [1]], np.uint8), np.array([1, 0, 0, 1], np.uint8), None
    )
    assert F.to_prefix(fit.fit_exact(table).tree) == ["x_0"]
    with pytest.raises(ConfigError, match="at most 10"):
        fit.fit_exact(fit.Table(np.zeros((2, 11), np.uint8), np.array([0, 1], np.uint8), None))


def test_cli_fit_errors(tmp_path, capsys):
    path = write(tmp_path, "0,1,1\n0,7,1\n")
    assert main(["fit", "boolean", str(path)]) == 2
    assert "line 2, column 2: expected 0 or 1, got '7'" in capsys.readouterr().err
    assert main(["fit", "linalg", str(path)]) == 2
    assert "fit: task 'linalg' cannot" in capsys.readouterr().err


def _model(task):
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer

    torch.manual_seed(0)
    cfg = ModelConfig(
        len(task.src_vocab()),
        len(task.tgt_vocab()),
        d_model=16,
        n_heads=2,
        n_enc_layers=1,
        n_dec_layers=1,
        positions="none",
        input_embedder=task.input_kind,
        point_tokens=task.tokens_per_point(),
    )
    return Transformer(cfg).eval()


def test_model_fit_ranks_the_beam_and_checks_the_table_size(monkeypatch):
    task = make_task("boolean", {"max_active": 3, "max_output_len": 9})
    x = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], np.uint8)
    table = fit.Table(x, np.array([0, 1, 1, 1], np.uint8), None)
    torch.set_num_threads(1)
    try:  # a real (untrained) model runs through: a formula, or no well-formed hypothesis
        fit.fit_model(_model(task), task, table, beam_size=2)
    except DataError as err:
        assert "hypotheses is a formula" in str(err)
    beam = [["and", "x_0"], ["x_0"], "or x_0 and x_1 x_1".split(), ["or", "x_1", "x_0"]]
    monkeypatch.setattr("synthmath.eval.predict.predict_nbest", lambda *a, **k: [beam])
    result = fit.fit_model(None, task, table, beam_size=4)
    assert F.to_prefix(result.tree) == ["or", "x_1", "x_0"] and result.error == 0  # 1 gate, not 2
    assert result.hypotheses == 3  # the malformed one is dropped
    with pytest.raises(ConfigError, match="4 input columns; this model reads at most 3"):
        fit.fit_model(None, task, fit.Table(np.zeros((2, 4), np.uint8), table.y[:2], None))
    with pytest.raises(ConfigError, match="9 rows; this model reads at most 8"):
        fit.fit_model(
            None, task, fit.Table(np.zeros((9, 2), np.uint8), np.zeros(9, np.uint8), None)
        )
