"""Random expression trees (specs/expressions.md "Random trees"; Lample & Charton 2019, App. C).

A shape with n operators is drawn by counting: D(e, n) is the (weighted) number of ways to fill
e empty slots with n more operators, and each step draws how many leaves to emit before the
next operator, and its arity, in proportion to the completions left. Unit weights make every
unary-binary shape equally likely (the released code); the weights L (leaf values), p1 (unary
operators), p2 (binary operators) make every *expression* equally likely (the paper). The batch
is vectorised: one uniform per step per tree, compared with a precomputed float64 CDF row.

Operators and leaves are then drawn i.i.d. from the preset's weighted tables for the whole
batch at once; constraints (a name exactly once, a name at least once) are resamples of leaf
positions. Every draw comes from the ``rng`` passed in, never from numpy's global generator.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from synthmath.core.errors import ConfigError
from synthmath.expressions.operators import Preset, Tree, int_token, is_leaf

SAMPLERS = ("uniform", "naive")
SHAPE_WEIGHTS = ("unit", "counts")


def count_table(n_max: int, n_leaves: int = 1, p1: int = 1, p2: int = 1) -> list[list[int]]:
    """Exact D(e, n) as ``table[e][n]`` for e in 0..2 n_max + 1 and n in 0..n_max:
    D(0, n) = 0 for n > 0, D(e, 0) = L^e, D(e, n) = L D(e-1, n) + p1 D(e, n-1) + p2 D(e+1, n-1).
    D(1, n) is the number of expressions with n operators (large Schroeder numbers for unit
    weights, Catalan numbers for L = 1, p1 = 0, p2 = 1)."""
    e_max = 2 * n_max + 1
    width = e_max + n_max  # D(e, n) reads D(e + 1, n - 1): compute a wider band, then cut
    prev = [n_leaves**e for e in range(width + 1)]
    columns = [prev]
    for n in range(1, n_max + 1):
        col = [0] * (width + 1 - n)
        for e in range(1, len(col)):
            col[e] = n_leaves * col[e - 1] + p1 * prev[e] + p2 * prev[e + 1]
        columns.append(col)
        prev = col
    return [[columns[n][e] for n in range(n_max + 1)] for e in range(e_max + 1)]


def _as_n_ops(n_ops: np.ndarray | Sequence[int], n_max: int | None = None) -> np.ndarray:
    arr = np.asarray(n_ops)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"n_ops: expected a 1-D array of integers, got shape {arr.shape}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"n_ops: negative operator count {int(arr.min())}")
    if n_max is not None and arr.size and arr.max() > n_max:
        raise ValueError(f"n_ops: {int(arr.max())} operators exceed n_max = {n_max}")
    return arr.astype(np.int64)


class ShapeSampler:
    """Draws prefix arity sequences (0 leaf, 1 unary, 2 binary) of trees with a given number
    of operators, each shape with probability proportional to L^leaves p1^unary p2^binary."""

    def __init__(self, n_max: int, n_leaves: int = 1, p1: int = 1, p2: int = 1) -> None:
        if n_max < 0 or n_leaves < 1 or p1 < 0 or p2 < 0 or (n_max and p1 + p2 == 0):
            raise ValueError(
                f"ShapeSampler: need n_max >= 0, n_leaves >= 1, p1, p2 >= 0 and an operator; "
                f"got {n_max}, {n_leaves}, {p1}, {p2}"
            )
        self.n_max = n_max
        self.weights = (n_leaves, p1, p2)
        table = count_table(n_max, n_leaves, p1, p2)
        # reachable states keep e + n <= n_max + 1, so e <= n_max while operators remain;
        # cdf[e, n, 2k + a - 1] = P(emit k leaves, then an operator of arity a); 2.0 pads
        self._cdf = np.full((n_max + 2, n_max + 1, 2 * n_max + 2), 2.0)
        for n in range(1, n_max + 1):
            for e in range(1, n_max + 2 - n):
                total, acc = table[e][n], 0
                for k in range(e):
                    weight = n_leaves**k
                    acc += weight * p1 * table[e - k][n - 1]
                    self._cdf[e, n, 2 * k] = acc / total  # int / int: correctly rounded
                    acc += weight * p2 * table[e - k + 1][n - 1]
                    self._cdf[e, n, 2 * k + 1] = acc / total
                assert acc == total, (e, n)

    def sample_padded(self, n_ops: np.ndarray, rng: np.random.Generator):
        """``(arities, lengths)``: row i holds tree i's arities in prefix order in its first
        ``lengths[i]`` entries (int8, zero-padded to 2 max(n_ops) + 1 columns)."""
        n = _as_n_ops(n_ops, self.n_max).copy()
        steps = int(n.max()) if n.size else 0
        arities = np.zeros((n.size, 2 * steps + 1), dtype=np.int8)
        slots = np.ones(n.size, dtype=np.int64)  # e: empty slots left
        pos = np.zeros(n.size, dtype=np.int64)  # next free position in the row
        uniforms = rng.random((n.size, steps))
        for step in range(steps):
            act = np.flatnonzero(n > 0)  # trees with fewer operators are done
            e = slots[act]
            rows = self._cdf[e, n[act]]  # (active, 2 n_max + 2)
            choice = (rows <= uniforms[act, step, None]).sum(axis=1)
            leaves, arity = choice >> 1, (choice & 1) + 1
            arities[act, pos[act] + leaves] = arity
            pos[act] += leaves + 1
            slots[act] = e - leaves + arity - 1
            n[act] -= 1
        return arities, pos + slots  # the slots left at n = 0 are leaves (zeros)

    def sample(self, n_ops: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """Per tree, its node arities in prefix order (0 leaf, 1 unary, 2 binary)."""
        arities, lengths = self.sample_padded(n_ops, rng)
        return [row[:length] for row, length in zip(arities, lengths.tolist(), strict=True)]


@functools.lru_cache(maxsize=32)
def shape_sampler(n_max: int, n_leaves: int = 1, p1: int = 1, p2: int = 1) -> ShapeSampler:
    """A cached :class:`ShapeSampler` (building the exact table costs milliseconds)."""
    return ShapeSampler(n_max, n_leaves, p1, p2)


def naive_shapes(
    n_ops: np.ndarray, rng: np.random.Generator, p_unary: float = 0.5
) -> list[np.ndarray]:
    """The ablation ``sampler: naive``: each operator is unary with probability ``p_unary``,
    else binary with its remaining operators split uniformly between the two children. Biased
    (chains and lopsided trees are over-represented), kept to measure what uniformity buys."""
    n_ops = _as_n_ops(n_ops)
    steps = int(n_ops.max()) if n_ops.size else 0
    uniforms = rng.random((n_ops.size, 2 * steps))
    shapes = []
    for count, draws in zip(n_ops.tolist(), uniforms.tolist(), strict=True):
        draw = iter(draws)
        arities, stack = [], [count]  # operators left for each pending subtree
        while stack:
            budget = stack.pop()
            if budget == 0:
                arities.append(0)
            elif next(draw) < p_unary:
                arities.append(1)
                stack.append(budget - 1)
            else:
                left = int(next(draw) * budget)  # 0..budget-1
                arities.append(2)
                stack += [budget - 1 - left, left]
        shapes.append(np.array(arities, dtype=np.int8))
    return shapes


def shape_probabilities(
    n: int, n_leaves: int = 1, p1: int = 1, p2: int = 1
) -> dict[tuple[int, ...], Fraction]:
    """Exact probability of every shape with ``n`` operators (enumerated; small n only)."""

    @functools.cache
    def shapes(m: int) -> list[tuple[int, ...]]:
        if m == 0:
            return [(0,)]
        out = [(1, *s) for s in shapes(m - 1)]
        for left in range(m):
            out += [(2, *a, *b) for a in shapes(left) for b in shapes(m - 1 - left)]
        return out

    weights = {s: n_leaves ** s.count(0) * p1 ** s.count(1) * p2 ** s.count(2) for s in shapes(n)}
    total = sum(weights.values())
    return {s: Fraction(w, total) for s, w in weights.items() if w}


def leaf_probs(preset: Preset) -> tuple[list[str], np.ndarray]:
    """The preset's leaf tokens and their probabilities (variables, ``i<int>``, constants)."""
    values: list[str] = []
    probs: list[float] = []
    for p, group in (
        (preset.p_variable, list(preset.variables)),
        (preset.p_int, [int_token(v) for v in preset.ints]),
        (preset.p_constant, list(preset.constants)),
    ):
        if p > 0 and group:
            values += group
            probs += [p / len(group)] * len(group)
    return values, np.array(probs) / sum(probs)


def _choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    if size == 0:  # no draw at all (and an empty table is fine then)
        return np.zeros(0, dtype=np.int64)
    return rng.choice(len(weights), size=size, p=weights / weights.sum())


def sample_trees(
    preset: Preset,
    n_ops: np.ndarray,
    rng: np.random.Generator,
    *,
    sampler: str = "uniform",
    at_least_once: Sequence[str] = (),
    exactly_once: Sequence[str] = (),
) -> list[Tree | None]:
    """Random trees with ``n_ops[i]`` operators: shapes from ``sampler``, operators from the
    preset's weights, leaves i.i.d. from :func:`leaf_probs`. Each name of ``exactly_once``
    takes one distinct random leaf position and appears nowhere else (other occurrences are
    redrawn without it); each name of ``at_least_once`` absent from the tree is put at one
    random other leaf position. A tree with fewer leaves than constraint names is None."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"sampler: unknown value {sampler!r}; allowed: {', '.join(SAMPLERS)}")
    if preset.shape_weights not in SHAPE_WEIGHTS:
        raise ConfigError(
            f"preset {preset.name}: shape_weights {preset.shape_weights!r} unknown; "
            f"allowed: {', '.join(SHAPE_WEIGHTS)}"
        )
    n_ops = _as_n_ops(n_ops)
    unary, binary = list(preset.unary), list(preset.binary)
    if n_ops.size and n_ops.max() > 0 and not (unary or binary):
        raise ConfigError(f"preset {preset.name}: no operators to build trees from")
    exactly, at_least = tuple(exactly_once), tuple(at_least_once)
    names = exactly + at_least
    if len(set(names)) < len(names) or not all(is_leaf(name) for name in names):
        raise ValueError(f"exactly_once/at_least_once: expected distinct leaf names, got {names}")

    # shapes
    if sampler == "uniform":
        n_max = max(preset.max_ops, int(n_ops.max()) if n_ops.size else 0)
        if preset.shape_weights == "counts":
            weights = (preset.n_leaf_values, len(unary), len(binary))
        else:
            weights = (1, int(bool(unary)), int(bool(binary)))
        arities, lengths = shape_sampler(n_max, *weights).sample_padded(n_ops, rng)
        flat = arities[np.arange(arities.shape[1]) < lengths[:, None]]
    else:
        shapes = naive_shapes(n_ops, rng, p_unary=(0.5 if binary else 1.0) if unary else 0.0)
        flat = np.concatenate(shapes) if shapes else np.zeros(0, np.int8)
        lengths = np.array([len(s) for s in shapes], dtype=np.int64)

    # operators and leaves, as codes into `vocab`
    values, probs = leaf_probs(preset)
    vocab = unary + binary + values + [name for name in names if name not in values]
    code = {token: i for i, token in reversed(list(enumerate(vocab)))}
    base = len(unary) + len(binary)
    codes = np.empty(flat.size, dtype=np.int64)
    for arity, offset, table in ((1, 0, preset.unary), (2, len(unary), preset.binary)):
        where = flat == arity
        codes[where] = offset + _choice(rng, np.array(list(table.values())), int(where.sum()))
    leaf_at = np.flatnonzero(flat == 0)
    leaves = base + _choice(rng, probs, leaf_at.size)

    tree_of_leaf = np.repeat(np.arange(n_ops.size), lengths)[leaf_at]
    n_leaves = np.bincount(tree_of_leaf, minlength=n_ops.size)
    ok = n_leaves >= len(names)
    if names:
        # a random order of each tree's leaves: rank r < len(names) is the slot of names[r]
        order = np.lexsort((rng.random(leaf_at.size), tree_of_leaf))
        starts = np.cumsum(n_leaves) - n_leaves
        rank = np.empty(leaf_at.size, dtype=np.int64)
        rank[order] = np.arange(leaf_at.size) - starts[tree_of_leaf[order]]
        rank[~ok[tree_of_leaf]] = len(names)  # rejected trees: no slots
        if exactly:
            exact_codes = [code[name] for name in exactly]
            clash = np.isin(leaves, exact_codes) & (rank >= len(exactly))
            if clash.any():
                kept = probs * ~np.isin(np.array(values), exactly)
                if kept.sum() == 0:
                    raise ValueError(f"exactly_once: every leaf of preset {preset.name} is one")
                leaves[clash] = base + _choice(rng, kept, int(clash.sum()))
            for slot, c in enumerate(exact_codes):
                leaves[rank == slot] = c
        for j, name in enumerate(at_least):
            slot = len(exactly) + j  # later slots may still be overwritten: not counted
            seen = (leaves == code[name]) & ((rank <= slot) | (rank >= len(names)))
            present = np.bincount(tree_of_leaf[seen], minlength=n_ops.size) > 0
            leaves[(rank == slot) & ~present[tree_of_leaf]] = code[name]
    codes[leaf_at] = leaves

    tokens = np.array(vocab, dtype=object)[codes].tolist()
    ends = np.cumsum(lengths).tolist()
    return [
        tuple(tokens[end - length : end]) if good else None
        for end, length, good in zip(ends, lengths.tolist(), ok.tolist(), strict=True)
    ]
