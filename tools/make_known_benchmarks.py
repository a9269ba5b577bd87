"""Regenerate src/synthmath/tasks/regression/known/{odebench,strogatz,feynman}.json from the
tables transcribed in tools/known_benchmarks/*.md.

Each component's infix text is parsed by synthmath.expressions.infix (our own parser, no
SymPy) into the engine's raw prefix tokens, stored beside the text. Strogatz initial
conditions are drawn with a fixed seed in the box of each system (see strogatz.md) and
redrawn until the system integrates with the benchmark's solver. Feynman formulas are parsed
in their own variable names, mapped to x_0, x_1, ... in the table's order. The output is strict JSON;
rerunning gives the same files byte for byte (``--check`` says whether they are up to date).

    PYTHONPATH=src python tools/make_known_benchmarks.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from synthmath.expressions.infix import (
    Names,
    indexed_names,
    parse_infix,
    parse_system,
    placeholders,
)
from synthmath.tasks.regression.benchmarks import KNOWN_DIR, Solver, integrate, parse_benchmark
from synthmath.tasks.regression.symreg_bench import parse_feynman

HERE = Path(__file__).resolve().parent / "known_benchmarks"
SEED = 0
#: systems the ODEBench source marks chaotic
CHAOTIC = frozenset({56, 59, 60, 61})
SOLVER = {"method": "LSODA", "rtol": 1e-5, "atol": 1e-7, "first_step": 1e-6, "t_span": [0, 10]}
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def table(text: str, header: str) -> list[dict[str, str]]:
    """The rows of the markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    keys = [c.strip() for c in _CELL_SPLIT.split(lines[start])[1:-1]]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(line)[1:-1]]
        rows.append(dict(zip(keys, cells, strict=True)))
    return rows


def numbers(cell: str) -> list[float]:
    return [float(v) for v in cell.split(",")] if cell.strip() else []


def equations(text: str, dim: int, n_constants: int, where: str) -> list[dict[str, str]]:
    """Per component the infix text and its prefix tokens; every constant must be used."""
    parts = [p.strip() for p in text.split("|")]
    trees = parse_system(text, indexed_names(dim, n_constants), dim)
    used = {name for tree in trees for name in placeholders(tree)}
    if used != {f"c_{k}" for k in range(n_constants)}:
        raise SystemExit(f"{where}: constants used {sorted(used)}, given {n_constants}")
    return [{"infix": p, "prefix": " ".join(t)} for p, t in zip(parts, trees, strict=True)]


def odebench() -> dict:
    text = (HERE / "odebench.md").read_text(encoding="utf-8")
    notes = {int(r["id"]): r for r in table(text, "| id | source |")}
    systems = []
    for row in table(text, "| id | D |"):
        sid, dim = int(row["id"]), int(row["D"])
        constants = numbers(row["constants"])
        extra = notes[sid]
        systems.append(
            {
                "id": sid,
                "name": row["name"],
                "dim": dim,
                "equations": equations(row["equations"], dim, len(constants), f"odebench {sid}"),
                "constants": constants,
                "initial_conditions": [
                    numbers(p.strip()[1:-1]) for p in row["initial conditions"].split(";")
                ],
                "chaotic": sid in CHAOTIC,
                "source": extra["source"],
                "variables": extra["variables"],
                "state_constraints": extra["constraints on x"],
                "constant_constraints": extra["constraints on c"],
            }
        )
    return {
        "benchmark": "odebench",
        "description": "ODEBench: 63 ODE systems of dimension 1 to 4 with one set of constants "
        "and two initial conditions each (126 trajectories)",
        "source": "S. d'Ascoli et al., ODEFormer (ICLR 2024); sdascoli/odeformer @c919301 "
        "odeformer/odebench/strogatz_equations.py; mostly from S. Strogatz, Nonlinear "
        "Dynamics and Chaos (page in each system's source)",
        "license": "MIT (sdascoli/odeformer)",
        "solver": {**SOLVER, "n_points": 512},
        "systems": systems,
    }


def draw_initial(system: dict, box: list[tuple[float, float]], solver: Solver) -> list:
    """4 initial conditions in ``box`` (seeded by the system id) that integrate."""
    rng = np.random.default_rng([SEED, system["id"]])
    out: list[list[float]] = []
    while len(out) < 4:
        y0 = [round(float(rng.uniform(lo, hi)), 3) for lo, hi in box]
        probe = parse_benchmark({"systems": [{**system, "initial_conditions": [y0]}]})
        traj = integrate(probe.systems[0], y0, solver)
        if traj.success and np.isfinite(traj.states).all():
            out.append(y0)
    return out


def strogatz() -> dict:
    text = (HERE / "strogatz.md").read_text(encoding="utf-8")
    solver_settings = {**SOLVER, "n_points": 100}
    solver = parse_benchmark(
        {"solver": solver_settings, "systems": [_TRIVIAL]}, "strogatz solver"
    ).solver
    systems = []
    for row in table(text, "| id | key |"):
        sid, dim = int(row["id"]), int(row["D"])
        constants = numbers(row["constants"])
        box = [tuple(float(v) for v in side.strip()[1:-1].split(",")) for side in
               row["box for initial conditions"].split(" x ")]  # fmt: skip
        system = {
            "id": sid,
            "key": row["key"],
            "name": row["name"],
            "dim": dim,
            "equations": equations(row["equations"], dim, len(constants), f"strogatz {sid}"),
            "constants": constants,
            "initial_conditions": [],
            "chaotic": False,
            "source": f"PMLB strogatz_{row['key']}1/2; ODEFormer's hard-coded ground truth",
        }
        system["initial_conditions"] = draw_initial(system, box, solver)
        system["notes"] = (
            "initial conditions drawn by us (seed 0) in the box "
            f"{row['box for initial conditions']}: PMLB's are not known offline (INFERRED)"
        )
        systems.append(system)
    return {
        "benchmark": "strogatz",
        "description": "The 7 two-dimensional Strogatz systems of PMLB (ODE-Strogatz) that "
        "ODEFormer evaluates, 4 trajectories each on linspace(0, 10, 100)",
        "source": "W. La Cava et al., PMLB / ODE-Strogatz; ground truths as hard-coded in "
        "sdascoli/odeformer @c919301 (evaluate.py)",
        "license": "public formulas; initial conditions ours",
        "solver": solver_settings,
        "systems": systems,
    }


def feynman() -> dict:
    text = (HERE / "feynman.md").read_text(encoding="utf-8")
    equations = []
    for row in table(text, "| id | output |"):
        variables = []
        for part in row["variables"].split(";"):
            name, low, high = part.split()
            variables.append({"name": name, "low": float(low), "high": float(high)})
        names = Names({v["name"]: f"x_{j}" for j, v in enumerate(variables)})
        tree = parse_infix(row["formula"], names)
        used = {t for t in tree if t.startswith("x_")}
        if len(used) != len(variables):
            raise SystemExit(f"feynman {row['id']}: uses {len(used)} of {len(variables)} variables")
        equations.append(
            {
                "id": row["id"],
                "output": row["output"],
                "infix": row["formula"],
                "prefix": " ".join(tree),
                "variables": variables,
            }
        )
    return {
        "benchmark": "feynman",
        "description": "AI Feynman equations (at most 10 inputs, symreg operators only); points "
        "are drawn uniformly in each variable's range",
        "source": "S.-M. Udrescu and M. Tegmark, AI Feynman, Science Advances 6 (2020), "
        "FeynmanEquations.csv (formulas and ranges); transcription in "
        "tools/known_benchmarks/feynman.md",
        "license": "public formulas",
        "equations": equations,
    }


_TRIVIAL = {
    "id": 1,
    "name": "",
    "dim": 1,
    "equations": [{"prefix": "x_0"}],
    "constants": [],
    "initial_conditions": [[0]],
}


def dumps(obj: dict) -> str:
    """Strict JSON, two-space indent, lists of numbers on one line."""
    text = json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False)
    return (
        re.sub(
            r"\[\s*([-+0-9.eE,\s]*?)\s*\]",
            lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",") if v.strip()) + "]",
            text,
        )
        + "\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether files are current")
    args = parser.parse_args()
    stale = []
    for name, build in (("odebench", odebench), ("strogatz", strogatz), ("feynman", feynman)):
        text = dumps(build())
        check = parse_feynman if name == "feynman" else parse_benchmark
        check(json.loads(text), f"{name}.json")  # the loader accepts it
        path = KNOWN_DIR / f"{name}.json"
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            print(f"{path}: up to date")
        elif args.check:
            stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"{path}: written")
    if stale:
        print(f"out of date: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
