"""The symreg task: generation as specs/regression.md says, scores, refinement and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from synthmath.core.vocab import PAD
from synthmath.expressions.operators import OPERATORS, PRESETS, is_float
from synthmath.tasks.registry import make_task
from synthmath.tasks.regression import symreg_gen as gen
from synthmath.tasks.regression.fitting import acc_tau, r2, refine, select, symbolic_recovery


@pytest.fixture(scope="module")
def sampled():
    task = make_task("symreg", {"max_points": 60})
    return task, task.sample(24, np.random.default_rng(0))


def test_every_answer_evaluated_on_its_points_gives_y(sampled):
    task, raw = sampled
    for i in range(24):
        tree = tuple(str(raw["tree"][i]).split())
        x, y = task.points(raw, i)
        dim = int(raw["dim"][i])
        assert x.shape == (raw["n_points"][i], dim)
        assert min(5 * dim, 60) <= len(y) <= 60
        assert np.array_equal(gen.evaluate(tree, x), y)
        assert np.isfinite(y).all() and (np.abs(y) < gen.MAX_ABS_Y).all()
        # every variable used, only the example's own; constants 3-digit decimals
        assert {t for t in tree if t.startswith("x_")} == set(gen.variables(dim))
        for t in tree:
            assert t in OPERATORS or t.startswith("x_") or is_float(t)
            if is_float(t):
                v = abs(float(t[1:]))
                assert 1e-3 <= v <= 99.9 and round(v * 1000) == pytest.approx(v * 1000)
        assert set(tree) & set(OPERATORS) <= {*PRESETS["e2e"].unary, *PRESETS["e2e"].binary}
        np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-9)  # standardised
        # the answer tokens parse back to the same tree (constants exact in P10000)
        assert task.codec.parse(task.codec.encode(tree)) == tree


def test_generation_is_seeded_and_rejects_as_the_spec_says(sampled):
    task, raw = sampled
    again = make_task("symreg", {"max_points": 60}).sample(24, np.random.default_rng(0))
    for key in raw:
        assert np.array_equal(raw[key], again[key]), key
    assert task.stats["rejected_dimension"] > 0
    assert task.stats["accepted"] == 24


def test_affine_constants_wrap_operands_and_unary_arguments():
    rng = np.random.default_rng(1)
    tree = gen.add_constants(("add", "x_0", "sin", "x_1"), rng)
    skeleton = tuple("C" if is_float(t) else t for t in tree)
    assert skeleton == (
        "add", "C", "add", "mul", "C", "x_0", "mul", "C", "sin", "add", "C", "mul", "C", "x_1",
    )  # fmt: skip


def test_unaries_go_above_small_subtrees_only():
    rng = np.random.default_rng(2)
    big = ("mul", "add", "x_0", "x_1", "sub", "x_2", "x_0")  # 7 nodes: the root is too big
    for _ in range(20):
        tree, count = gen.insert_unaries(big, 4, rng)
        assert count == 4 and len(tree) == 11
        assert tree[0] == "mul"  # the root (7 nodes) is never wrapped


def test_points_encode_one_position_per_point(sampled):
    task, raw = sampled
    ids, counts = task.encode_src(raw)
    assert ids.shape[2] == task.tokens_per_point() == 33
    vocab = task.src_vocab()
    for i in (0, 1):
        dim, n = int(raw["dim"][i]), int(counts[i])
        assert (ids[i, n:] == PAD).all()
        point = ids[i, 0]
        assert (point[3 * dim : 30] == PAD).all() and (point[: 3 * dim] != PAD).all()
        decoded = task.codec.encoding.decode([vocab.tokens[t] for t in point[30:]], 1)[0]
        assert decoded == pytest.approx(raw["y"][i, 0], rel=1e-3)
    # points of fewer variables (a test set with a smaller max_dim) are padded alike
    narrow = {**raw, "x": raw["x"][:, :, :2]}
    keep = raw["dim"] <= 2
    assert np.array_equal(task.encode_src(narrow)[0][keep], ids[keep])
    assert task.input_kind == "point_set"


def test_scores():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert r2(y, y) == 1.0 and r2(y, np.full(4, 2.5)) == 0.0
    assert r2(y, np.array([1.0, np.nan, 3.0, 4.0])) == -np.inf
    assert acc_tau(y, y * 1.005, 0.01) and not acc_tau(y, y * 1.05, 0.01)
    x = ("add", "f1.5", "mul", "f2.0", "sin", "x_0")
    assert symbolic_recovery(("add", "f7.0", "mul", "f2.0", "sin", "x_0"), x, ("x_0",))
    assert symbolic_recovery(("mul", "f-3.0", "sin", "x_0"), ("sin", "x_0"), ("x_0",))
    assert symbolic_recovery(("mul", "f1.0004", "sin", "x_0"), ("sin", "x_0"), ("x_0",))
    assert not symbolic_recovery(("cos", "x_0"), ("sin", "x_0"), ("x_0",))
    assert not symbolic_recovery(("sin", "x_1"), ("sin", "x_0"), ("x_0",))


def test_nbest_rerank_by_r2(sampled):
    task, raw = sampled
    sub = {k: v[:3] for k, v in raw.items()}
    exact = [task.codec.encode(tuple(str(t).split())) for t in sub["tree"]]
    wrong = [["add", "x_0", "x_0"]] * 3
    plain = task.score(sub, [[w, e] for w, e in zip(wrong, exact)])
    assert plain["acc_r2_0.99"][:, 1].all() and not plain["acc_r2_0.99"][:, 0].any()
    reranked = make_task("symreg", {"max_points": 60, "rerank": True})
    scores = reranked.score(sub, [[w, e] for w, e in zip(wrong, exact)])
    assert scores["acc_r2_0.99"][:, 0].all() and scores["recovery"][:, 0].all()


def test_refinement_recovers_constants_from_noiseless_points():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((100, 2))
    truth = ("add", "f0.5", "mul", "f2.3", "sin", "add", "f0.3", "mul", "f1.7", "x_0")
    truth = ("add", *truth, "mul", "f-0.8", "x_1")
    y = gen.evaluate(truth, x)
    guess = tuple(f"f{float(t[1:]) * 1.1!r}" if is_float(t) else t for t in truth)
    fitted, loss = refine(guess, x, y)
    assert loss < 1e-10 and r2(y, gen.evaluate(fitted, x)) > 0.999999
    for a, b in zip(fitted, truth):
        if is_float(b):
            assert float(a[1:]) == pytest.approx(float(b[1:]), rel=1e-4)
    # the skeleton baseline from N(0, 1) starts: never worse than its start, finite
    _, skeleton_loss = refine(truth, x, y, start="random", rng=np.random.default_rng(0))
    assert np.isfinite(skeleton_loss)


def test_cli_sample_prints_points_and_a_sympy_readable_answer(capsys):
    from synthmath.cli import main

    assert main(["sample", "symreg", "max_points=20", "-n", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    for ex in lines:
        x, y = np.array(ex["problem"]["x"]), np.array(ex["problem"]["y"])
        dim = x.shape[1]
        names = sp.symbols(f"x_0:{dim}")
        expr = parse_expr(ex["answer"]["infix"], {f"x_{j}": s for j, s in enumerate(names)})
        f = sp.lambdify(names, expr, "numpy")
        np.testing.assert_allclose(np.broadcast_to(f(*x.T), y.shape), y, rtol=1e-9)
        assert ex["answer"]["tokens"][0] == "add"


def test_refinement_stops_at_its_evaluation_budget():
    x = np.linspace(-1, 1, 50)[:, None]
    truth = ("mul", "f2.0", "exp", "mul", "f0.5", "x_0")
    y = gen.evaluate(truth, x)
    start = ("mul", "f1.0", "exp", "mul", "f1.0", "x_0")
    _, few = refine(start, x, y, max_evals=3)
    _, many = refine(start, x, y)
    assert many < 1e-8 < few <= float(np.mean((gen.evaluate(start, x) - y) ** 2))


def test_select_dedupes_skeletons_refines_and_reranks():
    x = np.random.default_rng(4).standard_normal((80, 1))
    y = gen.evaluate(("add", "f1.25", "mul", "f3.0", "x_0"), x)
    candidates = [
        ("add", "f1.0", "mul", "f2.0", "x_0"),
        ("add", "f9.0", "mul", "f-2.0", "x_0"),  # same skeleton: dropped
        ("sin", "x_0"),
        ("ln", "x_0"),  # NaN at negative points: dropped
        ("x_1",),  # a variable the points lack: dropped
    ]
    rows = select(candidates, x, y, n_refine=2)
    best, score, refined = rows[0]
    assert refined and score > 1 - 1e-12
    assert [r[0] for r in rows if not r[2]] == [candidates[0], candidates[2]]
    assert all(a[1] >= b[1] for a, b in zip(rows, rows[1:]))


def test_noisy_points_are_scored_against_the_noiseless_truth():
    task = make_task("symreg", {"max_dim": 2, "max_points": 40, "noise": 0.1})
    raw = task.sample(4, np.random.default_rng(5))
    tree = tuple(str(raw["tree"][0]).split())
    x, y = task.points(raw, 0)
    assert not np.allclose(gen.evaluate(tree, x), y)  # the observed y are noisy
    scores = task.score(raw, [[task.codec.encode(tuple(str(t).split()))] for t in raw["tree"]])
    assert scores["acc_tau_0.001"].all() and (scores["r2"] == 1.0).all()
