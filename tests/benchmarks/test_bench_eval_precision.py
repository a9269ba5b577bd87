"""The eval-precision benchmark runs end to end on a tiny model (about a second): its figures
are shares and accuracies in [0, 1], and a saved model decodes the same when loaded."""

from __future__ import annotations

import json

import pytest
from testsupport import load_benchmark

TINY = ["--d-model", "16", "--heads", "2", "--n-test", "12", "--beam", "2"]
TINY += ["op=transpose", "dim=2", "encoding=P1000"]


@pytest.fixture
def bench():
    with load_benchmark("bench_eval_precision") as module:
        yield module


def test_tiny_run_prints_the_table_and_writes_json(bench, tmp_path, capsys):
    weights, out = tmp_path / "m.safetensors", tmp_path / "f.json"
    figures = bench.main([*TINY, "--steps", "3", "--save", str(weights), "--json", str(out)])
    assert json.loads(out.read_text()) == figures and figures["n_test"] == 12
    shares = ("same_greedy", "same_beam2_top", "same_beam2_lists", "same_verdict_greedy")
    for key in ("acc_fp32", "acc_bf16", *shares):
        assert 0 <= figures[key] <= 1, key
    assert "same answers" in capsys.readouterr().out
    again = bench.main([*TINY, "--load", str(weights), "--json", str(out)])
    assert json.loads(out.read_text())["final_loss"] is None  # strict JSON: not trained here
    for key in ("acc_fp32", "acc_bf16", "same_greedy", "same_beam2_top"):
        assert again[key] == figures[key], key  # same weights, same test set, same answers
