"""Classic baselines: our SINDy recovers Lotka-Volterra, the library and trees compute what was
fitted, pysindy agrees with ours, Operon's model string becomes an engine tree, the bounded
simulation fails safely, and the benchmark harness and its CLI score and write results."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from synthmath import cli
from synthmath.expressions.numeric import compile
from synthmath.tasks.regression import baselines as bl
from synthmath.tasks.regression import evaluate_benchmarks as ev
from synthmath.tasks.regression.benchmarks import integrate, load_benchmark
from synthmath.tasks.regression.fitting import symbolic_recovery

HAS_PYSINDY = importlib.util.find_spec("pysindy") is not None
HAS_OPERON = importlib.util.find_spec("pyoperon") is not None
NO_EXTRA = "the baselines extra is not installed (pip install synthmath[baselines])"


def _env(states: np.ndarray) -> dict[str, np.ndarray]:
    return {f"x_{j}": states[:, j] for j in range(states.shape[1])}


@pytest.fixture(scope="module")
def lotka_volterra():
    """ODEBench 27, x0' = x0 (1.84 - 1.45 x1), x1' = -x1 (3 - 1.62 x0): a dense clean orbit."""
    system = load_benchmark("odebench").system(27)
    return system, integrate(system, system.initial_conditions[0], n_points=2000)


def test_sindy_recovers_lotka_volterra(lotka_volterra):
    system, traj = lotka_volterra
    features, coef = bl.sindy_coefficients(traj.times, traj.states)
    expected = np.zeros_like(coef)
    index = {tuple(f): k for k, f in enumerate(features)}
    x0, x1, x0x1 = index[("x_0",)], index[("x_1",)], index[("mul", "x_0", "x_1")]
    expected[0, x0], expected[0, x0x1] = 1.84, -1.45
    expected[1, x1], expected[1, x0x1] = -3.0, 1.62
    assert np.count_nonzero(coef) == 4  # the sparse support, nothing else
    np.testing.assert_allclose(coef[expected != 0], expected[expected != 0], rtol=1e-2)
    trees = bl.sindy_fit(traj.times, traj.states)
    # the trees compute the fitted sums, and re-integrate to the trajectory (both ICs)
    theta = bl.evaluate_features(features, traj.states)
    for j, tree in enumerate(trees):
        np.testing.assert_allclose(compile(tree)(_env(traj.states)), theta @ coef[j], rtol=1e-12)
    for y0 in system.initial_conditions:
        truth = integrate(system, y0, n_points=2000)
        pred = bl.simulate(trees, truth.states[0], truth.times)
        assert bl.trajectory_r2(truth.states, pred) > 0.99


def test_library_trees_and_order():
    powers = bl.polynomial_powers(2, 3)
    assert powers[:6] == [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)] and len(powers) == 10
    assert bl.monomial_tree((2, 1)) == ("mul", "pow2", "x_0", "x_1")
    assert bl.monomial_tree((0, 7)) == ("pow", "x_1", "i7")
    states = np.random.default_rng(0).normal(size=(20, 3))
    feats = bl.library(3, degree=4, trig=True)
    theta = bl.evaluate_features(feats, states)
    for p, column in zip(bl.polynomial_powers(3, 4), theta.T, strict=False):
        np.testing.assert_allclose(column, np.prod(states ** np.array(p), axis=1), rtol=1e-12)
    np.testing.assert_allclose(theta[:, -2], np.sin(states[:, 2]))
    assert bl.linear_combination([0.0, 2.0], [("i1",), ("x_0",)]) == ("mul", "f2.0", "x_0")
    assert bl.linear_combination([0.0, 0.0], [("i1",), ("x_0",)]) == ("f0.0",)


def test_stlsq_and_derivatives():
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(200, 6))
    y = theta @ np.array([0.0, 2.0, 0.0, -0.7, 0.0, 0.0]) + 0.01 * rng.normal(size=200)
    coef = bl.stlsq(theta, y, threshold=0.1, alpha=0.05, max_iter=20)
    assert np.flatnonzero(coef).tolist() == [1, 3]
    np.testing.assert_allclose(coef[[1, 3]], [2.0, -0.7], atol=5e-3)
    # second order on irregular times: exact for a quadratic, also at the ends
    t = np.sort(rng.uniform(0, 3, 40))
    np.testing.assert_allclose(bl.derivatives(t, (t**2)[:, None])[:, 0], 2 * t, atol=1e-9)
    with pytest.raises(ValueError, match="strictly increasing"):
        bl.derivatives(t[::-1], t[:, None])


def test_simulate_fails_safely():
    times = np.linspace(0, 2, 50)
    assert bl.simulate([("pow2", "x_0")], [1.0], times) is None  # blows up at t = 1
    assert bl.simulate([("mul", "i-1", "x_0")], [1.0], times, max_evals=3) is None
    assert bl.simulate([("bogus",)], [1.0], times) is None
    pred = bl.simulate([("mul", "i-1", "x_0")], [1.0], times)
    np.testing.assert_allclose(pred[:, 0], np.exp(-times), rtol=1e-4)
    truth = np.exp(-times)[:, None]
    assert bl.trajectory_r2(truth, None) == 0.0 and bl.trajectory_r2(truth, truth * np.nan) == 0.0
    assert bl.trajectory_r2(truth, pred) > 0.999


def test_sindy_select_and_missing_extra(lotka_volterra):
    _, traj = lotka_volterra
    times, states = traj.times[::4], traj.states[::4]
    trees, config = bl.sindy_select(times, states)
    assert config in bl.DEFAULT_GRID
    assert bl.trajectory_r2(states, bl.simulate(trees, states[0], times)) > 0.99
    with pytest.raises(bl.MissingExtra, match=r"synthmath\[baselines\]"):
        bl.require("no_such_module_for_synthmath")


@pytest.mark.skipif(not HAS_PYSINDY, reason=NO_EXTRA)
def test_pysindy_matches_ours(lotka_volterra):
    _, traj = lotka_volterra
    times, states = traj.times[::4], traj.states[::4]
    for config in (bl.SindyConfig(), bl.SindyConfig(degree=2, trig=True, threshold=0.05)):
        ours, theirs = bl.sindy_fit(times, states, config), bl.pysindy_fit(times, states, config)
        for a, b in zip(ours, theirs, strict=True):
            va, vb = compile(a)(_env(states)), compile(b)(_env(states))
            np.testing.assert_allclose(va, vb, rtol=1e-8, atol=1e-8)


def test_operon_names_read_its_printing():
    from synthmath.expressions.infix import parse_infix
    from synthmath.tasks.regression.baselines_gp import operon_names

    text = "((-1.5) + (2.25 * ((0.5 * X2) ^ 2))) / sqrt(exp(X1))"
    tree = parse_infix(text, operon_names(2))
    x = np.random.default_rng(0).uniform(0.1, 2, size=(10, 2))
    expected = (-1.5 + 2.25 * (0.5 * x[:, 1]) ** 2) / np.sqrt(np.exp(x[:, 0]))
    np.testing.assert_allclose(compile(tree)(_env(x)), expected, rtol=1e-12)


@pytest.mark.skipif(not HAS_OPERON, reason=NO_EXTRA)
def test_operon_fits_a_quadratic():
    from synthmath.tasks.regression.baselines_gp import operon_fit

    x = np.random.default_rng(0).uniform(-2, 2, size=(200, 2))
    y = 2.5 * x[:, 0] ** 2 + x[:, 1]
    tree = operon_fit(x, y, seed=0, max_time=20, generations=200, population_size=500)
    truth = ("add", "mul", "f2.5", "pow2", "x_0", "x_1")
    assert symbolic_recovery(tree, truth, ("x_0", "x_1"))
    assert tree == operon_fit(x, y, seed=0, max_time=20, generations=200, population_size=500)


def test_harness_and_cli(tmp_path, capsys, monkeypatch):
    # through the odeformer task's benchmark test set and scoring (no metric of its own)
    rows = ev.evaluate("sindy", "odebench", [0.0, 0.05], [0.0, 0.5], systems=[24], seed=0)
    assert [(r["noise"], r["subsample"]) for r in rows] == [
        (0, 0),
        (0, 0.5),
        (0.05, 0),
        (0.05, 0.5),
    ]
    clean = rows[0]  # harmonic oscillator, clean
    assert clean["r2"] > 0.999 and clean["acc_r2_0.99"] == 1.0 and clean["gen_r2"] > 0.99
    assert clean["n_points"] == 200 and rows[1]["n_points"] == 100  # the task's max_points
    task, raw, _ = ev.benchmark_set("sindy", "odebench", 0.05, 0.5, [24])
    assert np.array_equal(raw["obs_values"], ev.benchmark_set("sindy", "odebench", 0.05, 0.5,
                                                              [24])[1]["obs_values"])  # fmt: skip
    assert task.params["noise"] == 0.05 and int(raw["n_obs"][0]) == 100
    out = tmp_path / "res.csv"
    assert cli.main(["baseline", "sindy", "strogatz", "--systems", "4", "--noise", "0,0.01",
                     "--out", str(out), "--fixed", "--progress"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    printed = captured.out
    assert captured.err.count("system 4 noise") == 8  # 4 starts x 2 noise levels
    assert "acc_r2_0.9" in printed and "acc_gen_0.9" in printed and "8 problems" in printed
    data = json.loads(out.with_suffix(".json").read_text())
    assert len(data["rows"]) == 8 and data["summary"][0]["n"] == 4
    assert out.read_text().startswith("benchmark,method,system")
    for argv, message in (
        (["baseline", "nope", "strogatz"], "unknown baseline 'nope'"),
        (["baseline", "sindy", "strogatz", "--noise", "a"], "--noise: expected"),
        (["baseline", "sindy", "strogatz", "--subsample", "1.5"], "--subsample: expected"),
        (["baseline", "sindy", "strogatz", "--systems", "99"], "no system 99"),
        (["baseline", "operon", "odebench"], "runs on strogatz, feynman"),
        (["baseline", "sindy", "odebench", "--points", "2"], "--points: expected"),
    ):
        assert cli.main(argv) == 2
        assert message in capsys.readouterr().err

    # a missing extra is a one-line error naming it
    def missing(name):
        raise bl.MissingExtra(f"{name} is not installed ({bl.EXTRA_HINT})")

    monkeypatch.setattr(bl, "require", missing)
    for method, benchmark in (("pysindy", "strogatz"), ("operon", "strogatz")):
        assert cli.main(["baseline", method, benchmark]) == 2
        assert "pip install synthmath[baselines]" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_OPERON, reason=NO_EXTRA)
def test_function_harness():
    rows = ev.evaluate("operon", "strogatz", [0.0], systems=[14], max_time=2)
    assert [r["name"] for r in rows] == ["strogatz_vdp2"]  # y' = -x / 10, standardised
    assert rows[0]["r2"] > 0.999 and rows[0]["acc_r2_0.99"] == 1.0
