"""The odeformer task: generation as specs/regression.md says, corruption, scores, the CLI and
the benchmark test sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from synthmath.core.vocab import PAD
from synthmath.expressions.infix import indexed_names, parse_system
from synthmath.expressions.operators import OPERATORS, is_float
from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.tasks.registry import make_task
from synthmath.tasks.regression import odeformer_gen as gen
from synthmath.tasks.regression import odeformer_scoring as scoring
from synthmath.tasks.regression import odeformer_solve as solve
from synthmath.tasks.regression.benchmarks import integrate, load_benchmark

PARAMS = {"max_dim": 3, "max_points": 80}
N = 8


@pytest.fixture(scope="module")
def sampled():
    task = make_task("odeformer", PARAMS)
    return task, task.sample(N, np.random.default_rng(0))


def independent_solution(infix_text: str, dim: int, y0, times) -> np.ndarray:
    """The system written by ``infix_text``, read by the engine's infix parser, made a numpy
    function by SymPy's lambdify and solved by scipy at tight tolerances."""
    trees = parse_system(infix_text, indexed_names(dim), dim)
    names = [sp.Symbol(f"x_{j}") for j in range(dim)]
    f = sp.lambdify(names, [to_sympy(tree) for tree in trees], "numpy")
    sol = solve_ivp(
        lambda t, x: np.array(f(*x), dtype=float), (times[0], times[-1]), y0,
        t_eval=times, rtol=1e-10, atol=1e-12, method="DOP853",
    )  # fmt: skip
    assert sol.success
    return sol.y.T


def test_every_answer_integrated_from_its_first_state_gives_its_trajectory(sampled):
    task, raw = sampled
    for i in range(N):
        ex = task.to_json(raw, i)
        dim = int(raw["dim"][i])
        times, clean = task.trajectory(raw, i)
        # noise 0, subsample 0: the problem is the clean trajectory on linspace(1, 10, n)
        assert np.array_equal(ex["problem"]["times"], times)
        assert np.array_equal(ex["problem"]["trajectory"], clean)
        assert 50 <= len(times) <= 80 and np.allclose(times, np.linspace(1, 10, len(times)))
        for key in ("clean", "gen_clean"):
            t, states = task.trajectory(raw, i, key)
            solved = independent_solution(ex["answer"]["infix"], dim, states[0], t)
            assert scoring.r2_weighted(states, solved) > 0.999, (i, key)
            np.testing.assert_allclose(solved, states, rtol=0.02, atol=2e-3)
            assert (np.abs(states) < solve.MAX_VALUE).all()
        # generated vocabulary: add mul inv sin and SymPy's powers, integers and rationals
        for tree in task.truth(raw, i):
            ops = {t for t in tree if t in OPERATORS}
            assert ops <= {"add", "mul", "pow", "inv", "sin", "div"}, ops
            for t in tree:
                if is_float(t):  # constants exact in P10000 (4 significant digits)
                    assert task.codec.round_floats((t,)) == (t,)
        assert task.parse_system(ex["answer"]["tokens"], dim) == task.truth(raw, i)


def test_generation_is_seeded_and_counts_rejections(sampled):
    task, raw = sampled
    again = make_task("odeformer", PARAMS).sample(N, np.random.default_rng(0))
    for key in raw:
        assert np.array_equal(raw[key], again[key]), key
    assert task.stats["accepted"] == N
    assert task.stats["rejected_diverged"] > 0
    assert (
        sum(v for k, v in task.stats.items() if k.startswith("rejected_")) + N
        == task.stats["attempts"]
    )


def test_unaries_prefactors_and_id_as_a_no_op():
    rng = np.random.default_rng(1)
    tree = ("add", "x_0", "mul", "x_1", "x_0")
    for _ in range(50):
        wrapped, u = gen.insert_unaries(tree, 3, rng)
        assert u <= 3 and wrapped[0] == "add" and "id" not in wrapped
        assert [t for t in wrapped if t not in gen.UNARY] == list(tree)  # no sibling lost
    with_constants = gen.add_prefactors(("add", "x_0", "sin", "add", "x_1", "x_0"), rng)
    skeleton = tuple("C" if is_float(t) else t for t in with_constants)
    # an add operand gets a factor unless it is an add; a unary's add argument gets nothing
    assert skeleton == ("add", "mul", "C", "x_0", "mul", "C", "sin", "add", "mul", "C", "x_1",
                        "mul", "C", "x_0")  # fmt: skip
    only_mul = gen.add_prefactors(("mul", "x_0", "x_1"), rng)
    assert only_mul[0] == "mul" and is_float(only_mul[1]) and only_mul[2:] == ("mul", "x_0", "x_1")
    values = np.abs([gen.draw_constant(rng) for _ in range(2000)])
    assert 0.05 <= values.min() and values.max() <= 20
    assert np.median(np.log10(values)) == pytest.approx(0, abs=0.1)  # log-uniform


def test_corruption_levels_are_exact():
    rng = np.random.default_rng(2)
    times = np.linspace(1, 10, 200)
    states = np.ones((200, 3))
    t, x = gen.corrupt(times, states, 0.25, 0.0, rng)
    assert len(t) == 150 and np.all(np.diff(t) > 0) and np.isin(t, times).all()
    assert np.array_equal(x, states[:150])
    _, noisy = gen.corrupt(times, states, 0.0, 0.1, rng)
    eps = (noisy - 1.0) / 0.1
    assert abs(eps.mean()) < 0.1 and eps.std() == pytest.approx(1.0, abs=0.08)
    levels = {gen.corruption_levels(0.5, 0.1, True, rng) for _ in range(200)}
    assert {r for r, _ in levels} == {0.0, 0.125, 0.25, 0.375, 0.5}
    assert {round(g, 4) for _, g in levels} == {0.0, 0.025, 0.05, 0.075, 0.1}


def test_task_corruption_keeps_the_systems_and_drops_and_noises_the_points(sampled):
    _, raw = sampled
    task = make_task("odeformer", {**PARAMS, "subsample": 0.5, "noise": 0.1})
    noisy = task.sample(N, np.random.default_rng(0))
    for key in ("tree", "times", "clean", "gen_clean", "n_points"):
        assert np.array_equal(noisy[key], raw[key])  # corruption has its own stream
    ratios = []
    for i in range(N):
        n = int(raw["n_points"][i])
        assert noisy["n_obs"][i] == n - round(0.5 * n)
        times, clean = task.trajectory(noisy, i)
        t_obs, x_obs = task.observed(noisy, i)
        keep = np.searchsorted(times, t_obs)
        assert np.array_equal(times[keep], t_obs)
        ratios.append((x_obs / clean[keep]).ravel() - 1.0)
    assert np.concatenate(ratios).std() == pytest.approx(0.1, rel=0.15)
    assert set(noisy["noise_level"]) == {0.1} and set(noisy["drop_level"]) == {0.5}


def test_rhs_budget_is_deterministic():
    trees = (("mul", "f-50.0", "add", "x_0", "mul", "f-1.0", "sin", "x_1")), ("x_0",)
    times = np.linspace(1, 10, 100)
    y0 = np.array([0.5, -0.3])
    f = solve.fast_rhs(trees)
    nfev = solve_ivp(f, (1, 10), y0, t_eval=times).nfev
    assert nfev > 200
    ok = solve.integrate(trees, y0, times, max_evals=nfev, max_value=None)
    assert isinstance(ok, np.ndarray) and ok.shape == (100, 2)
    for _ in range(2):
        assert solve.integrate(trees, y0, times, max_evals=nfev - 1, max_value=None) == "budget"
    # the terminal event at |x| = 100, non-finite values and poles reject
    assert solve.integrate((("mul", "x_0", "x_0"),), np.array([1.0]), times, max_evals=10**5) in (
        "diverged",
    )
    assert solve.integrate((("inv", "x_0"),), np.array([0.0]), times, max_evals=100) == (
        "integration"
    )


def test_fast_rhs_agrees_with_numpy_on_the_benchmarks():
    for system in load_benchmark("odebench").systems:
        x = np.array(system.initial_conditions[0])
        np.testing.assert_allclose(solve.fast_rhs(system.trees)(0.0, x), system.rhs()(0.0, x),
                                   rtol=1e-12)  # fmt: skip


def test_scores_truth_wrong_and_garbage(sampled):
    task, raw = sampled
    sub = {k: v[:4] for k, v in raw.items()}
    exact = [task.answer_tokens(task.truth(sub, i)) for i in range(4)]
    wrong = []
    for i in range(4):
        dim = int(sub["dim"][i])
        wrong.append(task.answer_tokens([("mul", "f0.5", f"x_{j}") for j in range(dim)]))
    scores = task.score(sub, [[e, w, ["x_0", "|"]] for e, w in zip(exact, wrong)])
    assert (scores["r2"][:, 0] == 1.0).all() and (scores["gen_r2"][:, 0] == 1.0).all()
    for name in ("acc_r2_0.9", "acc_r2_0.99", "acc_biggio", "acc_gen_0.9", "recovery"):
        assert scores[name][:, 0].all() and not scores[name][:, 1].any(), name
    assert (scores["term_diff"][:, 0] == 0).all() and (scores["term_diff"][:, 1] > 0).all()
    assert (scores["parse_error"][:, 2] == 1).all() and (scores["r2"][:, 2] == 0).all()
    assert (scores["r2_zero"][:, 1] < 0.9).all()
    # reranking by the fit to the observed points puts the truth first
    reranked = make_task("odeformer", {**PARAMS, "rerank": True}).score(
        sub, [[w, e] for e, w in zip(exact, wrong)]
    )
    assert reranked["recovery"][:, 0].all() and not reranked["recovery"][:, 1].any()


def test_score_helpers():
    y = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 8.0]])
    assert scoring.r2_weighted(y, y) == 1.0
    assert scoring.r2_weighted(y, y.mean(axis=0) + 0 * y) == 0.0
    assert scoring.r2_weighted(y, np.full_like(y, np.nan)) == 0.0
    assert scoring.biggio(y, y * 1.04) and not scoring.biggio(y, y * 1.06)
    truth = (("add", "mul", "f2.0", "x_0", "sin", "x_1"),)
    pred = (("add", "mul", "f2.5", "x_0", "cos", "x_1"),)
    assert scoring.term_difference(pred, truth) == 1.0  # one missing, one extra, of two
    assert scoring.recovered((("add", "sin", "x_1", "mul", "f2.0", "x_0"),), truth)
    assert not scoring.recovered((("add", "mul", "f2.01", "x_0", "sin", "x_1"),), truth)


def test_points_encode_one_position_per_time_point(sampled):
    task, raw = sampled
    ids, counts = task.encode_src(raw)
    assert ids.shape[2] == task.tokens_per_point() == 12 and task.input_kind == "point_set"
    vocab = task.src_vocab()
    for i in range(2):
        dim, n = int(raw["dim"][i]), int(counts[i])
        assert n == raw["n_obs"][i] and (ids[i, n:] == PAD).all()
        point = ids[i, 1]
        assert (point[3 * (dim + 1) :] == PAD).all() and (point[: 3 * (dim + 1)] != PAD).all()
        values = task.codec.encoding.decode([vocab.tokens[t] for t in point[: 3 * (dim + 1)]],
                                            dim + 1)  # fmt: skip
        expected = [raw["obs_times"][i, 1], *raw["obs_values"][i, 1, :dim]]
        np.testing.assert_allclose(values, expected, rtol=1e-3)


def test_cli_sample_prints_the_documented_fields(capsys):
    from synthmath.cli import main

    assert main(["sample", "odeformer", "noise=0", "subsample=0", "max_dim=2", "-n", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    for ex in lines:
        times = np.array(ex["problem"]["times"])
        trajectory = np.array(ex["problem"]["trajectory"])
        dim = trajectory.shape[1]
        assert trajectory.shape == (len(times), dim) and times[0] == 1.0 and times[-1] == 10.0
        assert ex["answer"]["tokens"].count("|") == dim - 1
        solved = independent_solution(ex["answer"]["infix"], dim, trajectory[0], times)
        assert scoring.r2_weighted(trajectory, solved) > 0.999


def test_benchmark_test_sets():
    task = make_task("odeformer", {"benchmark": "odebench", "noise": 0.01})
    raw = task.sample(63, np.random.default_rng(0))
    bench = load_benchmark("odebench")
    assert list(raw["system"]) == [s.name for s in bench.systems]
    (lorenz,) = [s for s in bench.systems if s.name.endswith("standard parameters (chaotic)")]
    i = list(raw["system"]).index(lorenz.name)
    for key, start in (("clean", 0), ("gen_clean", 1)):
        expected = integrate(lorenz, lorenz.initial_conditions[start], bench.solver, 200)
        np.testing.assert_array_equal(task.trajectory(raw, i, key)[1], expected.states)
    strogatz = make_task("odeformer", {"benchmark": "strogatz"}).sample(
        30, np.random.default_rng(0)
    )
    assert strogatz["system"][0] == strogatz["system"][3] != strogatz["system"][4]
    assert strogatz["system"][28] == strogatz["system"][0]  # 28 problems, then again
    assert (strogatz["n_points"] == 100).all() and (strogatz["dim"] == 2).all()
    # the truth (constants at 4 digits) reconstructs the non-chaotic systems
    sub = {k: v[:8] for k, v in raw.items()}
    exact = [[task.answer_tokens(task.truth(sub, i))] for i in range(8)]
    scores = task.score(sub, exact)
    assert scores["acc_r2_0.99"].all() and scores["acc_gen_0.99"].all()
    assert scores["recovery"].all()


def test_length_bounds_hold(sampled):
    from synthmath.train.batches import EncodedSet

    task, raw = sampled
    encoded = EncodedSet(task, raw)
    src, tgt = task.length_bound()
    assert encoded.src_len.max() <= src == 80 and encoded.tgt_len.max() <= tgt == 512
    short = make_task("odeformer", {**PARAMS, "max_answer_tokens": 20})
    raw_short = short.sample(2, np.random.default_rng(0))
    assert EncodedSet(short, raw_short).tgt_len.max() <= 22 and short.stats["rejected_length"]
    bench = make_task("odeformer", {"benchmark": "strogatz"})
    encoded = EncodedSet(bench, bench.sample(28, np.random.default_rng(0)))
    assert (encoded.src_len.max(), encoded.tgt_len.max()) == bench.length_bound()


def test_rescaling_writes_the_system_in_scaled_coordinates(sampled):
    from synthmath.expressions.operators import infix

    _, raw = sampled
    task = make_task("odeformer", {**PARAMS, "rescale": True})
    ids, counts = task.encode_src(raw)
    vocab = task.src_vocab()
    for i in range(4):
        dim = int(raw["dim"][i])
        first = task.codec.encoding.decode([vocab.tokens[t] for t in ids[i, 0, : 3 * (dim + 1)]],
                                           dim + 1)  # fmt: skip
        np.testing.assert_allclose(first, 1.0)  # t = 1, every variable / its first value
        scale = task.scale(raw, i)
        times, clean = task.trajectory(raw, i)
        tau, scaled = scale.apply(times, clean)
        assert tau[-1] == pytest.approx(10.0)
        text = " | ".join(infix(t) for t in task.target_system(raw, i))
        solved = independent_solution(text, dim, scaled[0], tau)
        assert scoring.r2_weighted(scaled, solved) > 0.999
    exact = [[task.answer_tokens(task.target_system(raw, i))] for i in range(4)]
    scores = task.score({k: v[:4] for k, v in raw.items()}, exact)
    assert scores["recovery"].all() and scores["acc_r2_0.99"].all()
    assert (scores["r2"] > 0.999).all()
