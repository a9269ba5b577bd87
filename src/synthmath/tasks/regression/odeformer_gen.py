"""Generation of ``odeformer`` examples as the ODEFormer release does (specs/regression.md,
"odeformer generation"; d'Ascoli et al. 2024).

One attempt, every draw from the ``rng`` passed in (never a global generator):

1. dimension D ~ U{1..max_dim}; per component b ~ U{1..5} binary operators, a unit-weight
   random binary tree (add 3, mul 1) whose leaves are x_0..x_{D-1} (uniform; no constants,
   no ``t``: autonomous);
2. unaries: every non-root node whose subtree has fewer than 7 tokens draws sin 1, inv 1,
   pow2 1 or id 3, where ``id`` inserts nothing (the release's ``id`` duplicated a child and
   dropped a sibling); the inserted unaries are pruned at random to u ~ U{0..3};
3. prefactors: each operand of ``add`` that is not itself an ``add`` gets a factor, each unary
   argument that is not an ``add`` becomes ``a + b (.)``; a component that got none is
   multiplied by one constant; constants are random sign x 10^U(log10 0.05, log10 20);
4. SymPy: the tree is built with the engine's constructors (evaluation on, no ``simplify``:
   the release's ``expand``/``simplify`` flags are off) and written back; an error or more
   than twice the prefix length rejects (``simplify``); constants are rounded to ``P10000``
   (the answer tokens are then exactly the system integrated); an operator outside the
   output vocabulary (``vocabulary``) or an answer over ``max_answer_tokens`` (``length``)
   rejects;
5. y0 ~ N(0, I_D); n ~ U{50..200} times ``linspace(1, 10, n)``; ``solve_ivp`` RK45 (its
   default tolerances, as the release) with a terminal event at max |x_d| = 100; rejected:
   a stop before the end (``diverged``), more than ``max_rhs_evals`` right-hand-side calls
   (``budget``: deterministic, where the release had a 0.2 s wall cap per sample), a
   generous wall cap (``wall``), a warning, a non-finite value or |x| > 1e100 (``integration``);
6. stationarity: w.p. 0.9 reject (``stationary``) when in every dimension the range over the
   last quarter of the points divided by the window length (points) is below 1e-3;
7. accuracy (ours): the release's loose RK45 can step over a pole (x' = -1/(x - 3.6) reaches
   it in finite time; rtol 1e-3 jumps across), so an accepted system is integrated again at
   rtol 1e-6, atol 1e-9 (4x the budget), which is what is stored; it must integrate and
   agree with the loose run within 2% of each dimension's range (``inaccurate``). Steps 5-6
   run before step 4 (:func:`attempt`);
8. generalisation: a second y0' ~ N(0, I_D) integrated precisely on the same times (up to
   3 draws; ``generalisation`` when none integrates).

Corruption of the observations (served by the task, drawn from each example's own stream) is
:func:`corrupt`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from synthmath.expressions.errors import UnsupportedExpression
from synthmath.expressions.operators import (
    OPERATORS,
    Preset,
    Tree,
    float_token,
    n_operators,
    subtree_end,
)
from synthmath.expressions.prefix import PrefixCodec
from synthmath.expressions.sampling import sample_trees
from synthmath.expressions.sympy_bridge import from_sympy, to_sympy
from synthmath.tasks.regression.odeformer_solve import (
    integrate,
    variables,
)

#: the generated operators, by weight (``id`` is a no-op: it inserts nothing)
BINARY = {"add": 3.0, "mul": 1.0}
UNARY = {"sin": 1.0, "inv": 1.0, "pow2": 1.0, "id": 3.0}
#: unaries go above non-root subtrees with fewer tokens than this
UNARY_SUBTREE_LIMIT = 7
#: constants: random sign x 10^U(log10(1 / MAX_PREFACTOR), log10(MAX_PREFACTOR))
MAX_PREFACTOR = 20.0
GEN_TRIES = 3
#: stored trajectories: RK45 at these tolerances, with this many times the evaluation budget
PRECISE_RTOL = 1e-6
PRECISE_ATOL = 1e-9
PRECISE_EVALS = 4
#: the release's integration must agree with the precise one to this share of the range
AGREEMENT = 0.02
REJECTIONS = (
    "simplify", "vocabulary", "length", "budget", "wall", "diverged", "integration", "stationary",
    "inaccurate", "generalisation",
)  # fmt: skip


@dataclass(frozen=True)
class GenConfig:
    max_dim: int = 6
    min_binary: int = 1
    max_binary: int = 5
    max_unary: int = 3
    min_points: int = 50
    max_points: int = 200
    t_range: tuple[float, float] = (1.0, 10.0)
    max_rhs_evals: int = 5000
    wall_s: float = 5.0
    stationary_prob: float = 0.9
    #: operators the answers may use (the task's output vocabulary)
    operators: frozenset[str] = frozenset()
    #: longest answer in model tokens, separators included
    max_answer_tokens: int = 510


@dataclass(frozen=True)
class Example:
    trees: tuple[Tree, ...]
    times: np.ndarray  # (n,)
    states: np.ndarray  # (n, D) the clean trajectory
    gen_states: np.ndarray  # (n, D) the truth from the generalisation start
    n_binary: int
    n_unary: int

    @property
    def dim(self) -> int:
        return len(self.trees)


@functools.cache
def binary_preset(dim: int) -> Preset:
    """Binary trees of add (3) and mul (1) over the leaves x_0..x_{dim-1}."""
    return Preset(
        f"odeformer_binary_{dim}",
        "ODEFormer release: add 3, mul 1; leaves x_j uniform",
        max_ops=5,
        unary={},
        binary=BINARY,
        variables=variables(dim),
        ints=(),
        p_variable=1.0,
        p_int=0.0,
    )


def draw_constant(rng: np.random.Generator) -> float:
    """Random sign x 10^U(log10 0.05, log10 20)."""
    sign = -1.0 if rng.random() < 0.5 else 1.0
    bound = np.log10(MAX_PREFACTOR)
    return sign * 10.0 ** rng.uniform(-bound, bound)


def insert_unaries(tree: Tree, count: int, rng: np.random.Generator) -> tuple[Tree, int]:
    """Step 2 of the module docstring: ``(tree, number of unaries kept)``."""
    names, weights = list(UNARY), np.array(list(UNARY.values()))
    slots = [i for i in range(1, len(tree)) if subtree_end(tree, i) - i < UNARY_SUBTREE_LIMIT]
    drawn = rng.choice(len(names), size=len(slots), p=weights / weights.sum())
    inserted = [(i, names[k]) for i, k in zip(slots, drawn.tolist()) if names[k] != "id"]
    if len(inserted) > count:
        keep = rng.choice(len(inserted), size=count, replace=False)
        inserted = [inserted[k] for k in sorted(keep.tolist())]
    wrap = dict(inserted)
    out: list[str] = []
    for i, token in enumerate(tree):
        if i in wrap:
            out.append(wrap[i])
        out.append(token)
    return tuple(out), len(inserted)


def add_prefactors(tree: Tree, rng: np.random.Generator) -> Tree:
    """Step 3 of the module docstring, drawn in prefix order."""

    def const() -> str:
        return float_token(draw_constant(rng))

    out: list[str] = []
    pending = ["plain"]  # per pending operand: the wrapper its parent asks for
    for token in tree:
        role = pending.pop()
        if role == "factor" and token != "add":
            out += ["mul", const()]
        elif role == "affine" and token != "add":
            out += ["add", const(), "mul", const()]
        out.append(token)
        if token == "add":
            pending += ["factor", "factor"]
        elif token in UNARY:
            pending.append("affine")
        elif token == "mul":
            pending += ["plain", "plain"]
    if len(out) == len(tree):
        out = ["mul", const(), *out]
    return tuple(out)


def simplify(tree: Tree, codec: PrefixCodec) -> Tree | None:
    """Step 4: the tree after SymPy's automatic evaluation, constants rounded to the codec's
    precision; None on failure or when it more than doubles the length."""
    try:
        out = codec.round_floats(from_sympy(to_sympy(tree), inv=True))
    except (UnsupportedExpression, ValueError, TypeError, OverflowError, RecursionError):
        return None
    return out if len(out) <= 2 * len(tree) else None


def stationary(states: np.ndarray) -> bool:
    """Every dimension's range over the last quarter / the window length (points) < 1e-3."""
    window = max(1, len(states) // 4)
    last = states[-window:]
    return bool((np.abs(last.max(axis=0) - last.min(axis=0)) / window < 1e-3).all())


def attempt(config: GenConfig, codec: PrefixCodec, rng: np.random.Generator) -> Example | str:
    """One attempt: an :class:`Example`, or the name of the rejection (:data:`REJECTIONS`).

    The release's filters (integration, stationarity) run on the system before SymPy, which
    costs a third of an attempt and is then paid by the ~10% of attempts that pass them; the
    system after SymPy (the same up to the rounding of its constants) is what is integrated
    precisely, stored and checked against that run."""
    dim = int(rng.integers(1, config.max_dim + 1))
    n_binary = rng.integers(config.min_binary, config.max_binary + 1, size=dim)
    drawn, n_unary = [], 0
    for tree in sample_trees(binary_preset(dim), n_binary, rng):
        tree, u = insert_unaries(tree, int(rng.integers(0, config.max_unary + 1)), rng)
        drawn.append(add_prefactors(tree, rng))
        n_unary += u
    n = int(rng.integers(config.min_points, config.max_points + 1))
    times = np.linspace(*config.t_range, n)
    y0 = rng.standard_normal(dim)
    loose = integrate(tuple(drawn), y0, times, max_evals=config.max_rhs_evals, wall_s=config.wall_s)
    if isinstance(loose, str):
        return loose
    if rng.random() < config.stationary_prob and stationary(loose):
        return "stationary"
    trees = tuple(t for t in (simplify(tree, codec) for tree in drawn) if t is not None)
    if len(trees) < dim:
        return "simplify"
    reason = _check_answer(trees, config, codec)
    if reason:
        return reason
    precise = precise_args(config)
    states = integrate(trees, y0, times, **precise)
    if isinstance(states, str) or not agrees(loose, states):
        return "inaccurate"
    for _ in range(GEN_TRIES):
        gen_states = integrate(trees, rng.standard_normal(dim), times, **precise)
        if not isinstance(gen_states, str):
            break
    else:
        return "generalisation"
    return Example(trees, times, states, gen_states, int(n_binary.sum()), n_unary)


def _check_answer(trees: tuple[Tree, ...], config: GenConfig, codec: PrefixCodec) -> str | None:
    """``vocabulary`` (an operator or a number the answer cannot write) or ``length``."""
    if config.operators and any(not _ops(tree) <= config.operators for tree in trees):
        return "vocabulary"
    try:
        length = sum(codec.n_tokens(tree) for tree in trees) + len(trees) - 1
    except ValueError:
        return "vocabulary"
    return "length" if length > config.max_answer_tokens else None


def precise_args(config: GenConfig) -> dict:
    """How stored trajectories are integrated (and hypotheses, to score them): RK45 at
    :data:`PRECISE_RTOL` / :data:`PRECISE_ATOL`, :data:`PRECISE_EVALS` times the budget."""
    return {
        "rtol": PRECISE_RTOL,
        "atol": PRECISE_ATOL,
        "max_evals": PRECISE_EVALS * config.max_rhs_evals,
        "wall_s": config.wall_s,
    }


def agrees(loose: np.ndarray, precise: np.ndarray) -> bool:
    """Every value of the release's integration within :data:`AGREEMENT` of the dimension's
    range (plus 1e-3) of the precise one: a solver that stepped over a pole does not."""
    spread = precise.max(axis=0) - precise.min(axis=0)
    return bool((np.abs(loose - precise) <= AGREEMENT * spread + 1e-3).all())


def _ops(tree: Tree) -> set[str]:
    return {t for t in tree if t in OPERATORS}


def complexity(trees: tuple[Tree, ...]) -> int:
    """Prefix nodes of a system (all components)."""
    return sum(len(t) for t in trees)


def operator_count(trees: tuple[Tree, ...]) -> int:
    return sum(n_operators(t) for t in trees)


# ---- corruption --------------------------------------------------------------------------
#: the levels of random corruption: U{0, 1/4, .., 1} times the configured maximum (the
#: release's grids r in {0, .125, .., .5} and gamma in {0, .025, .., .1})
RANDOM_LEVELS = np.linspace(0.0, 1.0, 5)


def corruption_levels(
    subsample: float, noise: float, random: bool, rng: np.random.Generator
) -> tuple[float, float]:
    """``(r, gamma)``: the configured ones, or (``random``) each drawn from
    :data:`RANDOM_LEVELS` times the configured maximum."""
    if not random:
        return subsample, noise
    r = float(subsample * rng.choice(RANDOM_LEVELS))
    g = float(noise * rng.choice(RANDOM_LEVELS))
    return r, g


def corrupt(
    times: np.ndarray, states: np.ndarray, r: float, gamma: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(times, values)`` observed: ``round(r n)`` points dropped uniformly at random (at
    least 2 kept, in time order), then multiplicative noise x (1 + gamma eps), eps ~ N(0, 1)
    per value (drawn for the kept points only)."""
    n = len(times)
    drop = min(int(round(r * n)), n - 2)
    keep = np.sort(rng.choice(n, size=n - drop, replace=False)) if drop > 0 else np.arange(n)
    values = states[keep]
    if gamma > 0:
        values = values * (1.0 + gamma * rng.standard_normal(values.shape))
    return times[keep], values
