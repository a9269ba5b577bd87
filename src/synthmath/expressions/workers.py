"""Time limits and worker processes for SymPy calls, whose run times are heavy-tailed.

:func:`time_limit` bounds a computation in the main thread of a process with
``signal.setitimer``; it raises :class:`TimeoutExpired`. A C-level loop that ignores signals
is the watchdogs' business: a :class:`VerifyPool` worker (evaluation) or a shard child
(:mod:`synthmath.expressions.shards`, generation) is killed from outside and replaced.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import pickle
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from synthmath.expressions.errors import TimeoutExpired


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """Start processes without re-running the parent's ``__main__`` script in the child.

    A "spawn" child imports the parent's main script by path (as ``__mp_main__``): a Snakemake
    script, a benchmark or ``python -`` would run again, or fail, in every child. Workers and
    shard children only need functions from importable modules, so the script is hidden from
    multiprocessing while the child starts.
    """
    main = sys.modules.get("__main__")
    saved = main.__dict__.pop("__file__", None) if main is not None else None
    try:
        yield
    finally:
        if main is not None and saved is not None:
            main.__file__ = saved


def signals_usable() -> bool:
    """Whether :func:`time_limit` can arm a timer here (Unix, main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimeoutExpired` in the block after ``seconds`` (None or <= 0: no limit).

    Nested limits keep the earliest deadline: the outer timer is re-armed with what is left of
    it when the inner block ends. Outside the main thread (or without ``setitimer``) the block
    runs without a limit: callers there rely on a process watchdog.
    """
    if not seconds or seconds <= 0 or not signals_usable():
        yield
        return
    previous_handler = signal.getsignal(signal.SIGALRM)
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left < seconds:
        seconds = outer_left  # the outer deadline comes first: it fires as the outer one

    def _raise(signum, frame):
        raise TimeoutExpired(f"computation exceeded {seconds:g} s")

    outer_first = bool(outer_left) and outer_left <= seconds
    signal.signal(signal.SIGALRM, previous_handler if outer_first else _raise)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if outer_left:
            left = outer_left - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6))


# -- the evaluation pool -------------------------------------------------------------------

KILL_GRACE_S = 0.2  # SIGTERM, then SIGKILL after this long
STARTUP_TIMEOUT_S = 60.0  # a worker that is not ready by then is a broken environment


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one item: ``status`` "ok" (``value`` holds the result), "timeout" or
    "error" (``error`` holds the message); ``seconds`` is the run time of the call (for a
    killed or dead worker: the time from submission to the kill)."""

    status: str
    value: Any
    seconds: float
    error: str | None = None


def _worker_main(conn: Connection, tie_to_parent: bool) -> None:
    """A pool worker: run ``fn(item)`` for each ``(fn, item, timeout_s)`` received, under a
    soft :func:`time_limit`; answer ``(status, value, seconds, error)``; stop on None/EOF."""
    if tie_to_parent:
        die_with_parent()
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, item, timeout_s = message
        start = time.perf_counter()
        value, error = None, None
        try:
            with time_limit(timeout_s):
                value = fn(item)
            status = "ok"
        except TimeoutExpired as exc:
            status, error = "timeout", str(exc)
        except Exception as exc:  # the caller's function failed: report, keep the worker
            status, error = "error", _describe(exc)
        seconds = time.perf_counter() - start
        try:
            conn.send((status, value, seconds, error))
        except (EOFError, OSError):
            return
        except Exception as exc:  # an unpicklable result; nothing was written
            conn.send(("error", None, seconds, f"result not picklable: {_describe(exc)}"))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this process when its parent (thread) exits, so a worker
    hung in C does not outlive a killed parent. Best effort; elsewhere a no-op."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop_process(process: BaseProcess, grace_s: float = KILL_GRACE_S) -> None:
    """Terminate ``process`` (SIGTERM), SIGKILL it if it is still alive after ``grace_s``."""
    if process.is_alive():
        process.terminate()
        process.join(grace_s)
    if process.is_alive():
        process.kill()
    process.join()


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    state: str = "starting"  # starting | idle | busy
    index: int = -1
    submitted: float = 0.0
    deadline: float = 0.0


class VerifyPool:
    """Worker processes that run ``fn(item)`` with per-item deadlines, for evaluation.

    Unlike ``ProcessPoolExecutor``, a worker that runs past its item's deadline is killed
    (SIGTERM, then SIGKILL) and replaced, and the pool carries on. The deadline is kept by the
    parent (no signals in the calling thread), so :meth:`map` works from any thread; each
    worker also arms a soft :func:`time_limit` of ``timeout_s`` so that Python-level overruns
    end without a respawn, and the parent kills at ``timeout_s + 0.1 + 0.1 * timeout_s``.
    Each worker has its own pipe; the next item is sent as soon as a worker answers.

    ``n_workers=0`` runs items inline in the calling process under :func:`time_limit` (main
    thread only): a hang in C code that ignores SIGALRM cannot be interrupted inline, and off
    the main thread inline items run without a limit.

    ``fn`` must be a module-level function (sent by reference), items and results plain
    picklable values. One :meth:`map` runs at a time (a lock serialises threads).
    """

    def __init__(self, n_workers: int, *, start_method: str = "spawn"):
        if n_workers < 0:
            raise ValueError(f"n_workers must be >= 0, got {n_workers}")
        self.n_workers = n_workers
        self._context = multiprocessing.get_context(start_method)
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(n_workers):
            self._start_worker()

    def __enter__(self) -> VerifyPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start_worker(self) -> None:
        parent_end, child_end = self._context.Pipe()
        # the kernel signal follows the creating thread: tie workers to the main thread only
        tie_to_parent = threading.current_thread() is threading.main_thread()
        process = self._context.Process(
            target=_worker_main, args=(child_end, tie_to_parent), daemon=True
        )
        with main_module_hidden():
            process.start()
        child_end.close()
        self._workers.append(_Worker(process, parent_end))

    def _replace(self, worker: _Worker) -> None:
        stop_process(worker.process)
        worker.conn.close()
        self._workers.remove(worker)
        self._start_worker()

    def map(
        self, fn: Callable[[Any], Any], items: Iterable[Any], timeout_s: float
    ) -> list[Outcome]:
        """Run ``fn(item)`` for every item, each within ``timeout_s`` seconds; the outcomes come
        back in input order."""
        items = list(items)
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise TypeError(f"VerifyPool.map: fn must be a module-level function ({exc})") from exc
        with self._lock:
            if self._closed:
                raise RuntimeError("VerifyPool.map on a closed pool")
            if self.n_workers == 0:
                return [_run_inline(fn, item, timeout_s) for item in items]
            outcomes: list[Outcome | None] = [None] * len(items)
            try:
                self._run(fn, items, timeout_s, outcomes)
            finally:  # interrupted (KeyboardInterrupt...): no stale answers for the next map
                for worker in [w for w in self._workers if w.state == "busy"]:
                    self._replace(worker)
            return outcomes  # type: ignore[return-value]

    def _run(self, fn: Callable, items: list, timeout_s: float, outcomes: list) -> None:
        pending = deque(range(len(items)))
        hard_limit = timeout_s + 0.1 + 0.1 * timeout_s
        failed_starts = 0
        last_progress = time.monotonic()
        while pending or any(w.state == "busy" for w in self._workers):
            for worker in self._workers:
                if pending and worker.state == "idle":
                    index = pending.popleft()
                    try:
                        worker.conn.send((fn, items[index], timeout_s))
                    except (OSError, EOFError):
                        pending.appendleft(index)
                        self._replace(worker)
                        break
                    except Exception as exc:  # the item does not pickle; nothing was sent
                        outcomes[index] = Outcome("error", None, 0.0, f"item not picklable: {exc}")
                        continue
                    worker.state, worker.index = "busy", index
                    worker.submitted = time.monotonic()
                    worker.deadline = worker.submitted + hard_limit
            now = time.monotonic()
            busy = [w for w in self._workers if w.state == "busy"]
            waiting = busy + [w for w in self._workers if w.state == "starting"]
            if busy:
                wait_s = max(0.0, min(w.deadline for w in busy) - now)
            elif now - last_progress > STARTUP_TIMEOUT_S:
                raise RuntimeError(f"VerifyPool: no worker ready after {STARTUP_TIMEOUT_S:g} s")
            else:
                wait_s = 1.0
            by_object = {w.conn: w for w in waiting} | {w.process.sentinel: w for w in waiting}
            ready = wait(list(by_object), wait_s)
            dead: list[_Worker] = []
            for obj in ready:
                worker = by_object[obj]
                if worker in dead or worker.state not in ("busy", "starting"):
                    continue
                try:
                    if obj is worker.conn or worker.conn.poll():
                        self._receive(worker, outcomes)
                        last_progress = time.monotonic()
                    elif not worker.process.is_alive():
                        dead.append(worker)
                except (EOFError, OSError):
                    dead.append(worker)
            for worker in dead:
                if worker.state == "starting":
                    failed_starts += 1
                    if failed_starts > 3 * self.n_workers:
                        raise RuntimeError(
                            f"VerifyPool: workers die at start (exit code {worker.process.exitcode})"
                        )
                else:
                    worker.process.join()
                    outcomes[worker.index] = Outcome(
                        "error",
                        None,
                        time.monotonic() - worker.submitted,
                        f"worker died (exit code {worker.process.exitcode})",
                    )
                self._replace(worker)
            now = time.monotonic()
            for worker in [w for w in self._workers if w.state == "busy" and now >= w.deadline]:
                outcomes[worker.index] = Outcome(
                    "timeout",
                    None,
                    now - worker.submitted,
                    f"computation exceeded {timeout_s:g} s (worker killed)",
                )
                self._replace(worker)

    @staticmethod
    def _receive(worker: _Worker, outcomes: list) -> None:
        message = worker.conn.recv()
        if worker.state == "starting":
            worker.state = "idle"
            return
        status, value, seconds, error = message
        outcomes[worker.index] = Outcome(status, value, seconds, error)
        worker.state, worker.index = "idle", -1

    def close(self) -> None:
        """Stop the workers (idempotent; waits for a running :meth:`map`): ask politely, then
        terminate and kill."""
        with self._lock:
            self._closed = True
            self._stop_workers()

    def _stop_workers(self) -> None:
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except (OSError, EOFError):
                pass
        deadline = time.monotonic() + 1.0
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            stop_process(worker.process)
            worker.conn.close()
        self._workers.clear()


def _run_inline(fn: Callable[[Any], Any], item: Any, timeout_s: float) -> Outcome:
    start = time.perf_counter()
    try:
        with time_limit(timeout_s):
            value = fn(item)
    except TimeoutExpired as exc:
        return Outcome("timeout", None, time.perf_counter() - start, str(exc))
    except Exception as exc:
        return Outcome("error", None, time.perf_counter() - start, _describe(exc))
    return Outcome("ok", value, time.perf_counter() - start, None)
