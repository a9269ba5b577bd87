"""Random Boolean formulas and their observed rows (specs/boolean.md "Generation").

One attempt draws, from its own ``rng``: n_active ~ U{min_active..max_active} variables
(a random subset of n_vars = n_active + n_inactive, the rest are distractors), n_ops ~
U{n_active - 1..max_ops} binary gates, each ``and``/``or`` uniformly, a uniformly random
binary tree shape (every shape with n_ops gates equally likely, as the engine's binary-only
sampler; drawn here by the cycle lemma, which needs no counting table at 500 gates), leaves
such that every active variable appears and sibling leaves differ, and a ``not`` above each
node with probability ``unary_prob``. The formula is then simplified (:func:`simplify`),
and rejected when it is constant or longer than ``max_output_len`` tokens.

Rows: ``noiseless`` gives the full truth table when it has at most ``max_points`` rows, else
N = max_points distinct random rows to fit and N other ones held out. ``noisy`` gives a random
walk on {0,1}^n_vars (each bit flips with probability p_traj per step) of 2N + 1 states: the
first N to fit, the next N held out; the fit rows' inputs and outputs are then flipped with
probability p (the held-out rows stay clean: they measure the noise-free function).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp
from sympy.logic import POSform, SOPform

from synthmath.tasks.boolean import formulas as F


@dataclass(frozen=True)
class GenConfig:
    regime: str = "noiseless"
    min_active: int = 3
    max_active: int = 10
    max_inactive: int = 0
    max_ops: int = 500
    unary_prob: float = 0.5
    max_output_len: int = 200
    max_points: int = 1024
    min_points: int = 30
    max_flip: float = 0.0
    exact_max_vars: int = 6
    simplify: bool = True

    @property
    def max_vars(self) -> int:
        return self.max_active + self.max_inactive


# ---- formulas ------------------------------------------------------------------------------
def random_shape(n_ops: int, rng: np.random.Generator) -> np.ndarray:
    """Arities (2 gate, 0 leaf) in prefix order of a uniformly random binary tree with
    ``n_ops`` gates: a random arrangement of the n_ops gates and n_ops + 1 leaves, rotated to
    start after the first minimum of its running sum (the cycle lemma: exactly one rotation is
    a valid prefix code, so every tree is equally likely)."""
    seq = rng.permutation(np.r_[np.full(n_ops, 2, np.int8), np.zeros(n_ops + 1, np.int8)])
    running = np.cumsum(seq.astype(np.int64) - 1)
    start = int(np.argmin(running)) + 1
    return np.r_[seq[start:], seq[:start]]


def random_formula(
    n_active: int, n_ops: int, rng: np.random.Generator, unary_prob: float = 0.5
) -> list[str]:
    """Raw prefix tokens over x_0..x_(n_active-1) (see module docstring)."""
    shape = random_shape(n_ops, rng)
    leaf_at = np.flatnonzero(shape == 0)
    n_leaves = leaf_at.size
    leaves = rng.integers(0, n_active, n_leaves)
    fixed = np.zeros(n_leaves, dtype=bool)
    slots = rng.choice(n_leaves, n_active, replace=False)  # each variable at least once
    leaves[slots] = rng.permutation(n_active)
    fixed[slots] = True
    if n_active > 1:  # sibling leaves differ: x op x is a leaf in disguise
        siblings = np.flatnonzero(
            (shape[leaf_at[:-1] - 1] == 2) & (leaf_at[1:] == leaf_at[:-1] + 1)
        )
        for k in siblings:  # leaves k and k + 1 are the two children of one gate
            while leaves[k] == leaves[k + 1]:
                redraw = k + 1 if not fixed[k + 1] else k
                leaves[redraw] = rng.integers(0, n_active)
    ops = np.where(rng.random(n_ops) < 0.5, "and", "or")
    negate = rng.random(shape.size) < unary_prob
    tokens: list[str] = []
    op_i = leaf_i = 0
    for pos, arity in enumerate(shape.tolist()):
        if negate[pos]:
            tokens.append("not")
        if arity:
            tokens.append(str(ops[op_i]))
            op_i += 1
        else:
            tokens.append(F.var_token(int(leaves[leaf_i])))
            leaf_i += 1
    return tokens


def depends_on(table: np.ndarray, n_vars: int) -> list[int]:
    """The variables a full truth table (packed, :func:`F.truth_table_columns` order) depends on."""
    bits = F.unpack(table, 2**n_vars)
    rows = np.arange(2**n_vars)
    return [j for j in range(n_vars) if (bits != bits[rows ^ (1 << j)]).any()]


def _from_sympy(expr) -> F.Tree:
    """A SymPy logic expression (built by SOPform/POSform, never parsed) -> a tree."""
    if expr is sp.true or expr is sp.false:
        return ("const", bool(expr))
    if isinstance(expr, sp.Symbol):
        return ("var", int(expr.name[2:]))
    if isinstance(expr, sp.Not):
        return ("not", _from_sympy(expr.args[0]))
    kind = {sp.And: "and", sp.Or: "or"}[expr.func]
    return (kind, tuple(_from_sympy(a) for a in expr.args))


def two_level(bits: np.ndarray, n_vars: int, used: list[int] | None = None) -> list[F.Tree]:
    """SymPy's exact minimal sum-of-products and product-of-sums (SOPform, POSform: what
    ``simplify_logic`` computes) of a full table ``bits`` ((2**n_vars,) 0/1 in
    :func:`F.truth_table_columns` row order), over the variables ``used`` (default: those
    it depends on), after the rule pass. Exponential in ``len(used)``: keep it small."""
    if used is None:
        used = depends_on(F.pack_rows(np.asarray(bits).reshape(-1, 1))[0], n_vars)
    rows = np.flatnonzero(bits)
    local = sorted({tuple((r >> j) & 1 for j in used) for r in rows.tolist()})
    symbols = [sp.Symbol(F.var_token(j)) for j in used]
    minterms = [list(m) for m in local]  # bit i of a minterm is the value of symbols[i]
    return [F.simplify_rules(_from_sympy(form(symbols, minterms))) for form in (SOPform, POSform)]


def shortest(candidates: list[F.Tree]) -> F.Tree:
    return min(candidates, key=lambda t: (F.size(t), F.to_prefix(t)))


def simplify(tokens: list[str], n_vars: int, table: np.ndarray, cfg: GenConfig) -> F.Tree:
    """The shortest of: the rule pass (:func:`F.simplify_rules`) and, when the function
    depends on at most ``exact_max_vars`` variables, :func:`two_level` forms.
    ``table`` is the formula's packed full truth table over x_0..x_(n_vars-1)."""
    tree = F.parse_prefix(tokens)
    if not cfg.simplify:
        return tree
    candidates = [F.simplify_rules(tree)]
    used = depends_on(table, n_vars)
    if len(used) <= cfg.exact_max_vars:
        candidates += two_level(F.unpack(table, 2**n_vars), n_vars, used)
    return shortest(candidates)


# ---- rows ------------------------------------------------------------------------------------
def walk(n_vars: int, steps: int, p_flip: float, rng: np.random.Generator) -> np.ndarray:
    """``(steps + 1, n_vars)`` states of a random walk on {0,1}^n: a random start, then each
    bit flips with probability ``p_flip`` at each step."""
    start = rng.integers(0, 2, (1, n_vars), dtype=np.uint8)
    flips = (rng.random((steps, n_vars)) < p_flip).astype(np.uint8)
    return np.bitwise_xor.accumulate(np.r_[start, flips], axis=0)


def distinct_rows(n_vars: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``count`` distinct random rows of {0,1}^n_vars (10 count draws, deduplicated,
    in random order: np.unique alone would sort them and bias a split)."""
    draws = rng.integers(0, 2, (10 * count, n_vars), dtype=np.uint8)
    unique = np.unique(draws, axis=0)
    return unique[rng.permutation(len(unique))][:count]


@dataclass
class Example:
    tokens: list[str]
    x: np.ndarray  # (n_fit + n_test, n_vars) uint8, fit rows first
    y: np.ndarray  # (n_fit + n_test,) uint8: observed fit outputs, clean held-out outputs
    n_fit: int
    n_vars: int
    n_ops: int
    noise: float
    p_traj: float


def attempt(rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """One generation attempt: an example, or the reason it was rejected."""
    n_active = int(rng.integers(cfg.min_active, cfg.max_active + 1))
    n_inactive = int(rng.integers(0, cfg.max_inactive + 1))
    n_vars = n_active + n_inactive
    n_ops = int(rng.integers(max(n_active - 1, 0), cfg.max_ops + 1))
    raw = random_formula(n_active, n_ops, rng, cfg.unary_prob)
    table = F.evaluate_prefix(raw, F.truth_table_columns(n_active), F.row_mask(2**n_active))
    ones = F.popcount(table)
    if ones in (0, 2**n_active):
        return "constant"
    tree = simplify(raw, n_active, table, cfg)
    active = rng.choice(n_vars, n_active, replace=False)  # x_j of the formula is x_active[j]
    tree = F.relabel(tree, active.tolist())
    tokens = F.to_prefix(tree)
    if len(tokens) > cfg.max_output_len:
        return "too_long"

    noise = p_traj = 0.0
    if cfg.regime == "noiseless":
        if 2**n_vars <= cfg.max_points:
            r = np.arange(2**n_vars)
            x = ((r[:, None] >> np.arange(n_vars)[None, :]) & 1).astype(np.uint8)
            n_fit = len(x)
        else:
            x = distinct_rows(n_vars, 2 * cfg.max_points, rng)
            n_fit = len(x) // 2
    else:
        grid = np.linspace(cfg.min_points, cfg.max_points + 1, 5).astype(int)  # 601 as released
        n_fit = int(rng.choice(grid))
        p_traj = float(rng.choice(np.linspace(0, 0.25, 10)))
        x = walk(n_vars, 2 * n_fit, p_traj, rng)[: 2 * n_fit]
        noise = float(rng.choice(np.linspace(0, cfg.max_flip, 5)))
    y = F.unpack(F.evaluate(tree, F.pack_rows(x), F.row_mask(len(x))), len(x))
    fit_ones = int(y[:n_fit].sum())
    if fit_ones in (0, n_fit):
        return "constant_on_rows"
    if noise > 0:
        x[:n_fit] ^= (rng.random((n_fit, n_vars)) < noise).astype(np.uint8)
        y[:n_fit] ^= (rng.random(n_fit) < noise).astype(np.uint8)
    return Example(tokens, x, y, n_fit, n_vars, n_ops, noise, p_traj)
