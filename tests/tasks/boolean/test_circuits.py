"""The logic-circuit zoo: tables checked against integer arithmetic row by row, reference
formulas against the tables, and the zoo as a test set of the task."""

from __future__ import annotations

import numpy as np
import pytest

from synthmath.core.errors import ConfigError
from synthmath.tasks.boolean import circuits as C
from synthmath.tasks.boolean import formulas as F
from synthmath.tasks.registry import make_task


def msb_first(bits) -> int:
    return int("".join(str(int(b)) for b in bits), 2)


def expected(kind: str, k: int, x: list[int]) -> list[int]:
    """One row of each circuit, written out with Python integers (independent of the module)."""
    n = len(x)
    if kind == "multiplexer":
        return [x[k + sum(x[j] << j for j in range(k))]]
    if kind == "majority":
        return [int(sum(x) >= n / 2)]
    if kind in ("parity", "xnor"):
        return [(sum(x) + (kind == "xnor")) % 2]
    if kind in ("all", "any"):
        return [int(all(x) if kind == "all" else any(x))]
    if kind == "multiadder":
        return [(sum(x) >> i) & 1 for i in range(n.bit_length())]
    if kind == "decoder":
        index = sum(v << j for j, v in enumerate(x))
        return [int(i == index) for i in range(2**n)]
    a, b = msb_first(x[:k]), msb_first(x[k:])
    if kind == "comparator":
        return [int(a > b)]
    if kind == "adder":
        return [((a + b) >> i) & 1 for i in range(k + 1)]
    return [((a * b) >> i) & 1 for i in range(2 * k)]


@pytest.mark.parametrize("name", [n for n in C.ZOO if not n.startswith("random")])
def test_tables_match_integer_arithmetic(name):
    kind, k = C.parse_name(name)
    c = C.circuit(name)
    for r in range(2**c.n_vars):
        x = [(r >> j) & 1 for j in range(c.n_vars)]
        assert c.outputs[r].tolist() == expected(kind, k, x), (name, x)


def test_known_rows_and_sizes():
    mux = C.circuit("multiplexer_2")
    assert mux.n_vars == 6  # select x_0 + 2 x_1 = 2 reads the data input x_(2 + 2)
    assert mux.outputs[0b010010, 0] == 1 and mux.outputs[0b100010, 0] == 0
    assert C.circuit("xnor_3").outputs[:, 0].tolist() == [1, 0, 0, 1, 0, 1, 1, 0]
    assert C.circuit("adder_3").n_outputs == 4 and C.circuit("decoder_3").n_outputs == 8
    assert C.circuit("random_5").outputs.tolist() == C.circuit("random_5").outputs.tolist()
    with pytest.raises(ConfigError, match="kind one of"):
        C.circuit("nand_3")
    with pytest.raises(ConfigError, match="at most 16"):
        C.circuit("multiplexer_4")


def test_reference_formulas_reproduce_every_output():
    for name in C.ZOO:
        c = C.circuit(name)
        columns, mask = F.truth_table_columns(c.n_vars), F.row_mask(2**c.n_vars)
        for output in range(c.n_outputs):
            tree = C.reference_formula(name, output)
            got = F.unpack(F.evaluate(tree, columns, mask), 2**c.n_vars)
            assert np.array_equal(got, c.outputs[:, output]), (name, output)


def test_the_zoo_is_a_test_set_whose_reference_answers_score_right():
    task = make_task("boolean", {"source": "circuits"})
    problems = task.zoo()
    raw = task.sample(len(problems), np.random.default_rng(0))
    assert raw["source"].tolist()[:3] == ["multiplexer_2", "majority_5", "majority_7"]
    assert "adder_2[1]" in raw["source"].tolist()
    tokens = [str(f).split() for f in raw["formula"]]
    scores = task.score(raw, [[t] for t in tokens])
    assert scores["acc"].all() and scores["equivalent"].all()
    rows, tgt = task.length_bound()  # the zoo's answers may exceed max_output_len
    assert rows == 128 and tgt == max(map(len, tokens)) + 2 > task.params["max_output_len"] + 2
    small = make_task("boolean", {"source": "circuit:parity_4,adder_2", "max_active": 4})
    assert small.zoo() == [("parity_4", 0), ("adder_2", 0), ("adder_2", 1), ("adder_2", 2)]
    with pytest.raises(ConfigError, match="source: no circuit of majority_7 fits"):
        make_task("boolean", {"source": "circuit:majority_7", "max_active": 4})
    with pytest.raises(ConfigError, match="source: circuit 'mux_2'"):
        make_task("boolean", {"source": "circuit:mux_2"})
    with pytest.raises(ConfigError, match="source: unknown value 'zoo'"):
        make_task("boolean", {"source": "zoo"})
