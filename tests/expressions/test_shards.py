"""run_shard: per-attempt time limits, the watchdog restart, resume and determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import synthmath
from synthmath.expressions.shards import PROGRESS_FILE, ShardError, attempt_rng, run_shard

if str(Path(__file__).parent) not in sys.path:  # spawned children import the toys by name
    sys.path.insert(0, str(Path(__file__).parent))
import worker_toys as toys  # noqa: E402

LIMITS = {"attempt_timeout_s": 0.2, "stall_timeout_s": 0.6, "max_attempts_per_example": 10}


def replay(generate_one, seed: int, n: int):
    """The examples and rejection counts of a shard, computed here without processes."""
    examples, rejected = [], {}
    for index in range(n):
        attempt = 0
        while isinstance(result := generate_one(attempt_rng(seed, index, attempt)), str):
            rejected[result] = rejected.get(result, 0) + 1
            attempt += 1
        examples.append(result)
    return examples, rejected


def test_rejections_are_retried_and_counted(tmp_path):
    out = tmp_path / "shard.jsonl"
    examples, stats = run_shard(toys.gen_with_rejections, 25, 3, out, **LIMITS)
    expected, rejected = replay(toys.gen_with_rejections, 3, 25)
    assert examples == expected
    assert stats["rejected_by_reason"] == rejected and set(rejected) == {"too_small", "too_long"}
    assert stats["attempts"] == 25 + sum(rejected.values()) and stats["accepted"] == 25
    assert stats["timeouts"] == stats["restarts"] == 0 and stats["timeout_seconds"] == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == expected


def test_same_seed_same_examples_other_seed_other_examples():
    first, _ = run_shard(toys.gen_with_rejections, 10, 11, None, **LIMITS)
    second, _ = run_shard(toys.gen_with_rejections, 10, 11, None, **LIMITS)
    other, _ = run_shard(toys.gen_with_rejections, 10, 12, None, **LIMITS)
    assert first == second and first != other


@pytest.mark.parametrize(
    ("generate_one", "restarts"),
    [(toys.gen_sleepy_hang, False), (toys.gen_blocking_hang, True)],
    ids=["sigalrm", "signals-blocked-watchdog"],
)
def test_hangs_time_out_and_move_on_to_the_next_attempt(generate_one, restarts):
    n, seed = 8, 7
    hangs = toys.hangs_expected(seed, n)
    assert 1 <= hangs <= 3  # the seed is chosen so that the test exercises a few hangs
    examples, stats = run_shard(generate_one, n, seed, None, **LIMITS)
    never_hangs = [{"u": float(attempt_rng(seed, i, a).random())} for i, a in _accepted(seed, n)]
    assert examples == never_hangs
    assert stats["timeouts"] == hangs and stats["attempts"] == n + hangs
    assert stats["restarts"] == (hangs if restarts else 0)
    assert stats["timeout_seconds"] >= hangs * 0.19
    assert stats["timeout_seconds"] <= stats["seconds"]


def _accepted(seed: int, n: int):
    for index in range(n):
        attempt = 0
        while attempt_rng(seed, index, attempt).random() < toys.HANG_PROBABILITY:
            attempt += 1
        yield index, attempt


def test_attempts_are_capped_with_a_clear_error():
    limits = LIMITS | {"max_attempts_per_example": 4}
    with pytest.raises(ShardError, match=r"example 0 not generated in 4 attempts \(rejected "):
        run_shard(toys.gen_always_rejects, 3, 0, None, **limits)


def test_generator_bugs_stop_the_shard_with_the_cause():
    with pytest.raises(
        ShardError,
        match="example 0, attempt 0: generate_one raised ZeroDivisionError: generator bug",
    ):
        run_shard(toys.gen_raises, 2, 0, None, **LIMITS)
    with pytest.raises(ShardError, match="field 'k' is int64"):
        run_shard(toys.gen_bad_field, 2, 0, None, **LIMITS)
    with pytest.raises(ValueError, match="stall_timeout_s"):
        run_shard(toys.gen_raises, 2, 0, None, **(LIMITS | {"stall_timeout_s": 0.1}))


def test_init_runs_once_per_child_outside_the_limits_and_counters_add_up():
    # init takes 1.5 s: over attempt_timeout_s (0.2) and stall_timeout_s (0.6), but heartbeats
    hooks = {"init": toys.init_slowly, "counters": toys.count_calls}
    examples, stats = run_shard(toys.gen_after_init, 6, 4, None, **LIMITS, **hooks)
    expected, rejected = replay(toys.gen_after_init, 4, 6)
    assert examples == [e | {"warmed": 1.5} for e in expected]  # once, before the attempts
    assert stats["timeouts"] == stats["restarts"] == 0
    assert stats["seconds"] < 1.0  # init's time is not an attempt's
    assert stats["counts"] == {"calls": stats["attempts"], "zero": 0}
    assert stats["attempts"] == 6 + sum(rejected.values())
    _, plain = run_shard(toys.gen_slow, 2, 0, None, **LIMITS)
    assert plain["counts"] == {}
    with pytest.raises(ShardError, match="init raised RuntimeError: no table"):
        run_shard(toys.gen_slow, 2, 0, None, **LIMITS, init=toys.init_raises)
    with pytest.raises(ShardError, match="init sent no heartbeat for 0.6 s"):
        run_shard(toys.gen_slow, 2, 0, None, **LIMITS, init=toys.init_silent)


def test_a_killed_job_resumes_with_the_examples_of_an_uninterrupted_run(tmp_path):
    n, seed, state = 30, 5, tmp_path / "state"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import worker_toys as toys\n"
        "from synthmath.expressions.shards import run_shard\n"
        "if __name__ == '__main__':\n"
        f"    run_shard(toys.gen_slow, {n}, {seed}, None, attempt_timeout_s=1,"
        f" stall_timeout_s=2, max_attempts_per_example=10, state_dir=sys.argv[2],"
        f" counters=toys.count_calls)\n"
    )
    env = os.environ | {"PYTHONPATH": str(Path(synthmath.__file__).parents[1])}
    job = subprocess.Popen(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(state)],
        env=env,
        start_new_session=True,
    )
    log = state / PROGRESS_FILE
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text().count("\n") >= 12):
        assert time.monotonic() < deadline and job.poll() is None
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGKILL)  # the job and its shard child, mid-run
    job.wait()
    with open(log, "ab") as file:
        file.write(b'{"i": 99, "attem')  # a write torn by the kill
    done_before = log.read_text().count('"accepted"')
    assert 0 < done_before < n

    counters = {"counters": toys.count_calls}
    resumed, stats = run_shard(toys.gen_slow, n, seed, None, **LIMITS, state_dir=state, **counters)
    uninterrupted, reference = run_shard(toys.gen_slow, n, seed, None, **LIMITS, **counters)
    assert resumed == uninterrupted
    assert reference["counts"]["calls"] == reference["attempts"]
    for key in ("attempts", "accepted", "rejected_by_reason", "timeouts", "restarts", "counts"):
        assert stats[key] == reference[key]
    again, _ = run_shard(toys.gen_slow, n, seed, None, **LIMITS, state_dir=state)
    assert again == uninterrupted  # a finished log: nothing left to run
    with pytest.raises(ShardError, match="one state_dir per shard"):
        run_shard(toys.gen_slow, n, seed + 1, None, **LIMITS, state_dir=state)
