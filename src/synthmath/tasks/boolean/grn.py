"""Gene-regulatory-network inference (specs/boolean.md "GRN"): synthetic networks, the
release's protocol, and the Best-Fit Extension and REVEAL-like baselines.

The paper's data (DREAM4-style time series of E. coli and yeast networks, 16/32/64 genes)
are not available offline. :func:`random_network` is the synthetic substitute (INFERRED from
the spec): each gene has 1..K regulators and a non-constant rule over them (a random formula
of the task's generator, or a nested canalising function), updated synchronously; a series
is a set of blocks, each a fresh trajectory from a random state. :func:`read_series` imports
a user's time series (DREAM4 TSV: a header, one row per time point, blank lines between
experiments; values binarised at each gene's mean).

Protocol (as released): for gene i, the inputs are all genes at time t with gene i's own
column replaced by random bits (self-regulation hidden; seeded here), the target gene i at
t + 1. Leave-one-block-out: each block in turn is held out, every gene's rule is inferred
from the other blocks, and the inferred network is simulated from the block's first state;
the dynamic error is the fraction of wrong bits over the block. Structure: the inferred
edges j -> i (the variables of rule i) against the true ones, self-edges excluded.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmath.core.errors import DataError
from synthmath.tasks.boolean import formulas as F
from synthmath.tasks.boolean.fit import Table, fit_exact, fit_model
from synthmath.tasks.boolean.generator import GenConfig, random_formula, simplify

Inferrer = Callable[[np.ndarray, np.ndarray], F.Tree]


@dataclass
class Network:
    regulators: list[list[int]]  # regulators[i]: the genes rule i reads
    rules: list[F.Tree]  # over gene indices

    @property
    def n_genes(self) -> int:
        return len(self.rules)

    def edges(self) -> set[tuple[int, int]]:
        """(regulator, target) pairs the rules actually depend on, self-edges excluded."""
        return {(j, i) for i, rule in enumerate(self.rules) for j in F.variables(rule) if j != i}


def canalising(k: int, rng: np.random.Generator) -> F.Tree:
    """A nested canalising function of k inputs: if x_a = v_a then c_a, else if x_b = ...,
    the last input deciding alone (k >= 1), written with and/or/not."""
    order = rng.permutation(k)
    tree: F.Tree = ("var", int(order[-1]))
    if rng.random() < 0.5:
        tree = ("not", tree)
    for j in order[-2::-1]:
        literal: F.Tree = ("var", int(j)) if rng.random() < 0.5 else ("not", ("var", int(j)))
        # x = v canalises to 1 (or) or to 0 (and)
        tree = ("or", (literal, tree)) if rng.random() < 0.5 else ("and", (literal, tree))
    return F.simplify_rules(tree)


def random_network(n_genes: int, rng: np.random.Generator, max_regulators: int = 3) -> Network:
    """Each gene: k ~ U{1..max_regulators} distinct regulators (itself allowed) and a rule that
    depends on all of them, half from the task's generator, half nested canalising."""
    cfg = GenConfig(max_ops=8)
    regulators, rules = [], []
    for _ in range(n_genes):
        k = int(rng.integers(1, max_regulators + 1))
        regs = sorted(rng.choice(n_genes, k, replace=False).tolist())
        columns, mask = F.truth_table_columns(k), F.row_mask(2**k)
        while True:
            if rng.random() < 0.5:
                tokens = random_formula(k, int(rng.integers(k - 1, k + 4)), rng)
                table = F.evaluate_prefix(tokens, columns, mask)
                local = simplify(tokens, k, table, cfg)
            else:
                local = canalising(k, rng)
            if len(F.variables(local)) == k:  # depends on every regulator
                break
        regulators.append(regs)
        rules.append(F.relabel(local, regs))
    return Network(regulators, rules)


def step(rules: list[F.Tree], states: np.ndarray) -> np.ndarray:
    """One synchronous update of ``states`` ((runs, genes) 0/1), all runs at once."""
    columns, mask = F.pack_rows(states), F.row_mask(len(states))
    nxt = [F.unpack(F.evaluate(rule, columns, mask), len(states)) for rule in rules]
    return np.stack(nxt, axis=1)


def simulate(rules: list[F.Tree], starts: np.ndarray, steps: int) -> np.ndarray:
    """``(runs, steps + 1, genes)`` trajectories from ``starts`` ((runs, genes))."""
    out = [np.asarray(starts, dtype=np.uint8)]
    for _ in range(steps):
        out.append(step(rules, out[-1]))
    return np.stack(out, axis=1)


def time_series(
    network: Network, blocks: int, rng: np.random.Generator, length: int = 56
) -> np.ndarray:
    """``(blocks, length, genes)``: each block a trajectory from a random state."""
    starts = rng.integers(0, 2, (blocks, network.n_genes), dtype=np.uint8)
    return simulate(network.rules, starts, length - 1)


def read_series(path: str | Path, block: int | None = None) -> np.ndarray:
    """A DREAM4-style TSV time series -> ``(blocks, length, genes)`` 0/1 (each gene
    thresholded at its mean; experiments separated by blank lines, or cut every ``block``
    rows). DataError naming the file and line for a malformed row."""
    path = Path(path)
    experiments: list[list[list[float]]] = [[]]
    width = None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.replace(",", "\t").split()
        if not fields:
            if experiments[-1]:
                experiments.append([])
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            if number == 1:
                continue  # the header
            raise DataError(f"{path}: line {number}: not numbers") from None
        if width is None:
            width = len(values)
        if len(values) != width:
            raise DataError(f"{path}: line {number} has {len(values)} fields, expected {width}")
        experiments[-1].append(values[1:])  # the first column is the time
    experiments = [e for e in experiments if e]
    if not experiments:
        raise DataError(f"{path}: no time points")
    data = np.concatenate([np.array(e) for e in experiments])
    bits = (data > data.mean(axis=0)).astype(np.uint8)
    lengths = [len(e) for e in experiments] if block is None else None
    if lengths is None:
        cut = len(bits) // block
        return bits[: cut * block].reshape(cut, block, -1)
    if len(set(lengths)) != 1:
        raise DataError(f"{path}: experiments of different lengths {sorted(set(lengths))}")
    return bits.reshape(len(lengths), lengths[0], -1)


# ---- inference ---------------------------------------------------------------------------
def pairs(series: np.ndarray, gene: int, rng: np.random.Generator):
    """(inputs at t with gene's own column random, gene at t + 1) over every block."""
    x = series[:, :-1].reshape(-1, series.shape[2]).copy()
    y = series[:, 1:, gene].reshape(-1)
    x[:, gene] = rng.integers(0, 2, len(x))
    return x, y


def _subset_counts(x: np.ndarray, y: np.ndarray, k: int):
    """Subsets of size k and, per subset, counts (pattern, y) as ``(subsets, 2**k, 2)``."""
    subsets = np.array(list(itertools.combinations(range(x.shape[1]), k)), dtype=np.int64)
    codes = np.zeros((len(x), len(subsets)), dtype=np.int64)
    for b in range(k):
        codes = (codes << 1) | x[:, subsets[:, b]]
    index = (np.arange(len(subsets))[None, :] * 2**k + codes) * 2 + y[:, None]
    counts = np.bincount(index.ravel(), minlength=len(subsets) * 2 ** (k + 1))
    return subsets, counts.reshape(len(subsets), 2**k, 2)


def _best_subset(x: np.ndarray, y: np.ndarray, max_k: int, criterion: str) -> list[int]:
    best: tuple[float, int, list[int]] = (np.inf, 0, [])
    for k in range(1, max_k + 1):
        subsets, counts = _subset_counts(x, y, k)
        if criterion == "errors":  # Best-Fit Extension: the majority table's mistakes
            score = counts.min(axis=2).sum(axis=1).astype(float)
        else:  # REVEAL-like: conditional entropy H(y | subset)
            total = counts.sum(axis=2, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                p = np.where(total > 0, counts / np.maximum(total, 1), 0)
                h = -(counts * np.where(p > 0, np.log2(np.where(p > 0, p, 1)), 0)).sum(axis=(1, 2))
            score = h / len(y)
        i = int(np.argmin(score))
        if score[i] < best[0] - 1e-12:
            best = (float(score[i]), k, subsets[i].tolist())
    return best[2]


def subset_inferrer(max_regulators: int = 3, criterion: str = "errors") -> Inferrer:
    """Best-Fit Extension (``errors``: the regulator subset of size <= K whose majority table
    errs least, fewer regulators on ties) or REVEAL-like (``entropy``: least H(y | subset));
    the rule is the exact fit of that table (unseen patterns don't-care)."""

    def infer(x: np.ndarray, y: np.ndarray) -> F.Tree:
        if y.min() == y.max():
            return ("const", bool(y[0]))
        regs = _best_subset(x, y, max_regulators, criterion)
        local = fit_exact(Table(x[:, regs], y, None)).tree
        return F.relabel(local, regs)

    return infer


def model_inferrer(model, task, beam_size: int = 10) -> Inferrer:
    """A trained boolean model as the inference method (its beam's pick per gene)."""

    def infer(x: np.ndarray, y: np.ndarray) -> F.Tree:
        if y.min() == y.max():
            return ("const", bool(y[0]))
        return fit_model(model, task, Table(x, y, None), beam_size).tree

    return infer


@dataclass
class GrnResult:
    dynamic_error: float  # mean over held-out blocks of the wrong-bit fraction
    precision: float
    recall: float
    f1: float
    seconds: float


def evaluate_grn(
    series: np.ndarray,
    infer: Inferrer,
    true_edges: set[tuple[int, int]] | None = None,
    seed: int = 0,
) -> GrnResult:
    """Leave-one-block-out inference and simulation (see module docstring)."""
    blocks, length, n_genes = series.shape
    if blocks < 2:
        raise DataError(f"GRN: need at least 2 blocks, got {blocks}")
    rng = np.random.default_rng(seed)
    errors, found, seconds = [], [], 0.0
    for b in range(blocks):
        train = np.delete(series, b, axis=0)
        t0 = time.perf_counter()
        rules = [infer(*pairs(train, i, rng)) for i in range(n_genes)]
        seconds += time.perf_counter() - t0
        predicted = simulate(rules, series[b, :1], length - 1)[0]
        errors.append(float((predicted[1:] != series[b, 1:]).mean()))
        found.append({(j, i) for i, r in enumerate(rules) for j in F.variables(r) if j != i})
    precision = recall = f1 = float("nan")
    if true_edges is not None:
        ps, rs = [], []
        for edges in found:
            hit = len(edges & true_edges)
            ps.append(hit / len(edges) if edges else 0.0)
            rs.append(hit / len(true_edges) if true_edges else 0.0)
        precision, recall = float(np.mean(ps)), float(np.mean(rs))
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return GrnResult(float(np.mean(errors)), precision, recall, f1, seconds)
