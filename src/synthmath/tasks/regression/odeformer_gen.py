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
   (the answer tokens are then exactly the system integrated);
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
   agree with the loose run within 2% of each dimension's range (``inaccurate``);
8. generalisation: a second y0' ~ N(0, I_D) integrated precisely on the same times (up to
   3 draws; ``generalisation`` when none integrates).

Corruption of the observations (served by the task, drawn from each example's own stream) is
:func:`corrupt`.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from synthmath.expressions.errors import UnsupportedExpression
from synthmath.expressions.numeric import leaf_value
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

#: the generated operators, by weight (``id`` is a no-op: it inserts nothing)
BINARY = {"add": 3.0, "mul": 1.0}
UNARY = {"sin": 1.0, "inv": 1.0, "pow2": 1.0, "id": 3.0}
#: unaries go above non-root subtrees with fewer tokens than this
UNARY_SUBTREE_LIMIT = 7
#: constants: random sign x 10^U(log10(1 / MAX_PREFACTOR), log10(MAX_PREFACTOR))
MAX_PREFACTOR = 20.0
#: the event stops integration when a component reaches this magnitude (then rejected)
MAX_VALUE = 100.0
#: trajectories with a larger value are rejected
MAX_ABS = 1e100
GEN_TRIES = 3
#: stored trajectories: RK45 at these tolerances, with this many times the evaluation budget
PRECISE_RTOL = 1e-6
PRECISE_ATOL = 1e-9
PRECISE_EVALS = 4
#: the release's integration must agree with the precise one to this share of the range
AGREEMENT = 0.02
REJECTIONS = (
    "simplify", "vocabulary", "budget", "wall", "diverged", "integration", "stationary",
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


def variables(dim: int) -> tuple[str, ...]:
    return tuple(f"x_{j}" for j in range(dim))


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


# ---- the right-hand side on Python floats -------------------------------------------------
Scalar = Callable[[list], float]
_MATH: dict[str, Callable[[float], float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "ln": math.log,
    "sqrt": math.sqrt, "abs": abs, "atan": math.atan, "sinh": math.sinh, "cosh": math.cosh,
    "tanh": math.tanh, "asin": math.asin, "acos": math.acos,
}  # fmt: skip
#: what an expression may raise on Python floats (domain errors, poles, overflow, complex)
EVAL_ERRORS = (ValueError, ZeroDivisionError, OverflowError, TypeError)


def _unary(name: str, a: Scalar) -> Scalar:
    if name == "pow2":
        return lambda x: a(x) ** 2
    if name == "pow3":
        return lambda x: a(x) ** 3
    if name == "inv":
        return lambda x: 1.0 / a(x)
    if name == "id":
        return a
    fn = _MATH.get(name)
    if fn is None:  # the rest through numpy (cot, sec, ...): finite or an error
        op = OPERATORS[name].numpy

        def fn(v: float) -> float:
            with np.errstate(all="raise"):
                return float(op(np.float64(v)))

    return lambda x: fn(a(x))


def _binary(name: str, a: Scalar, b: Scalar, ca: float | None, cb: float | None) -> Scalar:
    if name == "add":
        if ca is not None:
            return lambda x: ca + b(x)
        return lambda x: a(x) + b(x)
    if name == "mul":
        if ca is not None:
            return lambda x: ca * b(x)
        return lambda x: a(x) * b(x)
    if name == "sub":
        return lambda x: a(x) - b(x)
    if name == "div":
        return lambda x: a(x) / b(x)
    if name == "pow":
        if cb is not None and cb == int(cb) and abs(cb) <= 64:
            k = int(cb)
            return lambda x: a(x) ** k
        return lambda x: math.pow(a(x), b(x))
    raise ValueError(f"fast_rhs: operator {name!r} is not supported")


def scalar_function(tree: Tree, names: tuple[str, ...]) -> Scalar:
    """``tree`` as a function of a list of Python floats (``names[k]`` is item k): nested
    closures, about 10x faster than numpy scalars at one point. A domain error, pole or
    overflow raises one of :data:`EVAL_ERRORS` (numpy would give NaN/inf; both reject)."""
    index = {name: k for k, name in enumerate(names)}
    stack: list[tuple[Scalar, float | None]] = []
    for token in reversed(tree):
        op = OPERATORS.get(token)
        if op is None:
            value = leaf_value(token)
            if value is not None:
                stack.append(((lambda v: lambda x: v)(value), value))
            elif token in index:
                stack.append(((lambda k: lambda x: x[k])(index[token]), None))
            else:
                raise ValueError(f"fast_rhs: unknown leaf {token!r}")
        elif len(stack) < op.arity:
            raise ValueError(f"fast_rhs: operator {token!r} lacks operands")
        elif op.arity == 1:
            a, _ = stack.pop()
            stack.append((_unary(token, a), None))
        else:
            (a, ca), (b, cb) = stack.pop(), stack.pop()
            stack.append((_binary(token, a, b, ca, cb), None))
    if len(stack) != 1:
        raise ValueError(f"fast_rhs: {len(stack)} expressions, expected 1")
    return stack[0][0]


def fast_rhs(trees: tuple[Tree, ...]) -> Callable[[float, np.ndarray], np.ndarray]:
    """f(t, x) for ``solve_ivp`` of the system x_d' = trees[d](x_0..x_{D-1})."""
    functions = [scalar_function(tree, variables(len(trees))) for tree in trees]

    def f(t: float, x: np.ndarray) -> np.ndarray:
        values = x.tolist()
        return np.array([fn(values) for fn in functions])

    return f


class _Stop(Exception):
    """Integration aborted; ``args[0]`` is the rejection reason."""


def integrate(
    trees: tuple[Tree, ...],
    y0: np.ndarray,
    times: np.ndarray,
    *,
    max_evals: int,
    wall_s: float = 5.0,
    max_value: float | None = MAX_VALUE,
    method: str = "RK45",
    **solver_args,
) -> np.ndarray | str:
    """The trajectory (len(times), D) of x' = f(x) from ``y0`` at ``times[0]``, or the reason
    it is rejected (:data:`REJECTIONS`): ``budget`` past ``max_evals`` right-hand-side calls
    (deterministic), ``wall`` past ``wall_s`` seconds, ``diverged`` when max |x_d| reaches
    ``max_value`` (None: no such event) or the solver stops early, ``integration`` for a warning, an error, a
    non-finite derivative or value."""
    try:
        f = fast_rhs(trees)
    except ValueError:
        return "integration"
    calls = 0
    deadline = time.monotonic() + wall_s

    def rhs(t: float, x: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls > max_evals:
            raise _Stop("budget")
        if calls % 64 == 0 and time.monotonic() > deadline:
            raise _Stop("wall")
        try:
            value = f(t, x)
        except EVAL_ERRORS:
            raise _Stop("integration") from None
        if not np.isfinite(value).all():
            raise _Stop("integration")
        return value

    def event(t: float, x: np.ndarray) -> float:
        return max_value - float(np.max(np.abs(x)))

    event.terminal = True  # type: ignore[attr-defined]
    events = None if max_value is None else event
    times = np.asarray(times, dtype=np.float64)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sol = solve_ivp(
                rhs, (times[0], times[-1]), np.asarray(y0, dtype=np.float64), method=method,
                t_eval=times, events=events, **solver_args,
            )  # fmt: skip
    except _Stop as stop:
        return str(stop.args[0])
    except (ValueError, KeyError, ZeroDivisionError, OverflowError, FloatingPointError):
        return "integration"
    if caught:
        return "integration"
    if sol.status != 0 or sol.y.shape[1] != len(times):
        return "diverged"
    states = sol.y.T
    if not np.isfinite(states).all() or (np.abs(states) > MAX_ABS).any():
        return "integration"
    return states


def stationary(states: np.ndarray) -> bool:
    """Every dimension's range over the last quarter / the window length (points) < 1e-3."""
    window = max(1, len(states) // 4)
    last = states[-window:]
    return bool((np.abs(last.max(axis=0) - last.min(axis=0)) / window < 1e-3).all())


def attempt(config: GenConfig, codec: PrefixCodec, rng: np.random.Generator) -> Example | str:
    """One attempt: an :class:`Example`, or the name of the rejection (:data:`REJECTIONS`)."""
    dim = int(rng.integers(1, config.max_dim + 1))
    n_binary = rng.integers(config.min_binary, config.max_binary + 1, size=dim)
    raw = sample_trees(binary_preset(dim), n_binary, rng)
    trees, n_unary = [], 0
    for tree in raw:
        tree, u = insert_unaries(tree, int(rng.integers(0, config.max_unary + 1)), rng)
        simple = simplify(add_prefactors(tree, rng), codec)
        if simple is None:
            return "simplify"
        if config.operators and not _ops(simple) <= config.operators:
            return "vocabulary"
        trees.append(simple)
        n_unary += u
    trees_t = tuple(trees)
    n = int(rng.integers(config.min_points, config.max_points + 1))
    times = np.linspace(*config.t_range, n)
    y0 = rng.standard_normal(dim)
    loose = integrate(trees_t, y0, times, max_evals=config.max_rhs_evals, wall_s=config.wall_s)
    if isinstance(loose, str):
        return loose
    if rng.random() < config.stationary_prob and stationary(loose):
        return "stationary"
    states = integrate(trees_t, y0, times, **precise_args(config))
    if isinstance(states, str) or not agrees(loose, states):
        return "inaccurate"
    for _ in range(GEN_TRIES):
        gen_states = integrate(trees_t, rng.standard_normal(dim), times, **precise_args(config))
        if not isinstance(gen_states, str):
            break
    else:
        return "generalisation"
    return Example(trees_t, times, states, gen_states, int(n_binary.sum()), n_unary)


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
