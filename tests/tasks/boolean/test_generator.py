"""The Boolean generator: uniform shapes, leaf constraints, simplification, rows, determinism;
every sampled formula reproduces its rows."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from synthmath.core.errors import DataError
from synthmath.expressions.sampling import shape_probabilities
from synthmath.tasks.boolean import formulas as F
from synthmath.tasks.boolean import generator as gen
from synthmath.tasks.boolean import task as task_module
from synthmath.tasks.registry import make_task


def test_shapes_are_uniform_binary_trees_as_the_engine_counts_them():
    rng = np.random.default_rng(0)
    draws = Counter(tuple(gen.random_shape(3, rng).tolist()) for _ in range(4000))
    exact = shape_probabilities(3, n_leaves=1, p1=0, p2=1)  # the 5 Catalan shapes
    assert set(draws) == set(exact)
    for shape, p in exact.items():
        assert abs(draws[shape] / 4000 - float(p)) < 0.03
    big = gen.random_shape(500, rng)
    assert (big == 2).sum() == 500 and (np.cumsum(big.astype(int) - 1)[:-1] >= 0).all()


def test_formulas_use_every_active_variable_and_sibling_leaves_differ():
    for seed in range(30):
        rng = np.random.default_rng(seed)
        tokens = gen.random_formula(4, 6, rng, unary_prob=0.0)
        assert sum(t in ("and", "or") for t in tokens) == 6
        assert {t for t in tokens if t.startswith("x_")} == {f"x_{j}" for j in range(4)}
        for a, b, c in zip(tokens, tokens[1:], tokens[2:]):
            if a in ("and", "or") and b.startswith("x_") and c.startswith("x_"):
                assert b != c, tokens


def test_simplify_keeps_the_function_and_never_lengthens_the_rule_pass():
    cfg = gen.GenConfig()
    for seed in range(20):
        raw = gen.random_formula(4, 25, np.random.default_rng(seed))
        columns, mask = F.truth_table_columns(4), F.row_mask(16)
        table = F.evaluate_prefix(raw, columns, mask)
        tree = gen.simplify(raw, 4, table, cfg)
        assert np.array_equal(F.evaluate(tree, columns, mask), table)
        assert F.size(tree) <= F.size(F.simplify_rules(F.parse_prefix(raw)))
    # x0 x1 | x0 ~x1 | ~x0 x1 is x0 | x1 only after two-level minimisation
    raw = "or and x_0 x_1 or and x_0 not x_1 and not x_0 x_1".split()
    table = F.evaluate_prefix(raw, F.truth_table_columns(2), F.row_mask(4))
    assert F.to_prefix(gen.simplify(raw, 2, table, cfg)) == ["or", "x_0", "x_1"]
    off = gen.simplify(raw, 2, table, gen.GenConfig(simplify=False))
    assert F.to_prefix(off) == F.to_prefix(F.parse_prefix(raw))


def _check_rows(task, raw):
    for i in range(len(raw["formula"])):
        tree = F.parse_prefix(str(raw["formula"][i]).split())
        assert F.variables(tree) and max(F.variables(tree)) < raw["n_vars"][i]
        x, y = task.rows(raw, i, "fit")
        predicted = F.unpack(F.evaluate(tree, F.pack_rows(x), F.row_mask(len(y))), len(y))
        if raw["noise"][i] == 0:
            assert np.array_equal(predicted, y)
        else:
            assert (predicted != y).mean() < 0.6
        x, y = task.rows(raw, i, "test")
        predicted = F.unpack(F.evaluate(tree, F.pack_rows(x), F.row_mask(len(y))), len(y))
        assert np.array_equal(predicted, y)  # held-out rows are clean


def test_noiseless_samples_are_full_tables_their_formula_reproduces():
    task = make_task("boolean", {"max_active": 5, "max_ops": 40})
    raw = task.sample(20, np.random.default_rng(0))
    _check_rows(task, raw)
    assert (raw["n_fit"] == 2 ** raw["n_vars"]).all() and (raw["n_test"] == 0).all()
    assert (raw["n_vars"] >= 3).all() and (raw["n_active"] <= raw["n_vars"]).all()
    x, _ = task.rows(raw, 0)
    r = np.arange(len(x))
    assert np.array_equal(x, (r[:, None] >> np.arange(x.shape[1])) & 1)
    again = task.sample(20, np.random.default_rng(0))
    assert all(np.array_equal(raw[k], again[k]) for k in raw)


def test_partial_tables_split_distinct_rows_into_fit_and_held_out():
    task = make_task("boolean", {"min_active": 6, "max_active": 6, "max_ops": 10, "max_points": 16})
    raw = task.sample(5, np.random.default_rng(1))
    _check_rows(task, raw)
    assert (raw["n_fit"] == 16).all() and (raw["n_test"] == 16).all()
    fit, test = task.rows(raw, 0, "fit")[0], task.rows(raw, 0, "test")[0]
    assert len({tuple(r) for r in np.r_[fit, test]}) == 32


def test_noisy_samples_are_walks_with_distractors_and_flips():
    params = {"regime": "noisy", "max_points": 60, "max_inactive": 20}
    task = make_task("boolean", params)
    raw = task.sample(25, np.random.default_rng(2))
    _check_rows(task, raw)
    grid = set(np.linspace(30, 61, 5).astype(int).tolist())
    assert set(raw["n_fit"].tolist()) <= grid and (raw["n_test"] == raw["n_fit"]).all()
    assert (raw["noise"] > 0).any() and (raw["noise"] <= 0.1).all()
    assert (raw["n_vars"] > raw["n_active"]).any()
    i = int(np.argmax(raw["p_traj"] > 0))
    x, _ = task.rows(raw, i, "test")  # a clean walk: few bits change per step
    assert np.abs(np.diff(x.astype(int), axis=0)).sum(axis=1).mean() < 0.5 * x.shape[1]


def test_generation_gives_up_with_a_data_error(monkeypatch):
    monkeypatch.setattr(task_module, "MAX_ATTEMPTS", 10)
    task = make_task(
        "boolean", {"min_active": 3, "max_active": 3, "max_ops": 4, "max_output_len": 2}
    )
    with pytest.raises(DataError, match="no example accepted in 10 attempts.*too_long"):
        task.sample(1, np.random.default_rng(0))
