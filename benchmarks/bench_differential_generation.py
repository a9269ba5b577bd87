"""Differential-system generation rate per core (task `differential`), beside the rates the
spec gives for the released generators (facebookresearch/MathsFromExamples, SymPy 1.14, per
process; specs/differential.md "Throughput").

Each row draws batches of --batch examples of one problem in this process (balancing to 50%
positives per size works within a batch, as within a shard), one thread, until --seconds of
process CPU time have passed (CPU time, not wall time: these machines are shared), after a
warm-up example. The released code is not run here: it hangs on SymPy >= 1.13 (see the spec),
so its rates are the spec's measured figures, not same-run ones.

    .venv/bin/python benchmarks/bench_differential_generation.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table, set_threads  # noqa: E402

#: (row, task parameters, the released rate in examples/s per process, or None if not given)
ROWS = [
    ("stability balanced", {"problem": "stability"}, 0.53),
    ("stability unbalanced", {"problem": "stability", "balance": False}, 3.5),
    ("convergence", {"problem": "convergence"}, None),
    ("control balanced", {"problem": "control"}, None),
    ("control natural", {"problem": "control", "balance": False}, 1.4),
    ("control_t", {"problem": "control_t"}, 0.48),
    ("feedback", {"problem": "feedback"}, 0.03),
    ("pde", {"problem": "pde"}, 2.1),
]


def rate(params: dict, seconds: float, seed: int, batch: int) -> tuple[float, int]:
    """Examples per CPU second drawing ``batch`` examples at a time, and how many were drawn."""
    import numpy as np

    from synthmath.tasks.registry import make_task

    task = make_task("differential", params)
    rng = np.random.default_rng(seed)
    task.sample(1, rng)  # warm-up (imports, caches)
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        task.sample(batch, rng)
        n += batch
    return n / (time.process_time() - start), n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU seconds per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch",
        type=int,
        default=300,
        help="examples per draw (balancing starts after 10 per size)",
    )
    parser.add_argument("--only", help="comma-separated row names (default: all)")
    args = parser.parse_args()
    set_threads(1)
    wanted = None if not args.only else {s.strip() for s in args.only.split(",")}
    rows = []
    for name, params, released in ROWS:
        if wanted and name not in wanted:
            continue
        r, n = rate(params, args.seconds, args.seed, args.batch)
        ratio = f"{r / released:.0f}x" if released else "-"
        rows.append([name, r, n, released if released is not None else "-", ratio])
        print(f"{name}: {r:.3g} ex/s ({n} examples)", flush=True)
    print_table(
        f"Differential generation, examples per CPU second, one thread ({machine()}); released: "
        "the spec's measured rates (SymPy 1.14), not run here",
        ["problem", "ours ex/s", "examples", "released ex/s", "ours / released"],
        rows,
    )
    print(f"\ncommand: {' '.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
