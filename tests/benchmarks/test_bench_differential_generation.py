"""The differential generation benchmark runs its rows and prints the table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PATH = Path(__file__).parents[2] / "benchmarks" / "bench_differential_generation.py"


def test_rows_run_and_the_table_prints(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("bench_differential_generation", PATH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["bench", "--seconds", "0.2", "--batch", "2", "--only", "feedback"]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 1  # header, rule, the row
    feedback = next(line for line in table if "feedback" in line).split("|")
    assert float(feedback[2]) > 0 and int(feedback[3]) >= 2 and feedback[4].strip() == "0.03"
