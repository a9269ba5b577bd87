"""Examples per second per core from nothing to token-id batches, per operation.

"From nothing" = draw the random matrices, compute the answers, encode inputs and outputs to
token ids and lay them out as padded (BOS ... EOS) id arrays, exactly what training consumes.
One thread (per core). The original code did 4,000 to 6,000 examples/s per core (5x5,
P1000 or FP15 input).

    .venv/bin/python benchmarks/bench_generation.py [--dim 5] [--batch 4096]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import best_rate, machine, print_table, set_threads  # noqa: E402

REFERENCE = 5000.0  # midpoint of the original 4,000-6,000 examples/s per core


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dim", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--encodings", default="P1000,FP15")
    args = parser.parse_args()
    set_threads(1)
    import numpy as np

    from synthmath.tasks.linalg.ops import OP_NAMES
    from synthmath.tasks.registry import make_task
    from synthmath.train.batches import EncodedSet

    encodings = args.encodings.split(",")
    rows = []
    for op in OP_NAMES:
        row = [op]
        for enc in encodings:
            # FP15 in, P1000 out (the paper's pairing); P1000 both ways
            out = "P1000" if enc == "FP15" else enc
            task = make_task(
                "linalg", {"op": op, "dim": args.dim, "input_encoding": enc, "output_encoding": out}
            )
            rng = np.random.default_rng(0)

            def step() -> int:
                encoded = EncodedSet(task, task.sample(args.batch, rng))
                return len(encoded)

            rate = best_rate(step, repeats=3, min_time=1.0)
            row += [rate, rate / REFERENCE]
        rows.append(row)
    header = ["op"]
    for enc in encodings:
        label = f"{enc} in" + (" / P1000 out" if enc == "FP15" else "")
        header += [f"{label} (ex/s/core)", "x original"]
    print_table(
        f"Generation, {args.dim}x{args.dim}, batches of {args.batch}, 1 thread ({machine()})",
        header,
        rows,
    )


if __name__ == "__main__":
    main()
