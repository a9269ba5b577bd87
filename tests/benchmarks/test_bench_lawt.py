"""The side-by-side benchmark against LAWT runs in its smoke mode (tiny shapes).

Our side alone runs in CI. LAWT's side needs a LAWT tree (facebookresearch/LAWT, not part of
synthmath): set ``SYNTHMATH_LAWT=/path/to/LAWT`` to run it; otherwise that test is skipped.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from testsupport import load_benchmark

LAWT = os.environ.get("SYNTHMATH_LAWT")
# answer + EOS steps of the smoke shapes: transpose 2x2 P1000 is 2 + 4 * 3 tokens, the
# eigenvalues of a 2x2 matrix in P1000 2 + 2 * 3
STEPS = {"transpose 2x2 P1000": 15, "eigenvalues 2x2 FP15->P1000": 9}


@pytest.fixture()
def bench(monkeypatch):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))  # restored after the test
    with load_benchmark("bench_lawt") as module:
        yield module


def _run(bench, tmp_path, *extra: str) -> tuple[dict, dict]:
    out = tmp_path / "out.json"
    bench.main(["--smoke", "--threads", "1", "--json", str(out), *extra])
    return json.loads(out.read_text()), bench


def test_our_side_alone(bench, tmp_path, capsys):
    doc, _ = _run(bench, tmp_path)
    printed = capsys.readouterr().out
    assert "LAWT: not run" in printed and "transpose 2x2 P1000 | greedy" in printed
    modes = [(r["model"], r["mode"]) for r in doc["decoding"]]
    assert modes == [(m, mode) for m in STEPS for mode in ("greedy", "beam 2")]
    for row in doc["decoding"]:
        assert row["steps"] == STEPS[row["model"]]
        assert set(row["sides"]) == {"ours fp32", "ours bf16"}
        assert all(side["median"] > 0 for side in row["sides"].values())
    assert [r["model"] for r in doc["training"]] == list(STEPS)
    for row in doc["training"]:
        assert set(row["sides"]) == {"ours fp32", "ours auto"}
        assert row["sides"]["ours fp32"]["median_flops_per_s"] > 0
    assert doc["matmul_peak_flops"]["fp32"] > 0 and doc["lawt"] is None


def test_cpu_watch_reports_a_share_of_the_machine(bench):
    watch = bench.CpuWatch()
    watch.start()
    sum(i * i for i in range(200_000))
    share = watch.stop()
    assert share is None or 0.0 <= share <= 100.0  # None where /proc/stat is unreadable


def test_a_directory_that_is_not_lawt_is_refused(bench, tmp_path):
    with pytest.raises(SystemExit, match="not a LAWT tree"):
        bench.main(["--smoke", "--threads", "1", "--lawt", str(tmp_path)])


@pytest.mark.skipif(not LAWT, reason="set SYNTHMATH_LAWT to a LAWT tree to run LAWT's side")
def test_side_by_side_with_lawt(bench, tmp_path):
    errors = np.geterr()
    doc, _ = _run(bench, tmp_path, "--lawt", LAWT)
    assert np.geterr() == errors  # LAWT's np.seterr(all="raise") does not leak
    for row in doc["decoding"]:
        assert row["steps"] == STEPS[row["model"]]  # checked on both sides' lengths
        assert set(row["sides"]) == {"LAWT fp32", "ours fp32", "ours bf16"}
        assert row["sides"]["LAWT fp32"]["median"] > 0
    for row in doc["training"]:
        lawt = row["sides"]["LAWT fp32"]
        assert lawt["median"] > 0 and lawt["median_flops_per_s"] > 0
