"""Symbolic generation rate per core, ours beside the released code, measured in one run.

For each problem one fresh process with one thread generates for --seconds: first ours (the
`symbolic` task, preset lc_released, its attempts and time limits), then the released
generator of Lample & Charton (facebookresearch/SymbolicMathematics, run unmodified from
--peer, an extracted checkout; it needs numexpr), alternating problem by problem so that the
noise of a shared machine hits both. Printed per problem: accepted examples/s, attempts,
timeouts and their share of the time, model-token lengths (mean+-std) beside the paper's
Table 1, the ratio ours/released (accepted per second), and the commonest rejections.

    git --git-dir=<mirror of SymbolicMathematics> archive HEAD | tar -x -C /tmp/peer_lc
    .venv/bin/python benchmarks/bench_symbolic_generation.py --seconds 60 --peer /tmp/peer_lc

Both sides start cold (SymPy cache, IBP's cache of known primitives), so IBP's rate is the
early, cache-warming one. The released code is run, never copied (CC BY-NC).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table  # noqa: E402

PROBLEMS = ("prim_fwd", "prim_bwd", "prim_ibp", "ode1", "ode2")
#: paper Table 1: input and output tokens, mean and std
PAPER = {
    "prim_fwd": (18.9, 6.9, 49.6, 48.3),
    "prim_bwd": (70.2, 47.8, 21.3, 8.3),
    "prim_ibp": (17.5, 9.1, 26.4, 11.3),
    "ode1": (123.6, 115.7, 23.0, 15.2),
    "ode2": (149.1, 130.2, 24.3, 14.9),
}
#: the released README's generator settings (max_ops_G keeps its default, 4, as ours)
PEER_ARGS = [
    "--max_ops", "15", "--max_int", "5", "--positive", "true", "--leaf_probs", "0.75,0,0.25,0",
    "--n_variables", "1", "--n_coefficients", "0", "--operators",
    "add:10,sub:3,mul:10,div:5,sqrt:4,pow2:4,pow3:2,pow4:1,pow5:1,ln:4,exp:4,sin:4,cos:4,"
    "tan:4,asin:1,acos:1,atan:1,sinh:1,cosh:1,tanh:1,asinh:1,acosh:1,atanh:1",
]  # fmt: skip
ONE_THREAD = {
    v: "1"
    for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
}
MARK = "RESULT "


# ---- workers (each in its own process) --------------------------------------------------
def run_ours(problem: str, seconds: float, seed: int) -> dict:
    """Our task's attempts until `seconds` have passed (the attempt running then finishes)."""
    import numpy as np

    from synthmath.tasks.registry import make_task

    task = make_task("symbolic", {"problem": problem})
    rows, seeds = [], np.random.default_rng(seed)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        s, a = int(seeds.integers(2**63 - 1)), 0
        while time.perf_counter() - start < seconds:
            row = task.attempt(problem, s, a)
            if isinstance(row, dict):
                rows.append(row)
                break
            a += 1
    elapsed = time.perf_counter() - start
    stats = task.stats
    src = tgt = []
    if rows:
        raw = task.rows_to_raw(rows)
        src = [len(t) for t in task.src_tokens(raw)]
        tgt = [len(t) for t in task.codec.encode_many(raw["tgt"])]
    return {
        "seconds": elapsed,
        "attempts": stats["attempts"],
        "accepted": stats["accepted"],
        "timeouts": stats["timeouts"],
        "timeout_seconds": stats["timeout_seconds"],
        "rejected": dict(stats["rejected"]),
        "src": src,
        "tgt": tgt,
    }


def run_peer(problem: str, seconds: float, seed: int, path: str) -> dict:
    """The released generator's own gen_* calls, with the retry loop of its EnvDataset."""
    sys.path.insert(0, path)
    import numpy as np
    from src.envs.char_sp import CharSPEnvironment
    from src.utils import TimeoutError as PeerTimeout

    parser = argparse.ArgumentParser()
    CharSPEnvironment.register_args(parser)
    params = parser.parse_args(PEER_ARGS)
    params.max_len = 512  # registered by its main.py (default 512)
    env = CharSPEnvironment(params)
    env.worker_id = 0
    rng = np.random.RandomState([0, 0, seed])  # worker 0, rank 0, env_base_seed
    gen = {
        "prim_fwd": lambda: env.gen_prim_fwd(rng),
        "prim_bwd": lambda: env.gen_prim_bwd(rng, predict_primitive=True),
        "prim_ibp": lambda: env.gen_prim_ibp(rng),
        "ode1": lambda: env.gen_ode1(rng),
        "ode2": lambda: env.gen_ode2(rng),
    }[problem]
    rejected, src, tgt = Counter(), [], []
    attempts = timeouts = 0
    timeout_seconds = 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        attempts += 1
        t0 = time.perf_counter()
        try:
            xy = gen()
        except PeerTimeout:
            timeouts += 1
            timeout_seconds += time.perf_counter() - t0
            rejected["timeout"] += 1
            continue
        except Exception as err:  # its EnvDataset logs these and retries
            rejected[f"error_{type(err).__name__}"] += 1
            continue
        if xy is None:
            rejected["returned None"] += 1
            continue
        src.append(len(xy[0]))
        tgt.append(len(xy[1]))
    return {
        "seconds": time.perf_counter() - start,
        "attempts": attempts,
        "accepted": len(src),
        "timeouts": timeouts,
        "timeout_seconds": timeout_seconds,
        "rejected": dict(rejected),
        "src": src,
        "tgt": tgt,
    }


def validity_agreement(n: int, seed: int, path: str) -> list[list[str]]:
    """Our numeric check of drawn trees beside the released ``is_valid_expr`` on the same
    trees (lc_released, 4..15 operators as BWD draws F): agreement and rejection rates."""
    sys.path.insert(0, path)
    import numpy as np
    from src.envs.char_sp import CharSPEnvironment, is_valid_expr

    from synthmath.expressions.numeric import VALIDITY_CHECKS, is_valid_released
    from synthmath.expressions.operators import get_preset, is_int
    from synthmath.expressions.sampling import sample_trees

    parser = argparse.ArgumentParser()
    CharSPEnvironment.register_args(parser)
    params = parser.parse_args(PEER_ARGS)
    params.max_len = 512  # registered by its main.py (default 512)
    env = CharSPEnvironment(params)
    rng = np.random.default_rng(seed)
    trees = [t for t in sample_trees(get_preset("lc_released"), rng.integers(4, 16, n), rng) if t]
    peer = []
    for tree in trees:
        tokens = []
        for t in tree:  # our raw integers i<value> -> the released INT+ digits
            tokens += (
                ["INT+" if int(t[1:]) >= 0 else "INT-", *str(abs(int(t[1:])))] if is_int(t) else [t]
            )
        with np.errstate(all="ignore"):
            try:
                peer.append(bool(is_valid_expr(env.prefix_to_infix(tokens))))
            except Exception:  # noqa: BLE001 - the released loop counts an error as a rejection
                peer.append(False)
    rows = [["released is_valid_expr", f"{1 - np.mean(peer):.3%}", "-"]]
    for check in VALIDITY_CHECKS:
        ours = [is_valid_released(t, check=check) for t in trees]
        agree = np.mean([a == b for a, b in zip(ours, peer, strict=True)])
        rows.append([f"ours, validity={check}", f"{1 - np.mean(ours):.3%}", f"{agree:.3%}"])
    return rows


# ---- driver -----------------------------------------------------------------------------
def measure(side: str, problem: str, args: argparse.Namespace) -> dict:
    """Run one worker in a fresh process (one thread); its result dict, or {'error': ...}."""
    cmd = [sys.executable, __file__, "--worker", side, "--problems", problem]
    cmd += ["--seconds", str(args.seconds), "--seed", str(args.seed)]
    if side == "peer":
        cmd += ["--peer", str(args.peer)]
    env = {**os.environ, **ONE_THREAD}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=args.seconds + 300
        )
    except subprocess.TimeoutExpired:
        return {"error": "did not finish"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail[:200]}"}


def _mean_std(values: list[int]) -> str:
    if not values:
        return "-"
    n = len(values)
    mean = sum(values) / n
    std = (sum((v - mean) ** 2 for v in values) / n) ** 0.5
    return f"{mean:.1f}+-{std:.1f}"


def _rate(r: dict | None) -> float | None:
    return None if r is None or "error" in r else r["accepted"] / r["seconds"]


def _cells(r: dict | None) -> list[str]:
    """rate, attempts/accepted, timeouts (time share), in, out."""
    rate = _rate(r)
    if rate is None:
        return ["-"] * 5
    share = 100 * r["timeout_seconds"] / r["seconds"]
    return [
        f"{rate:.3g}",
        f"{r['attempts']}/{r['accepted']}",
        f"{r['timeouts']} ({share:.0f}%)",
        _mean_std(r["src"]),
        _mean_std(r["tgt"]),
    ]


def _top(rejected: dict, k: int = 4) -> str:
    items = Counter(rejected).most_common(k)
    return ", ".join(f"{name} {n}" for name, n in items) or "none"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--seconds", type=float, default=60.0, help="per problem and side")
    parser.add_argument("--peer", type=Path, help="extracted SymbolicMathematics checkout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--validity",
        type=int,
        default=0,
        metavar="N",
        help="also compare the numeric validity check with the released one on N trees",
    )
    parser.add_argument("--worker", choices=("ours", "peer"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    bad = [p for p in problems if p not in PROBLEMS]
    if bad or not problems:
        parser.error(f"--problems: unknown {bad[0] if bad else '(none)'!r}; allowed: {PROBLEMS}")
    if args.worker:
        if args.worker == "ours":
            result = run_ours(problems[0], args.seconds, args.seed)
        else:
            result = run_peer(problems[0], args.seconds, args.seed, str(args.peer))
        print(MARK + json.dumps(result), flush=True)
        return

    note = None
    if args.peer is None or not (args.peer / "src" / "envs" / "char_sp.py").is_file():
        note = f"released code: not run (--peer {args.peer or 'not given'}: no src/envs/char_sp.py)"
    else:
        try:
            import numexpr  # noqa: F401
        except ImportError:
            note = "released code: not run (it imports numexpr: pip install numexpr)"
    results = {}
    for p in problems:
        ours = measure("ours", p, args)
        peer = None if note else measure("peer", p, args)
        results[p] = (ours, peer)
        print(f"{p}: ours {_cells(ours)[:3]}, released {_cells(peer)[:3]}", flush=True)

    rows, notes = [], []
    for p, (ours, peer) in results.items():
        o, q = _cells(ours), _cells(peer)
        ratio, mine, theirs = "-", _rate(ours), _rate(peer)
        if mine is not None and theirs is not None:
            ratio = f"{mine / theirs:.2f}" if theirs > 0 else ("inf" if mine > 0 else "-")
        pi, ps, po, pt = PAPER[p]
        rows.append([p, o[0], q[0], ratio, o[1], q[1], o[2], q[2], o[3], q[3], f"{pi}+-{ps}",
                     o[4], q[4], f"{po}+-{pt}"])  # fmt: skip
        for side, r in (("ours", ours), ("released", peer)):
            if r is not None:
                notes.append(f"- {p}, {side}: " + (r.get("error") or _top(r["rejected"])))
    header = [
        "problem", "ours ex/s", "released ex/s", "ours/released", "ours att/acc",
        "released att/acc", "ours timeouts (time)", "released timeouts (time)", "ours in",
        "released in", "paper in", "ours out", "released out", "paper out",
    ]  # fmt: skip
    import numpy
    import sympy

    print_table(
        f"Symbolic generation, accepted examples/s per process, one thread, {args.seconds:g} s "
        f"per problem and side ({machine()}, SymPy {sympy.__version__}, numpy "
        f"{numpy.__version__})",
        header,
        rows,
    )
    print(f"\ncommand: {' '.join([Path(sys.executable).name, *sys.argv])}")
    if note:
        print(note)
    print("lengths: model tokens, mean+-std; paper: Table 1. Commonest rejections:")
    print("\n".join(notes))
    if args.validity and not note:
        print_table(
            f"Numeric validity check on the same {args.validity} drawn trees (lc_released, 4..15 "
            "operators)",
            ["check", "rejected", "agrees with released"],
            validity_agreement(args.validity, args.seed, str(args.peer)),
        )


if __name__ == "__main__":
    main()
