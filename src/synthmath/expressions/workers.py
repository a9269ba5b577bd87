"""Time limits for SymPy calls, whose run times are heavy-tailed.

:func:`time_limit` bounds a computation in the main thread of a process with
``signal.setitimer``; it raises :class:`TimeoutExpired` (a C-level loop that ignores signals
is the watchdogs' business: a pool worker or a shard child is killed from outside).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from synthmath.expressions.errors import TimeoutExpired


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
