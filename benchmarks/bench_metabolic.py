"""Metabolic networks per second per core: raw generation + exact solve, and balanced shards.

One thread (numpy/BLAS and torch); rates are networks per second of *process CPU time*
(``time.process_time``), so that other jobs on a shared machine slow the wall clock, not the
figure. Two tables:

1. generation + solve: a batch of networks of one size (every family mixed, uniformly) drawn
   by ``graphs.sample_networks`` and solved; with ``--with-encoding`` also encoded to token ids
   (existence answers). Also printed: the fraction with an equilibrium and the fraction the
   Michaelis-Menten solver left undecided.
2. balanced existence shards: ``MetabolicTask(answer=existence, balance=true).sample`` with the
   task's default rates, ``sampler=rejection`` (the default: draw, solve, keep the first of
   each class) beside ``sampler=fast`` (structure, a cheap no-equilibrium bound, then the exact
   solve; same distribution per class), measured alternately in the same run, medians.

Target (issue 19): at least 10,000 networks/s/core for balanced Michaelis-Menten shards of
10-node networks.

    .venv/bin/python benchmarks/bench_metabolic.py [--sizes 10,20] [--batch 4096]
        [--family erdos_renyi,...] [--with-encoding] [--balanced-sizes 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table, set_threads  # noqa: E402

TARGET = 10_000.0  # networks/s/core


def cpu_rate(fn: Callable[[], int], min_time: float) -> float:
    """Items per second of process CPU time, over calls of ``fn`` lasting ``min_time`` in all."""
    items, start = 0, time.process_time()
    while True:
        items += fn()
        elapsed = time.process_time() - start
        if elapsed >= min_time:
            return items / elapsed


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def generation_table(args, family: str, density: float) -> None:
    import numpy as np

    from synthmath.tasks.metabolic import graphs
    from synthmath.tasks.metabolic.solvers import solve

    encoders = {}
    if args.with_encoding:
        if importlib.util.find_spec("synthmath.tasks.metabolic.task") is None:
            raise SystemExit("--with-encoding: synthmath.tasks.metabolic.task does not exist")
        from synthmath.tasks.metabolic.task import MetabolicTask

        for kinetics in graphs.KINETICS:
            encoders[kinetics] = MetabolicTask(kinetics=kinetics, answer="existence")
    rows = []
    for kinetics in graphs.KINETICS:
        for size in (int(s) for s in args.sizes.split(",")):
            rng = np.random.default_rng(0)
            stats = {"networks": 0, "yes": 0, "undecided": 0}

            def step() -> int:
                raw = graphs.sample_networks(
                    args.batch, rng, family=family, nodes_min=size, nodes_max=size,
                    density=density, kinetics=kinetics,
                )  # fmt: skip
                answers = solve(raw, kinetics)
                if encoders:
                    raw.update(answers)
                    encoders[kinetics].encode_src(raw)
                    encoders[kinetics].encode_tgt(raw)
                stats["networks"] += args.batch
                stats["yes"] += int(answers["exists"].sum())
                stats["undecided"] += int(answers["undecided"].sum())
                return args.batch

            step()  # warm up
            rate = max(cpu_rate(step, args.min_time) for _ in range(3))
            undecided = f"{stats['undecided'] / stats['networks']:.1e}"
            rows.append(
                [kinetics, size, rate, rate / TARGET, stats["yes"] / stats["networks"], undecided]
            )
    what = "generation + solve" + (" + encoding" if encoders else "")
    print_table(
        f"Metabolic networks, {what}, rates 0.1..1 (generator defaults), batches of "
        f"{args.batch}, best of 3",
        ["kinetics", "nodes", "networks/s/core", "x target", "with equilibrium", "undecided"],
        rows,
    )


def balanced_table(args, family: str, density: float) -> None:
    import numpy as np

    from synthmath.tasks.metabolic.graphs import KINETICS
    from synthmath.tasks.metabolic.task import MetabolicTask

    samplers = ("rejection", "fast")
    rows = []
    for kinetics in KINETICS:
        for size in (int(s) for s in args.balanced_sizes.split(",")):
            tasks, rngs, rates = {}, {}, {s: [] for s in samplers}
            for name in samplers:
                tasks[name] = MetabolicTask(
                    kinetics=kinetics, answer="existence", nodes=size, family=family,
                    density=density, sampler=name,
                )  # fmt: skip
                rngs[name] = np.random.default_rng(1)
                tasks[name].sample(args.batch, rngs[name])  # warm up
            for _ in range(args.repeats):  # alternate, so that load changes hit both alike
                for name in samplers:
                    task, rng = tasks[name], rngs[name]
                    rates[name].append(
                        cpu_rate(lambda: len(task.sample(args.batch, rng)["exists"]), args.min_time)
                    )
            old, new = (statistics.median(rates[s]) for s in samplers)
            rows.append([kinetics, size, old, new, new / old, new / TARGET])
    print_table(
        f"Balanced existence shards (MetabolicTask.sample, 50% YES, task defaults: rates "
        f"0.05..1, km 0.1..1), {args.batch} examples per call, median of {args.repeats} "
        f"alternating repeats",
        [
            "kinetics",
            "nodes",
            "rejection ex/s/core",
            "fast ex/s/core",
            "fast / rejection",
            "fast x target",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,20", help="node counts, table 1 (comma list)")
    parser.add_argument("--balanced-sizes", default="10", help="node counts, table 2")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--family", default=None, help="default: every family, mixed")
    parser.add_argument("--density", type=float, default=None, help="default: the generator's")
    parser.add_argument("--min-time", type=float, default=1.0, help="CPU seconds per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="alternating repeats, table 2")
    parser.add_argument(
        "--with-encoding", action="store_true", help="table 1: also encode to token ids"
    )
    parser.add_argument("--only", choices=("generation", "balanced"), help="print one table")
    args = parser.parse_args()
    set_threads(1)
    from synthmath.tasks.metabolic import families, graphs

    family = args.family or ",".join(families.FAMILIES)
    density = graphs.DEFAULT_DENSITY if args.density is None else args.density
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {cpu_model()}; {machine()}; 1 thread; rates per second of process CPU time")
    print(f"families: {family}; density {density}")
    if args.only != "balanced":
        generation_table(args, family, density)
    if args.only != "generation":
        balanced_table(args, family, density)


if __name__ == "__main__":
    main()
