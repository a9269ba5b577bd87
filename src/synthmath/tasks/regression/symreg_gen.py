"""Generation of ``symreg`` examples as the E2E release does (specs/regression.md, "symreg").

One attempt, all draws from the ``rng`` passed in (never a global generator):

1. dimension D ~ U{1..max_dim}; binary operators b ~ U{0..D + 3} (add sub mul, uniform), a
   unit-weight random binary tree whose leaves are x_0..x_{D-1} (uniform); a tree that does
   not use every one of the D variables is rejected (``dimension``);
2. u ~ U{0..max_unary} unary operators (the ``e2e`` preset's weights) wrapped around nodes
   whose subtree (in the binary tree) has fewer than 6 tokens, u of them drawn at random;
3. affine constants: each operand of ``add``/``sub`` gets a factor (``mul a .``), each unary
   argument becomes ``a + b .``, and the root gets an additive constant; every constant is
   sign x {1..999} x 10^{-3..-1} (exact in P10000);
4. N ~ U{min(5 D, max_points)..max_points} points from a mixture of U{1..9} clusters, each
   Gaussian or uniform (w.p. 1/2) with mean N(0, I), axis variances U(0, 1) and a random
   rotation (QR of a Gaussian matrix: Haar on O(D)), mixture weights U(0, 1) normalised;
   the points are standardised per axis, then y = f(x); an attempt with a non-finite or
   |y| >= 1e103 output is rejected (``points``: fewer than N valid points remain).

Optional output noise (``noise`` gamma > 0): y + gamma * rms(y) * N(0, 1), drawn last.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from synthmath.expressions import numeric
from synthmath.expressions.operators import (
    PRESETS,
    Preset,
    Tree,
    arity,
    float_token,
    subtree_end,
)
from synthmath.expressions.prefix import PrefixCodec
from synthmath.expressions.sampling import sample_trees

#: outputs at or above this magnitude are invalid (the release's bound)
MAX_ABS_Y = 1e103
#: unaries are inserted only above subtrees with fewer tokens than this
UNARY_SUBTREE_LIMIT = 6
MAX_CLUSTERS = 9
REJECTIONS = ("dimension", "points", "encoding")


@dataclass(frozen=True)
class GenConfig:
    max_dim: int = 10
    max_points: int = 200
    points_per_dim: int = 5
    fixed_points: bool = False
    binary_offset: int = 4
    max_unary: int = 4
    noise: float = 0.0


@dataclass(frozen=True)
class Example:
    tree: Tree
    x: np.ndarray  # (N, D) standardised points
    y: np.ndarray  # (N,)
    dim: int
    n_binary: int
    n_unary: int


@functools.cache
def binary_preset(dim: int) -> Preset:
    """The ``e2e`` preset without unaries, its leaves x_0..x_{dim-1}."""
    base = PRESETS["e2e"]
    return dataclasses.replace(
        base, name=f"e2e_binary_{dim}", unary={}, variables=base.variables[:dim]
    )


def draw_constant(rng: np.random.Generator) -> float:
    """sign x {1..999} x 10^{-3..-1}: a 3-digit decimal (a correctly rounded division)."""
    sign = -1.0 if rng.random() < 0.5 else 1.0
    mantissa = int(rng.integers(1, 1000))
    return sign * mantissa / 10 ** int(rng.integers(1, 4))


def insert_unaries(tree: Tree, count: int, rng: np.random.Generator) -> tuple[Tree, int]:
    """``tree`` with up to ``count`` unaries (``e2e`` weights) above small subtrees."""
    ends = [subtree_end(tree, i) for i in range(len(tree))]
    candidates = [i for i in range(len(tree)) if ends[i] - i < UNARY_SUBTREE_LIMIT]
    count = min(count, len(candidates))
    if count == 0:
        return tree, 0
    chosen = rng.choice(len(candidates), size=count, replace=False)
    unary = PRESETS["e2e"].unary
    names, weights = list(unary), np.array(list(unary.values()))
    ops = rng.choice(len(names), size=count, p=weights / weights.sum())
    wrap: dict[int, list[str]] = {}
    for c, op in zip(chosen.tolist(), ops.tolist(), strict=True):
        wrap.setdefault(candidates[c], []).append(names[op])
    out: list[str] = []
    for i, token in enumerate(tree):
        out += wrap.get(i, [])
        out.append(token)
    return tuple(out), count


def add_constants(tree: Tree, rng: np.random.Generator) -> Tree:
    """The affine constants of step 3 (module docstring), drawn in prefix order."""

    def const() -> str:
        return float_token(draw_constant(rng))

    out: list[str] = ["add", const()]
    # a stack of pending operands: for each, the wrapper its parent asks for
    pending = ["root"]
    for token in tree:
        role = pending.pop()
        if role == "factor":
            out += ["mul", const()]
        elif role == "affine":
            out += ["add", const(), "mul", const()]
        out.append(token)
        n_args = arity(token)
        if token in ("add", "sub"):
            pending += ["factor", "factor"]
        elif n_args == 1:
            pending.append("affine")
        else:
            pending += ["plain"] * n_args
    return tuple(out)


def draw_points(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` standardised points of a random mixture of clusters (module docstring, step 4)."""
    k = int(rng.integers(1, MAX_CLUSTERS + 1))
    weights = rng.random(k)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(k, 1.0 / k)
    counts = rng.multinomial(n, weights)
    parts = []
    for size in counts.tolist():
        mean = rng.standard_normal(dim)
        std = np.sqrt(rng.random(dim))
        gaussian = rng.random() < 0.5
        q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
        rotation = q * np.where(np.diag(r) < 0, -1.0, 1.0)
        if gaussian:
            z = rng.standard_normal((size, dim))
        else:  # same variance as the Gaussian: U(-sqrt 3, sqrt 3)
            z = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), (size, dim))
        parts.append(mean + (z * std) @ rotation.T)
    x = np.concatenate(parts)
    spread = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def variables(dim: int) -> tuple[str, ...]:
    return tuple(f"x_{j}" for j in range(dim))


def evaluate(tree: Tree, x: np.ndarray) -> np.ndarray:
    """f at the rows of ``x`` (column j is x_j); NaN/inf where undefined."""
    program = numeric.compile(tree)
    env = {name: x[:, j] for j, name in enumerate(variables(x.shape[1]))}
    return np.broadcast_to(program(env), (x.shape[0],)).astype(np.float64)


def attempt(config: GenConfig, codec: PrefixCodec, rng: np.random.Generator) -> Example | str:
    """One attempt: an :class:`Example`, or the name of the rejection (:data:`REJECTIONS`)."""
    dim = int(rng.integers(1, config.max_dim + 1))
    n_binary = int(rng.integers(0, dim + config.binary_offset))
    (tree,) = sample_trees(binary_preset(dim), np.array([n_binary]), rng)
    if len(set(tree) & set(variables(dim))) < dim:
        return "dimension"
    tree, n_unary = insert_unaries(tree, int(rng.integers(0, config.max_unary + 1)), rng)
    tree = codec.round_floats(add_constants(tree, rng))
    low = min(config.points_per_dim * dim, config.max_points)
    n = config.max_points if config.fixed_points else int(rng.integers(low, config.max_points + 1))
    x = draw_points(n, dim, rng)
    y = evaluate(tree, x)
    if not (np.isfinite(y) & (np.abs(y) < MAX_ABS_Y)).all():
        return "points"
    if config.noise > 0:
        y = y + config.noise * np.sqrt(np.mean(y**2)) * rng.standard_normal(n)
    try:
        codec.encode(tree)
    except ValueError:
        return "encoding"
    return Example(tree, x, y, dim, n_binary, n_unary)
