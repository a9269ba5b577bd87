"""The symbolic task: CLI samples SymPy reads back, verification-based scoring, beam metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from synthmath.cli import main
from synthmath.core.errors import ConfigError
from synthmath.eval.summary import add_beam_summary, summarize
from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.tasks.registry import make_task

X = sp.Symbol("x")
LOCAL = {"Y": sp.Function("Y")(X), "x": X, "c": sp.Symbol("c"), "c1": sp.Symbol("c1"),
         "c2": sp.Symbol("c2")}  # fmt: skip


def _sample_lines(capsys, *args) -> list[dict]:
    assert main(["sample", "symbolic", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("problem", ["prim_bwd", "ode1"])
def test_sample_prints_tokens_and_an_infix_sympy_reads_back(capsys, problem):
    lines = _sample_lines(capsys, f"problem={problem}", "max_ops=5", "-n", "3", "--seed", "2")
    assert len(lines) == 3
    task = make_task("symbolic", {"problem": problem})
    for ex in lines:
        for part in ("problem", "answer"):
            tokens, text = ex[part]["tokens"], ex[part]["infix"]
            expr = to_sympy(task.codec.parse(tokens))
            assert sp.simplify(parse_expr(text, local_dict=LOCAL) - expr) == 0
        if problem == "ode1":
            assert "Derivative(Y, x)" in ex["problem"]["infix"]
            assert "c" in ex["answer"]["tokens"]
        else:
            assert "Y'" not in ex["problem"]["tokens"]  # the integrand itself


def test_unknown_problem_and_preset_are_config_errors():
    with pytest.raises(ConfigError, match="problem.*unknown problem 'integrate'"):
        make_task("symbolic", {"problem": "integrate"})
    with pytest.raises(ConfigError, match="preset.*allowed: lc_paper"):
        make_task("symbolic", {"preset": "lc_imaginary"})
    with pytest.raises(ConfigError, match="min_ops"):
        make_task("symbolic", {"min_ops": 9, "max_ops": 5})


def _raw(task, pairs, problem="prim_bwd"):
    return {
        "problem": np.array([problem] * len(pairs)),
        "src": np.array([s for s, _ in pairs]),
        "tgt": np.array([t for _, t in pairs]),
        "n_ops": np.array([3] * len(pairs), dtype=np.int32),
    }


def test_a_primitive_that_differs_by_a_constant_or_in_form_is_right():
    task = make_task("symbolic", {"verify_workers": 1})
    # f = 2 x cos(x^2) ; F = sin(x^2)
    raw = _raw(task, [("mul i2 mul x cos pow x i2", "sin pow x i2")])
    tok = task.codec.encode
    hyps = [[
        tok(("sin", "pow", "x", "i2")),  # the reference: exact
        tok(("add", "i3", "sin", "pow", "x", "i2")),  # + a constant: verified by differentiation
        tok(("sin", "mul", "x", "x")),  # another form
        tok(("cos", "pow", "x", "i2")),  # wrong
        ["add", "x"],  # does not parse
    ]]  # fmt: skip
    scores = task.score(raw, hyps)
    assert scores["acc"].tolist() == [[True, True, True, False, False]]
    assert scores["exact"].tolist() == [[True, False, False, False, False]]
    assert scores["parse_error"].tolist() == [[False, False, False, False, True]]
    assert not scores["verify_timeout"].any()


def test_an_ode_solution_is_verified_by_substitution():
    task = make_task("symbolic", {"problem": "ode2"})
    # y'' - y = 0, reference c1 e^x + c2 e^-x
    src = "add Y'' mul i-1 Y"
    tgt = "add mul c1 exp x mul c2 exp mul i-1 x"
    raw = _raw(task, [(src, tgt)], "ode2")
    tok = task.codec.encode
    hyps = [[
        tok(("mul", "c1", "cosh", "x")),  # another solution of y'' = y
        tok(("mul", "c1", "sin", "x")),  # not a solution
        tok(("Y",)),  # the unknown itself
    ]]  # fmt: skip
    scores = task.score(raw, hyps)
    assert scores["acc"].tolist() == [[True, False, False]]


def test_beam_metrics_any_of_b_and_rank_of_the_first_right_hypothesis():
    task = make_task("symbolic", {})
    raw = _raw(task, [("cos x", "sin x"), ("exp x", "exp x"), ("i1", "x")])
    tok = task.codec.encode
    right = [tok(("sin", "x")), tok(("exp", "x")), tok(("x",))]
    wrong = tok(("cos", "cos", "x"))
    nbest = [[wrong, right[0]], [right[1], wrong], [wrong, wrong]]
    summary = summarize(task, raw, [[h[0]] for h in nbest])
    add_beam_summary(summary, task, raw, nbest, 2)
    assert summary["metrics"]["acc_beam2"] == pytest.approx(2 / 3)
    assert summary["metrics"]["rank_acc_beam2"] == pytest.approx(1.5)
    assert summary["metrics"]["acc"] == pytest.approx(1 / 3)
    json.dumps(summary, allow_nan=False)


def test_a_shard_made_in_a_child_process_equals_the_in_process_sample(tmp_path):
    from synthmath.runs.datasets import generate_shard, read_shard

    params = {"problem": "prim_bwd,ode1", "max_ops": 5}
    task = make_task("symbolic", params)
    expected = task.sample(4, np.random.default_rng([7, 0]))
    path = generate_shard("symbolic", params, 4, 7, 0, tmp_path / "shard-0000.npz", dataset="d")
    raw, meta = read_shard(path)
    for key in expected:
        assert (raw[key] == expected[key]).all(), key
    stats = meta["generation"]
    assert stats["accepted"] == 4
    assert stats["attempts"] == 4 + stats["timeouts"] + sum(stats["rejected_by_reason"].values())
    assert 0.0 <= stats["timeout_share"] <= 1.0
    assert not (tmp_path / ".shard-0000.progress").exists()  # progress removed once whole


def test_test_examples_seen_in_training_are_dropped():
    from types import SimpleNamespace

    from synthmath.core.raw import concat_raw, take
    from synthmath.jobs.evaluate import drop_train_overlap

    task = make_task("symbolic", {"problem": "robust_exp"})
    train = task.sample(6, np.random.default_rng(0))
    fresh = task.sample(6, np.random.default_rng(1))
    test = concat_raw([take(train, slice(0, 2)), fresh])
    seen = {str(s) for s in train["src"]}
    expected = sum(str(s) in seen for s in test["src"])  # the 2 copies, and any repeats of k
    spec = SimpleNamespace(train_data=object(), run_id="r")
    import synthmath.jobs.evaluate as ev

    original = ev.draw_dataset
    ev.draw_dataset = lambda t, ds: train
    try:
        kept, dropped = drop_train_overlap(spec, task, task, test, None, "id")
    finally:
        ev.draw_dataset = original
    assert dropped == expected >= 2
    assert not {str(s) for s in kept["src"]} & seen


def test_long_integers_encode_and_parse_back():
    """SymPy's simplifications make 100+ digit coefficients now and then: only max_len bounds
    them (the released generator's rule), so the task's codec takes any length."""
    task = make_task("symbolic", {})
    tree = ("mul", "i-" + "7" * 120, "x")
    tokens = task.codec.encode(tree)
    assert len(tokens) == 1 + 1 + 120 + 1 and tokens[1] == "INT-"
    assert task.codec.parse(tokens) == tree
