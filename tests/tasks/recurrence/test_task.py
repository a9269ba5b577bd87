"""The recurrence task: generation as the spec says, scoring by rollout, the CLI's samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthmath.core.errors import ConfigError
from synthmath.tasks.recurrence import generator as gen
from synthmath.tasks.recurrence.task import RecurrenceTask


@pytest.fixture(scope="module")
def int_raw():
    return RecurrenceTask(mode="int").sample(40, np.random.default_rng(0))


@pytest.fixture(scope="module")
def float_raw():
    return RecurrenceTask(mode="float").sample(40, np.random.default_rng(0))


@pytest.mark.parametrize("mode", gen.MODES)
def test_every_sample_regenerates_its_sequence_and_passes_the_rejections(mode, int_raw, float_raw):
    task = RecurrenceTask(mode=mode)
    raw = int_raw if mode == "int" else float_raw
    ops = set(task.preset.unary) | set(task.preset.binary)
    for i in range(40):
        terms = task.terms(raw, i)
        tree = tuple(str(raw["tree"][i]).split())
        d, n_input = int(raw["degree"][i]), int(raw["n_input"][i])
        assert len(terms) == n_input + 10 and d <= n_input and 5 <= n_input <= 30
        assert 1 <= d <= 6 and gen.shift(tree) <= d
        assert 1 <= int(raw["n_ops"][i]) == sum(t in ops for t in tree) <= 10
        # the stored terms are the recurrence of the first d, bit for bit
        assert gen.roll(tree, terms[:d], len(terms) - d, mode) == terms[d:]
        assert all(abs(t) <= 1e100 for t in terms)
        assert not gen.equal_gaps(terms, mode)
        if mode == "int":
            assert all(isinstance(t, int) and -10 <= t <= 10 for t in terms[:d])
        else:
            assert all(-10 <= t <= 10 for t in terms[:d])


def test_lengths_are_drawn_per_example_from_the_examples_own_seed(int_raw):
    lengths = int_raw["n_input"]
    assert len(set(lengths.tolist())) > 5  # not one length per batch
    task = RecurrenceTask(mode="int")
    np.random.seed(123)  # numpy's global generator plays no part
    again = task.sample(10, np.random.default_rng(0))
    assert np.random.randint(10**9) == np.random.RandomState(123).randint(10**9)
    for key in int_raw:
        assert (again[key] == int_raw[key][:10]).all(), key  # a prefix of the bigger sample
    other = task.sample(10, np.random.default_rng(1))
    assert (other["terms"] != again["terms"]).any()


def test_params_are_checked():
    with pytest.raises(ConfigError, match="min_ops"):
        RecurrenceTask(min_ops=5, max_ops=3)
    with pytest.raises(ConfigError, match="mode"):
        RecurrenceTask(mode="complex")
    with pytest.raises(ConfigError, match="max_len"):
        RecurrenceTask(min_len=2, max_len=4)


def test_equal_gap_tails_are_found():
    assert gen.equal_gaps([9, 1, 2, 3, 4, 5], "int")  # arithmetic
    assert gen.equal_gaps([9, 1, -1, 1, -1, 1], "int")  # alternating
    assert not gen.equal_gaps([1, 1, 2, 3, 5, 8], "int")
    assert gen.equal_gaps([0.5, 0.5, 0.5, 0.5, 0.5], "float")


def test_roll_fails_cleanly():
    assert gen.roll(("idiv", "u_1", "sub", "n", "i3"), [5, 6, 7], 3, "int") == "undefined"
    assert gen.roll(("add", "u_1", "u_4"), [1, 2, 3], 1, "int") == "shift"
    assert gen.roll(("mul", "u_1", "u_1"), [10**60], 1, "int") == "undefined"  # > 10**100
    assert gen.roll(("mul", "u_1", "u_1"), [1e60], 1, "float") == "overflow"
    assert gen.roll(("sqrt", "sub", "i0", "n"), [1.0], 1, "float") == "undefined"
    # C-like integer division, n is the index of the term
    assert gen.roll(("idiv", "mul", "i-7", "n", "i2"), [0], 2, "int") == [-3, -7]
    assert gen.roll(("mod", "sub", "i0", "n", "i4"), [0] * 5, 2, "int") == [-1, -2]


def fib_raw(n_input: int = 10, n_predict: int = 10) -> dict:
    fib = [0, 1]
    while len(fib) < n_input + n_predict:
        fib.append(fib[-1] + fib[-2])
    return {
        "terms": np.array([" ".join(map(str, fib))]),
        "n_input": np.array([n_input], dtype=np.int32),
        "tree": np.array(["add u_1 u_2"]),
        "degree": np.array([2], dtype=np.int32),
        "n_ops": np.array([1], dtype=np.int32),
    }


def test_a_recurrence_is_scored_by_rolling_it_forward():
    task = RecurrenceTask(mode="int")
    raw = fib_raw()
    hyps = [
        "add u_2 u_1".split(),  # same recurrence, other tree
        "sub mul INT+ 2 u_1 u_3".split(),  # another recurrence of Fibonacci
        "add u_1 add u_2 idiv u_1 INT+ 1 0 0".split(),  # adds u_1 // 100: right for 3 terms
        "add u_1".split(),  # does not parse
        "add u_1 u_11".split(),  # reads before the first term
    ]
    s = task.score(raw, [hyps])
    assert s["acc"][0].tolist() == [True, True, False, False, False]
    assert s["acc_tol0"][0].tolist() == s["acc"][0].tolist()
    # fib(10) = 55 is the first target; u_1 // 100 = 0 while u_1 < 100 (fib(12) = 144)
    assert [bool(s[f"acc_terms{k}"][0, 2]) for k in range(1, 11)] == [True] * 3 + [False] * 7
    assert s["parse_error"][0].tolist() == [0, 0, 0, 1, 0]
    assert s["rel_error"][0, 0] == 0 and np.isinf(s["rel_error"][0, 4])
    assert 0 < s["rel_error"][0, 2] < 0.1 and s["acc_tol1e-1"][0, 2]


def test_float_tolerances():
    task = RecurrenceTask(mode="float")
    terms = [0.5]
    for n in range(1, 18):
        terms.append(terms[-1] * 1.5 + n)
    raw = {
        "terms": np.array([" ".join(map(repr, terms))]),
        "n_input": np.array([8], dtype=np.int32),
        "tree": np.array(["add mul u_1 div INT+ 3 INT+ 2 n"]),
        "degree": np.array([1], dtype=np.int32),
        "n_ops": np.array([3], dtype=np.int32),
    }
    exact = task.tgt_codec.encode(("add", "mul", "u_1", "div", "i3", "i2", "n"))
    close = task.tgt_codec.encode(("add", "mul", "u_1", "div", "i3", "i2", "mul", "n", "div",
                                   "i1000001", "i1000000"))  # fmt: skip
    s = task.score(raw, [[exact, close]])
    assert s["acc"][0].tolist() == [True, False]
    assert s["acc_tol1e-5"][0].tolist() == [True, True]
    assert s["acc_tol1e-7"][0].tolist() == [True, False]


def test_numeric_output_compares_the_decoded_terms():
    task = RecurrenceTask(mode="int", output="numeric", int_base=10)
    raw = fib_raw()
    right = [tok for v in (55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181)
             for tok in ("INT+", *str(v))]  # fmt: skip
    wrong = right[:-5] + ["INT+", "4", "1", "8", "2"]
    s = task.score(raw, [[right, wrong, right[:-5]]])
    assert s["acc"][0].tolist() == [True, False, False]
    assert s["acc_terms9"][0].tolist() == [True, True, False]
    assert s["parse_error"][0].tolist() == [0, 0, 1]


def test_groups_and_json(int_raw):
    task = RecurrenceTask(mode="int")
    groups = task.groups(int_raw)
    assert set(groups) == set(task.group_names)
    for i in range(5):
        n_input = int(int_raw["n_input"][i])
        lo, hi = map(int, groups["length"][i].split("-"))
        assert lo <= n_input <= hi
        ex = task.to_json(int_raw, i)
        json.dumps(ex, allow_nan=False)
        assert ex["problem"]["terms"] + ex["answer"]["next"] == task.terms(int_raw, i)


def test_cli_sample_prints_terms_and_a_sympy_readable_recurrence(capsys):
    import sympy as sp
    from sympy.parsing.sympy_parser import parse_expr

    from synthmath.cli import main
    from synthmath.expressions.sympy_bridge import to_sympy

    assert main(["sample", "recurrence", "mode=int", "-n", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    for ex in lines:
        assert all(isinstance(t, int) for t in ex["problem"]["terms"])
        assert len(ex["answer"]["next"]) == 10
        parsed = parse_expr(ex["answer"]["infix"])
        names = {s.name for s in parsed.free_symbols}
        assert names <= {"n", *(f"u_{k}" for k in range(1, 7))}
    # float operators read back as the engine's own SymPy form
    assert main(["sample", "recurrence", "mode=float", "-n", "3", "--seed", "2"]) == 0
    for line in capsys.readouterr().out.splitlines():
        ex = json.loads(line)
        tree = tuple(RecurrenceTask(mode="float").tgt_codec.parse(ex["answer"]["tokens"]))
        diff = parse_expr(ex["answer"]["infix"]) - to_sympy(tree)
        assert sp.simplify(diff) == 0
