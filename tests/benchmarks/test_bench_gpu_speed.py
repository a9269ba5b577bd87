"""The GPU-speed benchmark runs end to end on CPU with a tiny model (a few seconds)."""

from __future__ import annotations

import pytest
import torch
from testsupport import load_benchmark

TINY = {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 32, "n_heads": 4}
TASK = {"op": "transpose", "dim": 2, "encoding": "P1000"}


@pytest.fixture(scope="module")
def bench():
    with load_benchmark("bench_gpu_speed") as module:
        yield module


def test_measure_counts_the_timed_steps_only(bench):
    task, encoded = bench.make_data(TASK, 40)
    common = dict(batch_size=4, device=torch.device("cpu"), precision="fp32", prefetch=1)
    result = bench.measure(task, encoded, TINY, steps=2, warmup_steps=1, **common)
    assert result.tokens_per_s > 0 and result.examples_per_s > 0 and result.flops_per_s > 0
    assert result.applied["precision"] == "fp32"
    # 8 examples in the 2 timed steps
    assert result.examples_per_s * result.seconds == pytest.approx(8)


def test_run_rows_builds_the_table(bench):
    rows = [r for r in bench.ROWS if r.key in ("fp32", "fill")]
    table, phrase = bench.run_rows(
        rows,
        device=torch.device("cpu"),
        batch_size=4,
        fill_batch=6,
        steps=2,
        warmup_steps=1,
        no_compile=True,
        task_params=TASK,
        model_params=TINY,
    )
    assert phrase == "the measured matmul peak of its precision"
    assert [r[:4] for r in table] == [["fp32 eager", 4, "fp32", "off"], ["fast", 6, "bf16", "off"]]
    assert all(len(r) == len(bench.HEADER.split("|")) and r[7] > 0 for r in table)
    assert table[0][8].startswith("meas. fp32") and table[1][8].startswith("meas. bf16")
