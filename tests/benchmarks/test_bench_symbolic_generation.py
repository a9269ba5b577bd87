"""The symbolic generation benchmark: our worker counts consistently, the table builds."""

from __future__ import annotations

import sys

import pytest
from testsupport import load_benchmark


@pytest.fixture(scope="module")
def bench():
    with load_benchmark("bench_symbolic_generation") as module:
        yield module


def test_run_ours_counts_what_it_generated(bench):
    r = bench.run_ours("prim_bwd", 1.0, seed=0)
    assert r["seconds"] >= 1.0 and r["accepted"] >= 1
    assert r["accepted"] == len(r["src"]) == len(r["tgt"])
    assert r["attempts"] == r["accepted"] + sum(r["rejected"].values())
    assert all(n >= 3 for n in r["src"])  # sub Y' <f>


def test_main_prints_the_table_and_skips_a_missing_peer(bench, monkeypatch, capsys, tmp_path):
    canned = {"seconds": 2.0, "attempts": 5, "accepted": 3, "timeouts": 1,
              "timeout_seconds": 0.5, "rejected": {"timeout": 1, "collapsed": 1},
              "src": [10, 20, 30], "tgt": [4, 4, 4]}  # fmt: skip
    calls = []
    monkeypatch.setattr(bench, "measure", lambda side, p, args: calls.append(side) or canned)
    argv = ["bench", "--seconds", "2", "--problems", "prim_bwd", "--peer", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    out = capsys.readouterr().out
    assert calls == ["ours"]  # no released code at tmp_path
    assert "released code: not run" in out
    row = next(line for line in out.splitlines() if line.startswith("| prim_bwd"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:5] == ["1.5", "-", "-", "5/3"]
    assert cells[6] == "1 (25%)" and cells[8] == "20.0+-8.2" and cells[10] == "70.2+-47.8"
    assert "- prim_bwd, ours: timeout 1, collapsed 1" in out
