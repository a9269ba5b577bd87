"""Generation of one dataset shard in a watched, resumable child process.

:func:`run_shard` runs ``generate_one`` for examples ``0..n-1`` of a shard in a child process
(specs/expressions.md, "Timeouts and workers"). Attempt ``a`` of example ``i`` draws from
``np.random.default_rng([example_seed(seed, i), a])``, so a timeout changes only that example.
Each attempt runs under :func:`time_limit` in the child's main thread; a rejected or timed-out
attempt is retried with the next attempt number, up to ``max_attempts_per_example``, then
:class:`ShardError` names the example and its counts (no silent infinite retry loop).

The child reports every attempt over a pipe. The parent is the watchdog: a child that reports
nothing for ``stall_timeout_s`` (C code that ignores SIGALRM) is killed; the hung attempt
counts as a timeout and a fresh child resumes at the next attempt of the same example. A child
that dies (segfault) counts the attempt as rejected with reason ``child_died`` and is replaced
the same way.

With ``state_dir`` the parent appends every attempt to ``state_dir/progress.jsonl`` (strict
JSON lines, flushed; a torn last line is ignored): a job whose whole process tree was killed
resumes where it stopped, with the same examples and counts as an uninterrupted run (only the
seconds differ). Use one ``state_dir`` per shard; the first line records seed, n and the
generator and a mismatch is an error. A finished log makes a rerun return at once.

Reproducibility: examples depend only on (seed, i, the attempt that succeeded); they differ
between machines only where a timeout fired (counted in the stats).

Hooks: ``init(heartbeat)`` runs once in every child before its first attempt, outside the
attempt time limit (e.g. building a table the attempts read); it calls ``heartbeat()`` at
least every ``stall_timeout_s`` (the watchdog's clock restarts at each call). A child that
stalls, raises or dies in ``init`` is an error, not retried (it would do so again).
``counters()`` is called in the child after every attempt (timed out or not) and returns
counts to add up (e.g. cache lookups and hits): they travel with the attempt's event, are
replayed on resume, and come back summed in the stats' ``counts``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
import traceback
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from synthmath.core.files import atomic_open
from synthmath.expressions.errors import TimeoutExpired
from synthmath.expressions.workers import (
    die_with_parent,
    main_module_hidden,
    stop_process,
    time_limit,
)

Example = dict[str, str | int | float]
GenerateOne = Callable[[np.random.Generator], "Example | str"]
Init = Callable[[Callable[[], None]], None]
Counters = Callable[[], dict[str, int]]
STARTUP_TIMEOUT_S = 120.0  # importing SymPy in a fresh child on a loaded machine
PROGRESS_FILE = "progress.jsonl"


class ShardError(RuntimeError):
    """A shard cannot be generated (attempts exhausted, generator error, bad progress file)."""


class ShardResult(NamedTuple):
    """The examples in index order and the generation statistics (see :func:`run_shard`)."""

    examples: list[Example]
    stats: dict[str, Any]


def example_seed(seed: int, index: int) -> int:
    """The seed of example ``index`` of a shard: 64 bits of ``SeedSequence([seed, index])``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0])


def attempt_rng(seed: int, index: int, attempt: int) -> np.random.Generator:
    """The generator of attempt ``attempt`` of example ``index`` of the shard seeded ``seed``."""
    return np.random.default_rng([example_seed(seed, index), attempt])


def run_shard(
    generate_one: GenerateOne,
    n: int,
    seed: int,
    out_path: Path | str | None,
    *,
    attempt_timeout_s: float,
    stall_timeout_s: float,
    max_attempts_per_example: int,
    state_dir: Path | str | None = None,
    start_method: str = "spawn",
    init: Init | None = None,
    counters: Counters | None = None,
) -> ShardResult:
    """Generate ``n`` examples with ``generate_one(rng) -> dict example | str rejection reason``
    (a module-level function; examples have str keys and str/int/float values, floats finite).

    Writes the examples to ``out_path`` as JSON lines (atomically; None: not written) and
    returns them with the stats: ``attempts``, ``accepted``, ``rejected_by_reason`` (reason ->
    count), ``timeouts`` (time_limit and watchdog), ``seconds`` (time spent in attempts,
    summed over resumed runs), ``timeout_seconds`` (the part of it in attempts that timed out),
    ``restarts`` (children killed by the watchdog or dead, replaced) and ``counts`` (the sums
    of what ``counters`` reported; empty without it). ``init`` and ``counters``: module
    docstring (picklable, as ``generate_one``).
    ``stall_timeout_s`` must exceed ``attempt_timeout_s``: the child reports once per attempt.
    """
    _check_arguments(n, seed, attempt_timeout_s, stall_timeout_s, max_attempts_per_example)
    progress = _Progress(n, seed, max_attempts_per_example)
    log = None
    if state_dir is not None:
        header = {"seed": seed, "n": n, "generator": _qualified_name(generate_one)}
        log = _ProgressLog(Path(state_dir) / PROGRESS_FILE, header)
    context = multiprocessing.get_context(start_method)
    try:
        for event in log.replay() if log is not None else []:
            progress.apply(event)
        while progress.next_index < n:
            hooks = (generate_one, init, counters)
            _run_child(context, hooks, progress, log, attempt_timeout_s, stall_timeout_s)
    finally:
        if log is not None:
            log.close()
    if out_path is not None:
        _write_jsonl(Path(out_path), progress.examples)
    return ShardResult(progress.examples, progress.stats())


def _check_arguments(n, seed, attempt_timeout_s, stall_timeout_s, max_attempts) -> None:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"run_shard: n must be an int >= 0, got {n!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"run_shard: seed must be an int >= 0, got {seed!r}")
    if not attempt_timeout_s > 0:
        raise ValueError(f"run_shard: attempt_timeout_s must be > 0, got {attempt_timeout_s!r}")
    if not stall_timeout_s > attempt_timeout_s:
        raise ValueError(
            f"run_shard: stall_timeout_s ({stall_timeout_s!r}) must exceed attempt_timeout_s "
            f"({attempt_timeout_s!r})"
        )
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"run_shard: max_attempts_per_example must be >= 1, got {max_attempts!r}")


def _qualified_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class _Progress:
    """The shard's state, rebuilt from the attempt events in order (live or replayed)."""

    def __init__(self, n: int, seed: int, max_attempts: int):
        self.n, self.seed, self.max_attempts = n, seed, max_attempts
        self.examples: list[Example] = []
        self.next_attempt = 0  # attempts made so far for example `next_index`
        self.current = Counter()  # failures of the current example, for the error message
        self.attempts = self.timeouts = self.restarts = 0
        self.seconds = self.timeout_seconds = 0.0
        self.rejected: Counter = Counter()
        self.counts: Counter = Counter()

    @property
    def next_index(self) -> int:
        return len(self.examples)

    def apply(self, event: dict) -> None:
        """Count one attempt; raise :class:`ShardError` when the example has no attempts left."""
        index, attempt, status = event["i"], event["attempt"], event["status"]
        if (index, attempt) != (self.next_index, self.next_attempt):
            raise ShardError(
                f"shard (seed {self.seed}): attempt {attempt} of example {index} reported, "
                f"expected attempt {self.next_attempt} of example {self.next_index}"
            )
        self.attempts += 1
        self.seconds += event["seconds"]
        self.restarts += bool(event.get("restart"))
        self.counts.update(event.get("counts", {}))
        if status == "accepted":
            self.examples.append(event["example"])
            self.next_attempt = 0
            self.current.clear()
            return
        if status == "timeout":
            self.timeouts += 1
            self.timeout_seconds += event["seconds"]
            self.current["timeouts"] += 1
        else:
            self.rejected[event["reason"]] += 1
            self.current[f"rejected {event['reason']!r}"] += 1
        self.next_attempt += 1
        if self.next_attempt >= self.max_attempts:
            counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.current.items()))
            raise ShardError(
                f"shard (seed {self.seed}): example {index} not generated in "
                f"{self.max_attempts} attempts ({counts})"
            )

    def stats(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "accepted": len(self.examples),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "timeouts": self.timeouts,
            "seconds": self.seconds,
            "timeout_seconds": self.timeout_seconds,
            "restarts": self.restarts,
            "counts": dict(sorted(self.counts.items())),
        }


class _ProgressLog:
    """The append-only attempt log of a shard: a header line, then one event per line."""

    def __init__(self, path: Path, header: dict):
        self.path, self.header = path, header
        self._file = None

    def replay(self) -> list[dict]:
        """The events logged so far (after checking the header); opens the log for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        events: list[dict] = []
        good_bytes = 0
        if self.path.exists():
            data = self.path.read_bytes()
            lines = data.split(b"\n")
            for number, line in enumerate(lines[:-1], start=1):  # the last piece has no newline
                try:
                    record = json.loads(line)
                except ValueError:
                    if number == len(lines) - 1 and lines[-1] == b"":
                        break  # a torn last line that happens to end in a newline: ignore
                    raise ShardError(f"{self.path}: line {number} is not JSON") from None
                if number == 1:
                    if record.get("shard") != self.header:
                        raise ShardError(
                            f"{self.path}: written for {record.get('shard')}, not for "
                            f"{self.header}; use one state_dir per shard"
                        )
                else:
                    events.append(record)
                good_bytes += len(line) + 1
        self._file = open(self.path, "ab")  # noqa: SIM115 (kept open while the shard runs)
        self._file.truncate(good_bytes)  # drop a torn last line before appending
        if good_bytes == 0:
            self._write({"shard": self.header})
        return events

    def append(self, event: dict) -> None:
        self._write(event)

    def _write(self, record: dict) -> None:
        self._file.write(json.dumps(record, allow_nan=False).encode() + b"\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _run_child(context, hooks, progress, log, attempt_timeout_s, stall_timeout_s) -> None:
    """Run one child from the next attempt until it finishes, stalls (killed) or dies."""
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child_main,
        args=(sender, hooks, progress.seed, progress.n, progress.next_index,
              progress.next_attempt, attempt_timeout_s, progress.max_attempts),
        daemon=True,
    )  # fmt: skip
    with main_module_hidden():
        process.start()
    sender.close()

    def record(event: dict) -> None:
        if log is not None:
            log.append(event)
        progress.apply(event)

    ready, in_init, last = False, hooks[1] is not None, time.monotonic()
    try:
        while True:
            limit = stall_timeout_s if ready else STARTUP_TIMEOUT_S
            woke = wait([receiver, process.sentinel], max(0.0, last + limit - time.monotonic()))
            if not woke:  # silence: the child is hung in code that ignores SIGALRM
                if not ready:
                    raise ShardError(f"shard child did not start within {limit:g} s")
                if in_init:
                    raise ShardError(f"shard child: init sent no heartbeat for {limit:g} s")
                stop_process(process, grace_s=0.0)
                event = _failed_attempt(progress, "timeout", time.monotonic() - last)
                record(event)
                return
            try:
                message = receiver.recv() if receiver in woke or receiver.poll() else None
            except EOFError:
                message = None
            if message is None:  # the child ended: done, exhausted, or died
                process.join()
                if progress.next_index >= progress.n:
                    return
                if not ready or in_init or process.exitcode == 0:
                    raise ShardError(
                        f"shard child exited with code {process.exitcode} at example "
                        f"{progress.next_index} (see its stderr)"
                    )
                record(_failed_attempt(progress, "child_died", time.monotonic() - last))
                return
            if message == "ready":
                ready = True
            elif message == "heartbeat":
                pass  # init at work
            elif message == "initialised":
                in_init = False
            elif message[0] == "error":
                raise ShardError(f"shard (seed {progress.seed}): {message[1]}")
            else:
                record(message[1])
            last = time.monotonic()
    finally:
        stop_process(process, grace_s=0.0)
        receiver.close()


def _failed_attempt(progress: _Progress, why: str, seconds: float) -> dict:
    event = {"i": progress.next_index, "attempt": progress.next_attempt, "seconds": seconds}
    if why == "timeout":
        return event | {"status": "timeout", "restart": True}
    return event | {"status": "rejected", "reason": why, "restart": True}


def _child_main(conn: Connection, hooks, seed, n, start, attempt, timeout_s, max_attempts):
    """The shard child: run ``init``, then attempts from (start, attempt) on, send one event
    per attempt."""
    die_with_parent()
    generate_one, init, counters = hooks
    conn.send("ready")
    if init is not None:
        try:
            init(lambda: conn.send("heartbeat"))
        except Exception as exc:
            problem = f"init raised {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            conn.send(("error", problem))
            return
        conn.send("initialised")
    for index in range(start, n):
        base = example_seed(seed, index)
        while attempt < max_attempts:
            event: dict[str, Any] = {"i": index, "attempt": attempt}
            began = time.perf_counter()
            try:
                with time_limit(timeout_s):
                    result = generate_one(np.random.default_rng([base, attempt]))
                problem = _check_result(result)
                if isinstance(result, dict) and not problem:  # plain types, as when replayed
                    result = json.loads(json.dumps(result, allow_nan=False))
            except TimeoutExpired:
                result, problem = None, None
            except Exception as exc:
                problem = f"generate_one raised {type(exc).__name__}: {exc}\n"
                problem += traceback.format_exc()
            if problem:
                conn.send(("error", f"example {index}, attempt {attempt}: {problem}"))
                return
            event["seconds"] = time.perf_counter() - began
            counts = counters() if counters is not None else None
            if counts:
                event["counts"] = {str(k): int(v) for k, v in counts.items()}
            if result is None:
                event["status"] = "timeout"
            elif isinstance(result, str):
                event |= {"status": "rejected", "reason": result}
            else:
                event |= {"status": "accepted", "example": result}
            conn.send(("event", event))
            attempt += 1
            if event["status"] == "accepted":
                break
        else:
            return  # attempts exhausted: the parent raises with the counts
        attempt = 0


def _check_result(result: Any) -> str | None:
    """Why ``result`` is neither a rejection reason nor a plain JSON-safe example (or None)."""
    if isinstance(result, str):
        return None
    if not isinstance(result, dict):
        return f"generate_one returned {type(result).__name__}, expected a dict or a str"
    for key, value in result.items():
        if not isinstance(key, str):
            return f"example key {key!r} is not a str"
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return f"example field {key!r} is {type(value).__name__}, expected str, int or float"
        if isinstance(value, float) and not math.isfinite(value):
            return f"example field {key!r} is {value} (JSON files hold finite numbers only)"
    return None


def _write_jsonl(path: Path, examples: list[Example]) -> None:
    with atomic_open(path) as file:
        for example in examples:
            file.write(json.dumps(example, allow_nan=False) + "\n")
