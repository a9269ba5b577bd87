"""The differential generation benchmark runs its rows and prints the table."""

from __future__ import annotations

import sys

from testsupport import load_benchmark


def test_rows_run_and_the_table_prints(monkeypatch, capsys):
    with load_benchmark("bench_differential_generation") as bench:
        argv = ["bench", "--seconds", "0.2", "--batch", "2", "--only", "feedback"]
        monkeypatch.setattr(sys, "argv", argv)
        bench.main()
        out = capsys.readouterr().out
        table = [line for line in out.splitlines() if line.startswith("|")]
        assert len(table) == 2 + 1  # header, rule, the row
        feedback = next(line for line in table if "feedback" in line).split("|")
        assert float(feedback[2]) > 0 and int(feedback[3]) >= 2 and feedback[4].strip() == "0.03"
