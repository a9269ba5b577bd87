"""Boolean formulas: parsing, writing, the rule pass and bit-packed evaluation, checked against
plain Python evaluation and SymPy (in the tests only)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from synthmath.core.errors import DecodeError
from synthmath.tasks.boolean import formulas as F
from synthmath.tasks.boolean.generator import random_formula


def python_value(tree, row) -> bool:
    """Reference evaluation of a tree on one row, with Python booleans."""
    kind = tree[0]
    if kind == "var":
        return bool(row[tree[1]])
    if kind == "const":
        return tree[1]
    if kind == "not":
        return not python_value(tree[1], row)
    values = [python_value(c, row) for c in tree[1]]
    if kind == "and":
        return all(values)
    if kind == "or":
        return any(values)
    return sum(values) % 2 == 1


def table(tree, n_vars: int) -> list[bool]:
    return [python_value(tree, row) for row in itertools.product((0, 1), repeat=n_vars)]


def test_prefix_round_trip_flattens_chains():
    tree = F.parse_prefix("or and x_0 not x_1 x_2".split())
    assert tree == ("or", (("and", (("var", 0), ("not", ("var", 1)))), ("var", 2)))
    chain = F.parse_prefix("and x_0 and x_1 and x_2 x_3".split())
    assert chain == ("and", tuple(("var", j) for j in range(4)))
    assert F.to_prefix(chain) == "and x_0 and x_1 and x_2 x_3".split()
    assert F.complexity(chain) == 1 and F.complexity(tree) == 2
    assert F.parse_prefix(["True"]) == F.TRUE


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([], "empty"),
        (["and", "x_0"], "misses"),
        (["not"], "misses"),
        (["x_0", "x_1"], "left over"),
        (["x_01"], "unknown token"),
        (["nand", "x_0", "x_1"], "unknown token"),
        (["x_3"], "only 3 variables"),
    ],
)
def test_malformed_formulas_are_decode_errors(tokens, message):
    with pytest.raises(DecodeError, match=message):
        F.parse_prefix(tokens, n_vars=3)


def test_packed_evaluation_matches_python_on_random_rows():
    rng = np.random.default_rng(0)
    for seed in range(20):
        tokens = random_formula(5, 12, np.random.default_rng(seed))
        tree = F.parse_prefix(tokens)
        rows = rng.integers(0, 2, (150, 5))
        got = F.unpack(F.evaluate(tree, F.pack_rows(rows), F.row_mask(150)), 150)
        got_prefix = F.unpack(F.evaluate_prefix(tokens, F.pack_rows(rows), F.row_mask(150)), 150)
        want = [python_value(tree, r) for r in rows]
        assert got.tolist() == want == got_prefix.tolist()


def test_truth_table_rows_put_x0_in_the_least_significant_bit():
    columns = F.truth_table_columns(3)
    bits = np.stack([F.unpack(c, 8) for c in columns], axis=1)
    assert bits[6].tolist() == [0, 1, 1]  # row 6 = 0b110
    assert F.unpack(F.evaluate(("var", 0), columns, F.row_mask(8)), 8).tolist() == [0, 1] * 4


def test_rule_pass_is_sound_and_applies_the_rules():
    for seed in range(40):
        tree = F.parse_prefix(random_formula(4, 15, np.random.default_rng(seed)))
        assert table(F.simplify_rules(tree), 4) == table(tree, 4)
    rules = {
        "not not x_0": "x_0",
        "and x_0 x_0": "x_0",
        "and x_0 not x_0": "False",
        "or x_1 not x_1": "True",
        "or x_0 and x_0 x_1": "x_0",
        "and x_0 or x_1 x_0": "x_0",
        "and True x_2": "x_2",
        "or False x_2": "x_2",
        "and not x_0 and not x_1 not x_2": "not or x_0 or x_1 x_2",  # De Morgan
        "or x_2 x_1": "or x_1 x_2",  # canonical order
    }
    for before, after in rules.items():
        assert F.to_prefix(F.simplify_rules(F.parse_prefix(before.split()))) == after.split()


def test_infix_is_read_back_by_sympy_as_the_same_function():
    symbols = sp.symbols("x_0:5")
    local = {f"x_{j}": s for j, s in enumerate(symbols)}
    for seed in range(15):
        tree = F.simplify_rules(F.parse_prefix(random_formula(5, 10, np.random.default_rng(seed))))
        expr = parse_expr(F.to_infix(tree), local_dict=local)
        for row in itertools.product((0, 1), repeat=5):
            value = expr.subs({s: bool(v) for s, v in zip(symbols, row)})
            assert bool(value) == python_value(tree, row)
    assert F.to_infix(F.parse_prefix("or and x_0 not x_1 x_2".split())) == "x_0 & ~x_1 | x_2"
    assert F.to_infix(F.parse_prefix("and not or x_0 x_1 x_2".split())) == "~(x_0 | x_1) & x_2"
