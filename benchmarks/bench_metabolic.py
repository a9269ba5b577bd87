"""Metabolic networks per second per core: random generation plus the exact equilibrium solve.

One thread (numpy/BLAS and torch). Each measurement draws a batch of networks of one size
(every family mixed, uniformly), solves it and, with ``--with-encoding``, also encodes it to
token ids through the ``metabolic`` task (existence answers). Also printed: the fraction of
networks with an equilibrium and the fraction the Michaelis-Menten solver left undecided.
Target (the issue): at least 10,000 networks/s/core, linear kinetics, 10 nodes.

    .venv/bin/python benchmarks/bench_metabolic.py [--sizes 10,20] [--batch 4096]
        [--family erdos_renyi,...] [--with-encoding]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import best_rate, machine, print_table, set_threads  # noqa: E402

TARGET = 10_000.0  # networks/s/core, linear kinetics at 10 nodes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,20", help="node counts (comma list)")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--family", default=None, help="default: every family, mixed")
    parser.add_argument("--density", type=float, default=None, help="default: the generator's")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument(
        "--with-encoding", action="store_true", help="also encode inputs and answers to token ids"
    )
    args = parser.parse_args()
    set_threads(1)
    import numpy as np

    from synthmath.tasks.metabolic import families, graphs
    from synthmath.tasks.metabolic.solvers import solve

    family = args.family or ",".join(families.FAMILIES)
    density = graphs.DEFAULT_DENSITY if args.density is None else args.density
    encoders = {}
    if args.with_encoding:
        if importlib.util.find_spec("synthmath.tasks.metabolic.task") is None:
            parser.error("--with-encoding: synthmath.tasks.metabolic.task does not exist yet")
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

            rate = best_rate(step, repeats=3, min_time=args.min_time)
            rows.append(
                [
                    kinetics,
                    size,
                    rate,
                    rate / TARGET,
                    stats["yes"] / stats["networks"],
                    f"{stats['undecided'] / stats['networks']:.1e}",
                ]
            )
    what = "generation + solve" + (" + encoding" if encoders else "")
    print_table(
        f"Metabolic networks, {what}, families {family}, density {density}, "
        f"batches of {args.batch}, 1 thread ({machine()})",
        ["kinetics", "nodes", "networks/s/core", "x target", "with equilibrium", "undecided"],
        rows,
    )


if __name__ == "__main__":
    main()
