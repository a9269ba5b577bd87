"""Drawing labelled examples of each problem (differential.md "Problems").

One example: draw the system size (and the number of controls), then draw systems of that
size until one is accepted: the labels are computed from its Jacobians at the point, the
|lambda| < 1e-6 marginal systems are rejected (stability, convergence), the qualitative
classes are balanced to 50% per system size by rejection once 10 examples of that size exist
(stability and control; control_t with ``balance``), a feedback is kept only if its rounded K stabilises
A + B K, and an input longer than ``max_len`` tokens is rejected. Attempts and rejections
are counted by reason in a :class:`collections.Counter`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from synthmath.codecs.numbers import round_sig
from synthmath.core.errors import DataError
from synthmath.expressions import numeric
from synthmath.expressions.operators import Tree, float_token
from synthmath.tasks.differential import labels
from synthmath.tasks.differential.pde import Pde, minimum, sample_pde
from synthmath.tasks.differential.systems import (
    System,
    control_names,
    jacobian_sympy,
    sample_system,
    state_names,
)
from synthmath.tasks.differential.taylor import time_varying_rank_taylor
from synthmath.tasks.differential.timevarying import time_varying_rank

PROBLEMS = ("stability", "convergence", "control", "control_t", "feedback", "pde")
WITH_CONTROLS = ("control", "control_t", "feedback")
#: problems whose answer is YES/NO
QUALITATIVE = ("stability", "control", "control_t")
#: default system sizes and points per problem
SIZES = {"stability": (2, 6), "convergence": (2, 6), "control": (3, 6), "control_t": (2, 3),
         "feedback": (3, 6), "pde": (2, 6)}  # fmt: skip
POINTS = {"stability": 0.01, "convergence": 0.01, "control": 0.9, "control_t": 0.5,
          "feedback": 0.9, "pde": 0.0}  # fmt: skip
#: |lambda| below this is a marginal system: rejected (INFERRED)
MARGINAL = 1e-6
#: Jacobian entries and speeds beyond this are rejected (P10 writes exponents up to 100)
MAX_ABS = 1e90
#: attempts per accepted example before generation stops with an error
MAX_ATTEMPTS = 20_000
#: the balancing by rejection starts after this many examples of a size (released)
BALANCE_AFTER = 10
#: significant digits of K (released ``jacobian_precision`` 2)
K_DIGITS = 3


@dataclass(frozen=True)
class GenConfig:
    problem: str
    sizes: tuple[int, int]
    point: float
    balance: bool
    shift: bool
    gramian: str
    normalize_b: bool
    use_sympy: bool
    max_len: int
    released_labeller: bool = False


@dataclass(frozen=True)
class Example:
    equations: tuple[Tree, ...]  # as the model reads them (shifted with ``shift``)
    n_ops: tuple[int, ...]
    a: np.ndarray
    b: np.ndarray
    speed: float
    deficit: int
    k: np.ndarray | None
    #: pde: the problem, our infimum and the released single-start one (None: failed)
    pde: tuple[Pde, float, float | None] | None = None


def ops_range(problem: str, n: int, p: int) -> tuple[int, int]:
    """Operator counts per equation: U[3, 2n + 2] (stability) or U[n + p, 2(n + p) + 2]."""
    if problem in WITH_CONTROLS:
        return n + p, 2 * (n + p) + 2
    return 3, 2 * n + 2


def shifted(equations: tuple[Tree, ...], n: int, p: int, point: float) -> tuple[Tree, ...]:
    """f - f(x_e) for each equation (``shift: true``; the constant is a float leaf)."""
    env = {v: np.full(1, point) for v in state_names(n) + control_names(p)}
    out = []
    for tree in equations:
        value = float(numeric.compile(tree)(env)[0])
        out.append(("sub", *tree, float_token(value)))
    return tuple(out)


def label(cfg: GenConfig, system: System) -> tuple[Example | None, str]:
    """The labelled example of an accepted system, or None and the rejection reason."""
    a, b = system.a, system.b
    if cfg.use_sympy:
        a, b = jacobian_sympy(system.equations, system.n, system.p, cfg.point)
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            return None, "sympy_undefined"
    with np.errstate(all="ignore"):
        lam = float(labels.max_real_eig(a)) if np.abs(a).max() < MAX_ABS else np.nan
    deficit, k = 0, None
    if not abs(lam) < MAX_ABS:
        return None, "out_of_range"
    if cfg.problem in ("stability", "convergence"):
        if abs(lam) < MARGINAL:
            return None, "marginal"
    elif cfg.problem == "control_t":
        ranker = time_varying_rank if cfg.use_sympy else time_varying_rank_taylor
        rank = ranker(system.equations, system.n, system.p, cfg.point)
        if rank is None or rank < 0:
            return None, "time_varying_undefined" if rank is None else "timeout"
        deficit = system.n - rank
    else:
        try:
            deficit = labels.rank_deficit(a, b)
        except ValueError:
            return None, "kalman_overflow"
        if cfg.problem == "feedback":
            if deficit:
                return None, "not_controllable"
            try:
                with np.errstate(all="ignore"):
                    gain = labels.feedback_gain(a, b, cfg.gramian, cfg.normalize_b)
            except np.linalg.LinAlgError:
                return None, "singular_gramian"
            if not np.isfinite(gain).all() or np.abs(gain).max() >= MAX_ABS:
                return None, "gain_not_finite"
            k = round_sig(gain, K_DIGITS)
            if not labels.closed_loop_max_real(a, b, k, cfg.normalize_b) < 0:
                return None, "not_stabilising"
    equations = system.equations
    if cfg.shift:
        equations = shifted(equations, system.n, system.p, cfg.point)
    return Example(equations, system.n_ops, a, b, -lam, deficit, k), ""


def positive(cfg: GenConfig, ex: Example) -> bool:
    """The qualitative class balanced by rejection: stable, or controllable."""
    return ex.speed > 0 if cfg.problem == "stability" else ex.deficit == 0


def draw_example(
    cfg: GenConfig,
    rng: np.random.Generator,
    counts: dict[int, list[int]],
    length: Callable[[Example], int],
    stats: Counter,
) -> Example:
    """One accepted example (see module docstring); ``counts[n]`` = [negatives, positives]
    accepted so far of size n (balancing), ``length(example)`` its input tokens."""
    lo, hi = cfg.sizes
    n = int(rng.integers(lo, hi + 1))
    p = int(rng.integers(1, n // 2 + 1)) if cfg.problem in WITH_CONTROLS else 0
    balance = cfg.balance and cfg.problem in QUALITATIVE
    for _ in range(MAX_ATTEMPTS):
        stats["attempts"] += 1
        if cfg.problem == "pde":
            problem = sample_pde(n, rng)
            single, ours = minimum(problem, rng)
            stats["released_failed"] += single is None
            if cfg.released_labeller:  # the release: its single run, failures discarded
                ours = single
            if ours is None:
                stats["rejected_optimiser_failed"] += 1
                continue
            empty = np.zeros((n, 0))
            ex = Example((), (0,), np.zeros((n, n)), empty, 0.0, 0, None, (problem, ours, single))
            if length(ex) > cfg.max_len:
                stats["rejected_too_long"] += 1
                continue
            stats["accepted"] += 1
            return ex
        ops = ops_range(cfg.problem, n, p)
        system = sample_system(n, p, ops, cfg.point, rng, time=cfg.problem == "control_t")
        if system is None:
            stats["rejected_zero_column"] += 1
            continue
        ex, why = label(cfg, system)
        if ex is None:
            stats[f"rejected_{why}"] += 1
            continue
        if length(ex) > cfg.max_len:
            stats["rejected_too_long"] += 1
            continue
        if balance:
            seen = counts.setdefault(n, [0, 0])
            cls = int(positive(cfg, ex))
            if sum(seen) >= BALANCE_AFTER and seen[cls] > seen[1 - cls]:
                stats["rejected_balance"] += 1
                continue
            seen[cls] += 1
        stats["accepted"] += 1
        return ex
    raise DataError(
        f"differential {cfg.problem}: no system of size {n} accepted in {MAX_ATTEMPTS} "
        f"attempts; rejections: {dict(stats)}"
    )
