"""ODEFormer examples per second per core, from nothing to token-id batches, and the shares
of the rejection reasons.

Draw systems, simplify with SymPy, integrate (the release's RK45 with its RHS budget, then
the stored precise run), filter, corrupt, encode inputs and outputs to padded id arrays (what
training consumes). One thread; rates per CPU second of the process (the machine may be
shared). The released code makes about 0.94 accepted samples/s on one
core (1.06 s per accepted sample, ~90% rejected; specs/regression.md, measured by the
research notes).

    .venv/bin/python benchmarks/bench_odeformer_generation.py [--seconds 60] [--batch 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table, set_threads  # noqa: E402

REFERENCE = 1 / 1.06  # the released generator, accepted samples/s per core


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measure this long")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--subsample", type=float, default=0.5)
    args = parser.parse_args()
    set_threads(1)
    import numpy as np

    from synthmath.tasks.registry import make_task
    from synthmath.train.batches import EncodedSet

    task = make_task(
        "odeformer",
        {"noise": args.noise, "subsample": args.subsample, "random_levels": True},
    )
    rng = np.random.default_rng(0)
    EncodedSet(task, task.sample(1, rng))  # warm up (imports, SymPy caches)
    task.stats.clear()
    examples, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < args.seconds:
        examples += len(EncodedSet(task, task.sample(args.batch, rng)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate = examples / cpu  # per CPU second: a shared machine's other jobs do not count
    attempts = task.stats["attempts"]
    print_table(
        f"ODEFormer generation (paper run corruption), {examples} examples in "
        f"{elapsed:.0f} s wall, {cpu:.0f} CPU s, 1 thread ({machine()})",
        ["ex/s/core", "s per example", "x released", "accepted share"],
        [[rate, 1 / rate, rate / REFERENCE, task.stats["accepted"] / max(attempts, 1)]],
    )
    reasons = sorted(
        ((k.removeprefix("rejected_"), v) for k, v in task.stats.items() if "rejected_" in k),
        key=lambda kv: -kv[1],
    )
    print_table(
        "Rejections (share of attempts)",
        ["reason", "attempts", "share"],
        [[reason, count, count / max(attempts, 1)] for reason, count in reasons],
    )


if __name__ == "__main__":
    main()
