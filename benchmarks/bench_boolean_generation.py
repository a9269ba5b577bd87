"""Boolean (Boolformer) generation rate per core, beside the spec's rates for the released code.

For each setting, one thread generates for --seconds: accepted examples per second, attempts,
rejections by reason, and the mean answer length in tokens. The released generator was
measured (specs/boolean.md, simplification off): 10 samples in 1.06 s noiseless (9.4/s) and
in 0.25 s noisy (40/s); with its boolean.py simplification on it was not timed. Ours always
simplifies (rules, plus SymPy's two-level forms up to exact_max_vars variables).

    .venv/bin/python benchmarks/bench_boolean_generation.py --seconds 30
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table, set_threads  # noqa: E402

#: the released generator's rate per core with simplification off (specs/boolean.md)
RELEASED = {"noiseless": 10 / 1.06, "noisy": 10 / 0.25}
SETTINGS = {
    "noiseless": {"regime": "noiseless"},
    "noiseless, no simplification": {"regime": "noiseless", "simplify": False},
    "noisy": {"regime": "noisy"},
    "noisy, no simplification": {"regime": "noisy", "simplify": False},
}


def measure(params: dict, seconds: float, seed: int = 0) -> dict:
    from synthmath.tasks.boolean import generator as gen
    from synthmath.tasks.registry import make_task

    task = make_task("boolean", params)
    rejected: Counter = Counter()
    lengths = []
    attempts, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        result = gen.attempt(np.random.default_rng([seed, attempts]), task.config)
        attempts += 1
        if isinstance(result, str):
            rejected[result] += 1
        else:
            lengths.append(len(result.tokens))
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "attempts": attempts, "accepted": len(lengths),
            "rejected": rejected, "lengths": lengths}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    set_threads(1)
    rows = []
    for label, params in SETTINGS.items():
        r = measure(params, args.seconds)
        rate = r["accepted"] / r["seconds"]
        released = RELEASED[params["regime"]]
        common = ", ".join(f"{k} {v}" for k, v in r["rejected"].most_common(2))
        rows.append([label, rate, r["attempts"], float(np.mean(r["lengths"] or [0])),
                     f"{rate / released:.2f}x", common or "-"])  # fmt: skip
    header = ["setting", "examples/s", "attempts", "answer tokens", "vs released", "rejections"]
    print_table(f"Boolean generation, one core ({machine()})", header, rows)


if __name__ == "__main__":
    main()
