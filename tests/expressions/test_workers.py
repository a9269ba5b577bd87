"""VerifyPool: per-item deadlines enforced from the parent, hung and dead workers replaced."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from synthmath.expressions.workers import Outcome, VerifyPool

if str(Path(__file__).parent) not in sys.path:  # spawned workers import the toys by name
    sys.path.insert(0, str(Path(__file__).parent))
import worker_toys as toys  # noqa: E402


@pytest.fixture(scope="module")
def pool():
    with VerifyPool(2) as shared:
        yield shared


def test_outcomes_in_input_order_and_the_pool_survives_hangs_errors_and_deaths(pool):
    items = [("ok", 2), ("sleep", 0), ("block", 0), ("raise", 7), ("exit", 0), ("ok", 5)]
    items += [("ok", k) for k in range(10)]
    squares = [k * k for k in range(10)]
    start = time.monotonic()
    outcomes = pool.map(toys.toy, items, timeout_s=0.3)
    assert [o.status for o in outcomes[:6]] == ["ok", "timeout", "timeout", "error", "error", "ok"]
    assert [o.value for o in outcomes] == [4, None, None, None, None, 25, *squares]
    assert outcomes[1].seconds >= 0.29 and outcomes[2].seconds >= 0.29
    assert "worker killed" in outcomes[2].error  # SIGALRM blocked: the parent's deadline
    assert outcomes[3].error == "ValueError: bad value 7"
    assert "worker died (exit code 3)" in outcomes[4].error
    assert all(o.error is None for o in outcomes if o.status == "ok")
    assert time.monotonic() - start < 15  # about 1 s alone
    assert [o.value for o in pool.map(toys.identity, range(50), timeout_s=1.0)] == list(range(50))


def test_a_worker_is_replaced_only_when_it_is_killed_or_dies():
    with VerifyPool(1) as pool:
        (first,) = pool.map(toys.pid, [0], timeout_s=1.0)
        assert pool.map(toys.toy, [("sleep", 0)], timeout_s=0.2)[0].status == "timeout"
        (same,) = pool.map(toys.pid, [0], timeout_s=1.0)
        assert same.value == first.value  # the soft time limit ended it in the worker
        assert pool.map(toys.toy, [("block", 0)], timeout_s=0.2)[0].status == "timeout"
        (fresh,) = pool.map(toys.pid, [0], timeout_s=1.0)
        assert fresh.value != first.value
        processes = [w.process for w in pool._workers]
    assert not any(p.is_alive() for p in processes)


def test_map_from_a_thread_that_is_not_the_main_thread():
    results: list[list[Outcome]] = []

    def job():
        with VerifyPool(2) as pool:
            items = [("block", 0), ("ok", 3), ("raise", 1), ("ok", 4)]
            results.append(pool.map(toys.toy, items, timeout_s=0.3))

    thread = threading.Thread(target=job)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    (outcomes,) = results
    assert [o.status for o in outcomes] == ["timeout", "ok", "error", "ok"]
    assert [o.value for o in outcomes] == [None, 9, None, 16]


def test_inline_pool_runs_in_this_process_under_time_limit():
    with VerifyPool(0) as pool:
        items = [("ok", 3), ("sleep", 0), ("raise", 2)]
        outcomes = pool.map(toys.toy, items, timeout_s=0.2)
        assert [o.status for o in outcomes] == ["ok", "timeout", "error"]
        assert outcomes[0].value == 9 and outcomes[1].seconds >= 0.19
        assert pool.map(toys.pid, [0], timeout_s=1)[0].value == __import__("os").getpid()


def test_bad_arguments_are_one_line_errors(pool):
    with pytest.raises(TypeError, match="module-level function"):
        pool.map(lambda x: x, [1], timeout_s=1)
    outcome = pool.map(toys.identity, [threading.Lock()], timeout_s=1)[0]
    assert outcome.status == "error" and "not picklable" in outcome.error
    with pytest.raises(ValueError, match="n_workers"):
        VerifyPool(-1)
    closed = VerifyPool(0)
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        closed.map(toys.identity, [1], timeout_s=1)


def test_overhead_of_a_trivial_function(pool):
    items = list(range(2000))
    start = time.perf_counter()
    outcomes = pool.map(toys.identity, items, timeout_s=5.0)
    rate = len(items) / (time.perf_counter() - start)
    print(f"VerifyPool(2): {rate:.0f} trivial items/s")
    assert [o.value for o in outcomes] == items
    assert rate > 300  # measured ~7000/s on 2 shared cores; this only catches a regression
