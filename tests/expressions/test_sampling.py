"""Random trees: exact counts, uniform shapes (chi-square), weighted tables, constraints."""

from __future__ import annotations

from collections import Counter
from math import comb

import numpy as np
import pytest
from scipy.stats import chisquare

from synthmath.core.errors import ConfigError
from synthmath.expressions.operators import (
    Preset,
    arity,
    get_preset,
    is_leaf,
    n_operators,
    subtree_end,
)
from synthmath.expressions.sampling import (
    ShapeSampler,
    count_table,
    leaf_probs,
    naive_shapes,
    sample_trees,
    shape_probabilities,
)

SCHROEDER = [1, 2, 6, 22, 90, 394, 1806, 8558, 41586]
WEIGHTS = [(1, 1, 1), (1, 0, 1), (11, 15, 4), (3, 2, 5), (2, 0, 3), (5, 1, 1)]

TOY = Preset(
    "toy",
    "test preset whose leaves include the constraint names",
    max_ops=8,
    unary={"sin": 1.0},
    binary={"add": 1.0, "mul": 1.0},
    variables=("x", "y", "c1"),
    p_variable=0.6,
    p_int=0.4,
)


def catalan(n: int) -> int:
    return comb(2 * n, n) // (n + 1)


def shape_key(arities) -> tuple[int, ...]:
    return tuple(int(a) for a in arities)


def tree_shape(tree) -> tuple[int, ...]:
    return tuple(arity(t) for t in tree)


def chi2_pvalue(samples, probs: dict) -> float:
    counts = Counter(samples)
    assert set(counts) <= set(probs), set(counts) - set(probs)
    keys = list(probs)
    expected = np.array([float(probs[k]) for k in keys]) * len(samples)
    return chisquare([counts[k] for k in keys], expected).pvalue


# ---- exact counts ---------------------------------------------------------------------------
def test_unit_weights_give_large_schroeder_numbers():
    table = count_table(8)
    assert [table[1][n] for n in range(9)] == SCHROEDER
    assert len(table) == 2 * 8 + 2 and all(len(row) == 9 for row in table)
    assert all(table[0][n] == 0 for n in range(1, 9)) and table[0][0] == 1


@pytest.mark.parametrize(("n_leaves", "p2"), [(1, 1), (3, 2), (11, 4)])
def test_binary_only_gives_catalan_numbers(n_leaves, p2):
    table = count_table(10, n_leaves, 0, p2)
    for n in range(11):
        assert table[1][n] == catalan(n) * n_leaves ** (n + 1) * p2**n


@pytest.mark.parametrize(("n_leaves", "p1", "p2"), WEIGHTS)
def test_expression_counts_follow_the_closed_recurrence(n_leaves, p1, p2):
    table = count_table(12, n_leaves, p1, p2)
    e_n = [table[1][n] for n in range(13)]
    assert e_n[0] == n_leaves and e_n[1] == (p1 + p2 * n_leaves) * n_leaves
    assert all(table[e][0] == n_leaves**e for e in range(len(table)))
    for n in range(2, 13):
        rhs = (p1 + 2 * n_leaves * p2) * (2 * n - 1) * e_n[n - 1] - p1**2 * (n - 2) * e_n[n - 2]
        assert (n + 1) * e_n[n] == rhs


@pytest.mark.parametrize(("n_leaves", "p1", "p2"), WEIGHTS)
def test_table_matches_enumerated_shapes(n_leaves, p1, p2):
    table = count_table(5, n_leaves, p1, p2)
    for n in range(6):
        probs = shape_probabilities(n, n_leaves, p1, p2)
        assert sum(probs.values()) == 1
        if p1 == 0:  # binary-only shapes only
            assert all(1 not in s for s in probs)
        total = sum(n_leaves ** s.count(0) * p1 ** s.count(1) * p2 ** s.count(2) for s in probs)
        assert total == table[1][n]
    assert len(shape_probabilities(3)) == 22


# ---- shapes ---------------------------------------------------------------------------------
def test_unit_shapes_for_three_operators_are_equally_frequent():
    rng = np.random.default_rng(1)
    n_ops = np.full(22_000, 3)
    probs = shape_probabilities(3)
    uniform = [shape_key(s) for s in ShapeSampler(6).sample(n_ops, rng)]
    assert len(set(uniform)) == 22
    assert chi2_pvalue(uniform, probs) > 1e-3
    naive = [shape_key(s) for s in naive_shapes(n_ops, rng)]
    assert chi2_pvalue(naive, probs) < 1e-3  # the test has power: a biased sampler fails


def test_unit_shapes_for_four_operators_are_equally_frequent():
    rng = np.random.default_rng(2)
    shapes = [shape_key(s) for s in ShapeSampler(15).sample(np.full(18_000, 4), rng)]
    assert len(set(shapes)) == 90
    assert chi2_pvalue(shapes, shape_probabilities(4)) > 1e-3


@pytest.mark.parametrize(("n", "n_leaves", "p1", "p2"), [(3, 3, 2, 5), (2, 11, 15, 4)])
def test_weighted_shapes_follow_exact_probabilities(n, n_leaves, p1, p2):
    rng = np.random.default_rng(3)
    probs = shape_probabilities(n, n_leaves, p1, p2)
    shapes = [
        shape_key(s) for s in ShapeSampler(8, n_leaves, p1, p2).sample(np.full(20_000, n), rng)
    ]
    assert chi2_pvalue(shapes, probs) > 1e-3
    unit = shape_probabilities(n)  # and the weights matter: unit probabilities are rejected
    assert chi2_pvalue(shapes, unit) < 1e-3


def test_lc_paper_preset_uses_counted_weights():
    preset = get_preset("lc_paper")  # L = 11, p1 = 15, p2 = 4
    trees = sample_trees(preset, np.full(20_000, 2), np.random.default_rng(4))
    probs = shape_probabilities(2, preset.n_leaf_values, len(preset.unary), len(preset.binary))
    assert chi2_pvalue([tree_shape(t) for t in trees], probs) > 1e-3


def test_unit_preset_shapes_are_uniform_through_sample_trees():
    trees = sample_trees(get_preset("lc_released"), np.full(22_000, 3), np.random.default_rng(5))
    assert chi2_pvalue([tree_shape(t) for t in trees], shape_probabilities(3)) > 1e-3


def test_binary_only_preset_gets_binary_shapes():
    preset = Preset("bin", "binary only", max_ops=6, unary={}, binary={"add": 1.0})
    for sampler in ("uniform", "naive"):
        trees = sample_trees(preset, np.arange(7), np.random.default_rng(6), sampler=sampler)
        assert all(len(t) == 2 * k + 1 for t, k in zip(trees, range(7), strict=True))


@pytest.mark.parametrize("sampler", ["uniform", "naive"])
@pytest.mark.parametrize("name", ["lc_released", "lc_paper", "chh"])
def test_trees_are_well_formed_with_the_requested_operators(name, sampler):
    rng = np.random.default_rng(7)
    n_ops = rng.integers(0, 16, 3000)
    preset = get_preset(name)
    allowed = {*preset.unary, *preset.binary, *leaf_probs(preset)[0]}
    trees = sample_trees(preset, n_ops, rng, sampler=sampler)
    assert len(trees) == n_ops.size
    for tree, n in zip(trees, n_ops.tolist(), strict=True):
        assert subtree_end(tree, 0) == len(tree)
        assert n_operators(tree) == n
        assert set(tree) <= allowed


def test_same_seed_same_trees():
    preset, n_ops = get_preset("lc_released"), np.arange(16).repeat(20)
    for sampler in ("uniform", "naive"):
        a = sample_trees(preset, n_ops, np.random.default_rng(8), sampler=sampler)
        b = sample_trees(preset, n_ops, np.random.default_rng(8), sampler=sampler)
        c = sample_trees(preset, n_ops, np.random.default_rng(9), sampler=sampler)
        assert a == b and a != c


def test_empty_batch_and_zero_operators():
    preset = get_preset("lc_released")
    assert sample_trees(preset, np.zeros(0, dtype=int), np.random.default_rng(0)) == []
    trees = sample_trees(preset, np.zeros(100, dtype=int), np.random.default_rng(0))
    assert all(len(t) == 1 and is_leaf(t[0]) for t in trees)


# ---- operators and leaves -------------------------------------------------------------------
def test_operator_and_leaf_frequencies_follow_the_preset():
    preset = get_preset("lc_released")
    rng = np.random.default_rng(10)
    tokens = Counter(t for tree in sample_trees(preset, np.full(4000, 10), rng) for t in tree)
    for table in (preset.binary, preset.unary):
        counts = [tokens[op] for op in table]
        weights = np.array(list(table.values()))
        assert chisquare(counts, weights / weights.sum() * sum(counts)).pvalue > 1e-3
    assert 10 / 3 * 0.9 < tokens["add"] / tokens["sub"] < 10 / 3 * 1.1
    values, probs = leaf_probs(preset)
    assert values == ["x", "i1", "i2", "i3", "i4", "i5"]
    np.testing.assert_allclose(probs, [0.75] + [0.05] * 5)
    counts = [tokens[v] for v in values]
    assert chisquare(counts, probs * sum(counts)).pvalue > 1e-3


# ---- constraints ----------------------------------------------------------------------------
def test_exactly_once_and_at_least_once_are_honoured():
    n_ops = np.random.default_rng(0).integers(0, 9, 5000)
    rng = np.random.default_rng(11)
    trees = sample_trees(TOY, n_ops, rng, exactly_once=("c1", "c2"), at_least_once=("x", "y"))
    for tree, n in zip(trees, n_ops.tolist(), strict=True):
        if tree is None:
            continue
        leaves = [t for t in tree if is_leaf(t)]
        assert len(leaves) >= 4 and n_operators(tree) == n
        assert leaves.count("c1") == 1 and leaves.count("c2") == 1
        assert "x" in leaves and "y" in leaves
    # a tree is rejected exactly when it has fewer than 4 leaves
    ok = [t is not None for t in trees]
    assert any(ok) and not all(ok)
    shapes = sample_trees(TOY, n_ops, np.random.default_rng(11))
    n_leaves = [sum(1 for t in tree if is_leaf(t)) for tree in shapes]
    assert ok == [k >= 4 for k in n_leaves]


def test_at_least_once_changes_only_trees_that_lack_the_name():
    preset, n_ops = get_preset("lc_released"), np.arange(16).repeat(300)
    free = sample_trees(preset, n_ops, np.random.default_rng(12))
    forced = sample_trees(preset, n_ops, np.random.default_rng(12), at_least_once=("x",))
    changed = 0
    for a, b in zip(free, forced, strict=True):
        if "x" in a:
            assert a == b
        else:
            diff = [i for i, (s, t) in enumerate(zip(a, b, strict=True)) if s != t]
            assert len(diff) == 1 and b[diff[0]] == "x"
            changed += 1
    assert changed > 100


def test_exactly_once_position_is_uniform_over_leaves():
    n_ops = np.full(6000, 3)  # lc_released: unary or binary; keep trees with 3 leaves
    trees = sample_trees(
        get_preset("lc_released"), n_ops, np.random.default_rng(13), exactly_once=("c",)
    )
    where = []
    for tree in trees:
        leaves = [t for t in tree if is_leaf(t)]
        if len(leaves) == 3:
            where.append(leaves.index("c"))
    assert chisquare(np.bincount(where, minlength=3)).pvalue > 1e-3


# ---- errors and the global generator --------------------------------------------------------
def test_unknown_sampler_is_a_config_error():
    with pytest.raises(ConfigError, match=r"sampler.*'magic'.*uniform, naive"):
        sample_trees(
            get_preset("chh"), np.ones(3, dtype=int), np.random.default_rng(0), sampler="magic"
        )


def test_bad_n_ops_are_rejected():
    with pytest.raises(ValueError, match="n_max"):
        ShapeSampler(4).sample(np.array([5]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_ops"):
        sample_trees(get_preset("chh"), np.array([1.5]), np.random.default_rng(0))
    with pytest.raises(ValueError, match="n_ops"):
        sample_trees(get_preset("chh"), np.array([-1]), np.random.default_rng(0))


def test_no_global_numpy_random(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("global numpy random generator used")

    for name in (
        "rand", "randn", "randint", "random", "random_sample", "choice", "seed", "shuffle",
        "permutation", "uniform", "normal", "integers", "get_state", "set_state",
    ):  # fmt: skip
        if hasattr(np.random, name):
            monkeypatch.setattr(np.random, name, forbidden)
    rng = np.random.default_rng(14)
    n_ops = np.arange(16).repeat(10)
    for sampler in ("uniform", "naive"):
        trees = sample_trees(
            TOY, n_ops, rng, sampler=sampler, exactly_once=("c1",), at_least_once=("x",)
        )
        assert sum(t is not None for t in trees) > 100
