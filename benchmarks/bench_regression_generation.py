"""Symbolic-regression examples per second per core (tasks ``symreg`` and ``odeformer``), from
nothing to token-id batches, beside the released generators' rates, and the shares of the
rejection reasons.

symreg (E2E): draw a tree, its constants and a point mixture, evaluate, reject, encode points
and prefix. odeformer: draw systems, simplify with SymPy, integrate (the release's RK45 with
its RHS budget, then the stored precise run), filter, corrupt (the paper run's levels),
encode. One thread; rates per CPU second of the process (the machine may be shared). The
released rates (specs/regression.md, measured by the research notes on another machine, so a
guide, not a side-by-side ratio): E2E about 74 samples/s per core; ODEFormer about 0.94
accepted samples/s per core (1.06 s per accepted sample, ~90% rejected).

    .venv/bin/python benchmarks/bench_regression_generation.py [--tasks symreg odeformer]
        [--seconds 60] [--batch 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table, set_threads  # noqa: E402

#: the released generators, accepted samples/s per core (specs/regression.md)
REFERENCE = {"symreg": 74.0, "odeformer": 1 / 1.06}


def task_params(name: str, args: argparse.Namespace) -> dict:
    if name == "odeformer":
        return {"noise": args.noise, "subsample": args.subsample, "random_levels": True}
    return {}


def measure(name: str, args: argparse.Namespace) -> tuple[list, list]:
    """(rate row, rejection rows) of ``name`` over ``args.seconds``."""
    import numpy as np

    from synthmath.tasks.registry import make_task
    from synthmath.train.batches import EncodedSet

    task = make_task(name, task_params(name, args))
    rng = np.random.default_rng(0)
    EncodedSet(task, task.sample(1, rng))  # warm up (imports, SymPy caches)
    task.stats.clear()
    examples, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < args.seconds:
        examples += len(EncodedSet(task, task.sample(args.batch, rng)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate = examples / max(cpu, 1e-9)  # per CPU second: other jobs do not count
    attempts = max(task.stats["attempts"], 1)
    row = [
        name,
        examples,
        round(elapsed),
        rate,
        1000 / max(rate, 1e-9),
        REFERENCE[name],
        rate / REFERENCE[name],
        task.stats["accepted"] / attempts,
    ]
    reasons = sorted(
        ((k.removeprefix("rejected_"), v) for k, v in task.stats.items() if "rejected_" in k),
        key=lambda kv: -kv[1],
    )
    return row, [[name, reason, count, count / attempts] for reason, count in reasons]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", choices=sorted(REFERENCE), default=sorted(REFERENCE))
    parser.add_argument("--seconds", type=float, default=60.0, help="measure this long per task")
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.1, help="odeformer: max noise level")
    parser.add_argument("--subsample", type=float, default=0.5, help="odeformer: max dropped share")
    args = parser.parse_args()
    set_threads(1)
    rows, rejections = [], []
    for name in args.tasks:
        row, reasons = measure(name, args)
        rows.append(row)
        rejections += reasons
    print_table(
        f"Generation, 1 thread, rates per CPU second ({machine()})",
        ["task", "examples", "wall s", "ex/s/core", "ms per example", "released ex/s",
         "x released", "accepted share"],
        rows,
    )  # fmt: skip
    print_table(
        "Rejections (share of attempts)", ["task", "reason", "attempts", "share"], rejections
    )


if __name__ == "__main__":
    main()
