"""The regression generation benchmark runs and prints rates and rejection shares per task."""

from __future__ import annotations

import sys

import pytest
from testsupport import load_benchmark


def test_the_tables_print(monkeypatch, capsys):
    with load_benchmark("bench_regression_generation") as bench:
        argv = ["bench", "--tasks", "odeformer", "symreg", "--seconds", "0.1", "--batch", "1"]
        monkeypatch.setattr(sys, "argv", argv)
        bench.main()
        out = capsys.readouterr().out
        table = [line for line in out.splitlines() if line.startswith("|")]
        rows = {cells[1].strip(): cells for cells in (line.split("|") for line in table[2:4])}
        assert set(rows) == {"odeformer", "symreg"}
        for name, cells in rows.items():
            rate, ratio, accepted = (float(cells[i].replace(",", "")) for i in (4, 7, 8))
            assert int(cells[2]) >= 1 and rate > 0 and 0 < accepted <= 1
            assert ratio == pytest.approx(rate / bench.REFERENCE[name], rel=0.05, abs=0.01)
        reasons = {(line.split("|")[1].strip(), line.split("|")[2].strip()) for line in table[6:]}
        assert ("odeformer", "diverged") in reasons
