"""Module-level toy functions for tests/expressions/test_workers.py: pool workers and shard
children (spawned processes) import them by reference, so they live in a plain module."""

from __future__ import annotations

import os
import signal
import time

import numpy as np


def hang_in_sleep() -> None:
    while True:  # interruptible: SIGALRM ends it through time_limit
        time.sleep(0.01)


def hang_ignoring_signals() -> None:
    """Hang in C with SIGALRM blocked and SIGTERM ignored: only SIGKILL ends this one.

    Blocking SIGALRM in this thread alone is not enough for a Python-level loop: numpy's
    OpenBLAS threads still take the signal and the main thread runs the handler at its next
    bytecode. A wait inside one C call never returns to the interpreter, as C code in SymPy's
    dependencies may not."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGTERM})
    while True:
        signal.sigwait({signal.SIGUSR2})


def toy(item: tuple[str, int]) -> int:
    """A pool item ``(kind, value)``: "ok" squares, "sleep"/"block" hang, "raise", "exit"."""
    kind, value = item
    if kind == "sleep":
        hang_in_sleep()
    elif kind == "block":
        hang_ignoring_signals()
    elif kind == "raise":
        raise ValueError(f"bad value {value}")
    elif kind == "exit":
        os._exit(3)
    return value * value


def identity(value: int) -> int:
    return value


def pid(_: object) -> int:
    return os.getpid()


def gen_with_rejections(rng: np.random.Generator) -> dict | str:
    u = float(rng.random())
    if u < 0.3:
        return "too_small"
    if u < 0.4:
        return "too_long"
    return {"u": u, "k": int(rng.integers(1000)), "s": f"x{u:.3f}"}


def gen_sleepy_hang(rng: np.random.Generator) -> dict | str:
    u = float(rng.random())
    if u < HANG_PROBABILITY:
        hang_in_sleep()
    return {"u": u}


def gen_blocking_hang(rng: np.random.Generator) -> dict | str:
    u = float(rng.random())
    if u < HANG_PROBABILITY:
        hang_ignoring_signals()
    return {"u": u}


def gen_slow(rng: np.random.Generator) -> dict | str:
    time.sleep(0.03)
    u = float(rng.random())
    return "unlucky" if u < 0.2 else {"u": u}


def gen_always_rejects(rng: np.random.Generator) -> dict | str:
    return "never" if rng.random() < 0.5 else "not_today"


def gen_bad_field(rng: np.random.Generator) -> dict | str:
    return {"k": np.int64(3)}


def gen_raises(rng: np.random.Generator) -> dict | str:
    raise ZeroDivisionError("generator bug")


HANG_PROBABILITY = 0.25


def hangs_expected(seed: int, n: int) -> int:
    """How many attempts of gen_*_hang hang for a shard: the same draws, replayed here."""
    from synthmath.expressions.shards import attempt_rng

    hangs = 0
    for index in range(n):
        attempt = 0
        while attempt_rng(seed, index, attempt).random() < HANG_PROBABILITY:
            hangs += 1
            attempt += 1
    return hangs


#: set by init_slowly in a shard child; gen_after_init reports it
WARMED: list[float] = []


def init_slowly(heartbeat) -> None:
    """A shard init that takes 1.5 s (longer than the tests' stall and attempt limits) with a
    heartbeat every 0.1 s."""
    for _ in range(15):
        time.sleep(0.1)
        heartbeat()
    WARMED.append(1.5)


def init_raises(heartbeat) -> None:
    raise RuntimeError("no table")


def gen_after_init(rng: np.random.Generator) -> dict | str:
    u = float(rng.random())
    return "unlucky" if u < 0.2 else {"u": u, "warmed": sum(WARMED)}


def count_calls() -> dict[str, int]:
    return {"calls": 1, "zero": 0}


def init_silent(heartbeat) -> None:
    time.sleep(30)  # no heartbeat: the watchdog stops the shard
