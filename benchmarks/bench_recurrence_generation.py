"""Recurrence examples per second per core, from nothing to token-id batches.

Draw recurrences and initial terms, roll the sequences, apply the rejections, encode inputs
and outputs to padded id arrays (what training consumes). One thread. The released code
(facebookresearch/recur with ``np.float`` patched) makes about 500 accepted samples/s on one
core at about 30% acceptance (specs/regression.md, measured by the research notes).

    .venv/bin/python benchmarks/bench_recurrence_generation.py [--batch 500]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import best_rate, machine, print_table, set_threads  # noqa: E402

REFERENCE = 500.0  # the released generator, accepted samples/s per core


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    set_threads(1)
    import numpy as np

    from synthmath.tasks.registry import make_task
    from synthmath.train.batches import EncodedSet

    rows = []
    for mode in ("int", "float"):
        for output in ("symbolic", "numeric"):
            task = make_task("recurrence", {"mode": mode, "output": output})
            rng = np.random.default_rng(0)

            def step() -> int:
                return len(EncodedSet(task, task.sample(args.batch, rng)))

            rate = best_rate(step, repeats=3, min_time=1.0)
            accepted = task.stats["accepted"] / max(task.stats["attempts"], 1)
            rows.append([mode, output, rate, rate / REFERENCE, accepted])
    print_table(
        f"Recurrence generation, batches of {args.batch}, 1 thread ({machine()})",
        ["mode", "output", "ex/s/core", "x released", "accepted share"],
        rows,
    )


if __name__ == "__main__":
    main()
