"""Shared helpers of the benchmark scripts: timing loops and a plain table printer."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence


def set_threads(n: int) -> None:
    """Limit numpy/BLAS and torch to n threads (call before heavy imports where possible)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch

    from synthmath.train.device import tune_cpu_allocator

    tune_cpu_allocator()  # as the workflow's jobs do
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass


def best_rate(fn: Callable[[], int], repeats: int = 3, min_time: float = 1.0) -> float:
    """Best items/s over `repeats` measurements of at least `min_time` seconds each."""
    fn()  # warm up
    best = 0.0
    for _ in range(repeats):
        items, start = 0, time.perf_counter()
        while True:
            items += fn()
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = max(best, items / elapsed)
    return best


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}\n")
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return str(value)


def machine() -> str:
    import torch

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
