"""The ODEFormer generation benchmark runs and prints its rate and its rejection shares."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PATH = Path(__file__).parents[2] / "benchmarks" / "bench_odeformer_generation.py"


def test_the_tables_print(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("bench_odeformer_generation", PATH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(sys, "argv", ["bench", "--seconds", "0.1", "--batch", "1"])
    bench.main()
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("|")]
    rate = table[2].split("|")
    assert float(rate[1]) > 0 and 0 < float(rate[4]) <= 1
    reasons = [line.split("|")[1].strip() for line in table[5:]]
    assert "diverged" in reasons
