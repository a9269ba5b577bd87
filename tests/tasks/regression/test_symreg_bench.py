"""symreg's benchmark test sets (benchmark: strogatz | feynman), checked against numpy formulas
written here by hand, and the default's dataset ids unchanged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from synthmath.core.errors import ConfigError
from synthmath.runs.plan import make_dataset
from synthmath.tasks.registry import make_task
from synthmath.tasks.regression import symreg_bench as bench
from synthmath.tasks.regression import symreg_gen as gen
from synthmath.tasks.regression.benchmarks import load_benchmark

#: the hand-written right-hand sides (specs/regression.md, Benchmarks; x = x_0, y = x_1)
STROGATZ_BY_HAND = {
    "strogatz_lv1": lambda x, y: 3 * x - 2 * x * y - x**2,
    "strogatz_lv2": lambda x, y: 2 * y - x * y - y**2,
    "strogatz_vdp1": lambda x, y: 10 * (y - (x**3 - x) / 3),
    "strogatz_vdp2": lambda x, y: -x / 10,
}
FEYNMAN_BY_HAND = {
    "I.10.7": lambda m0, v, c: m0 / np.sqrt(1 - v**2 / c**2),
    "I.9.18": lambda m1, m2, G, x1, x2, y1, y2, z1, z2: (
        G * m1 * m2 / ((x2 - x1) ** 2 + (y2 - y1) ** 2 + (z2 - z1) ** 2)
    ),
    "I.41.16": lambda w, T, h, kb, c: (
        h / (2 * np.pi) * w**3 / (np.pi**2 * c**2 * (np.exp(h / (2 * np.pi) * w / (kb * T)) - 1))
    ),
    "II.24.17": lambda w, c, d: np.sqrt(w**2 / c**2 - np.pi**2 / d**2),
}


@pytest.fixture(scope="module")
def strogatz():
    task = make_task("symreg", {"benchmark": "strogatz"})
    return task, task.sample(28, np.random.default_rng(3))


@pytest.fixture(scope="module")
def feynman():
    task = make_task("symreg", {"benchmark": "feynman", "max_points": 50})
    return task, task.sample(30, np.random.default_rng(4))


def test_strogatz_states_are_the_trajectories_of_the_systems():
    """The 400 rows of lv are 4 trajectories of 100 points on linspace(0, 10, 100) from the
    file's initial conditions (an independent RK45 solve of the hand-written system)."""
    (lv1,) = [p for p in bench.strogatz_problems() if p.name == "strogatz_lv1"]
    initial = load_benchmark("strogatz").system(4).initial_conditions
    assert lv1.states.shape == (400, 2)
    t = np.linspace(0, 10, 100)
    for k, y0 in enumerate(initial):
        rows = lv1.states[100 * k : 100 * (k + 1)]
        np.testing.assert_array_equal(rows[0], y0)
        sol = solve_ivp(
            lambda _, s: [STROGATZ_BY_HAND["strogatz_lv1"](*s), STROGATZ_BY_HAND["strogatz_lv2"](*s)],
            (0, 10), y0, t_eval=t, rtol=1e-9, atol=1e-11,
        )  # fmt: skip
        np.testing.assert_allclose(rows, sol.y.T, rtol=1e-3, atol=1e-4)


def test_strogatz_y_is_the_right_hand_side_at_the_standardised_states(strogatz):
    task, raw = strogatz
    names = list(raw["problem"])
    assert names[:14] == [p.name for p in bench.strogatz_problems()] and names[14:] == names[:14]
    assert set(raw["n_points"]) == {200} and set(raw["dim"]) == {2}
    for i, name in enumerate(names):
        if name not in STROGATZ_BY_HAND:
            continue
        z, y = task.points(raw, i)
        states = next(p for p in bench.strogatz_problems() if p.name == name).states
        by_hand = STROGATZ_BY_HAND[name](states[:, 0], states[:, 1])
        # each point is one of the 400 states: the one whose right-hand side is y
        rows = np.array([np.argmin(np.abs(by_hand - v)) for v in y])
        np.testing.assert_allclose(y, by_hand[rows], rtol=1e-12, atol=1e-12)
        assert len(set(rows.tolist())) == len(rows)
        x = states[rows]
        # z is x standardised (mean and deviation rounded to 4 significant digits)
        np.testing.assert_allclose(z, (x - x.mean(axis=0)) / x.std(axis=0), atol=2e-3)
        # the truth, written in z, gives y
        truth = tuple(str(raw["tree"][i]).split())
        np.testing.assert_allclose(gen.evaluate(truth, z), y, rtol=1e-9, atol=1e-9)


def _truth_scores(task, raw):
    hypotheses = [[task.codec.encode(tuple(str(t).split()))] for t in raw["tree"]]
    return task.score(raw, hypotheses)


def test_the_truth_scores_r2_1_and_is_recovered(strogatz, feynman):
    for task, raw in (strogatz, feynman):
        scores = _truth_scores(task, raw)
        assert scores["acc_r2_0.999"].all() and scores["recovery"].all()
        assert (scores["r2"] > 1 - 1e-6).all()
        # a wrong answer (the other component of lv) is neither
        if "strogatz_lv1" in raw["problem"]:
            i, j = (
                list(raw["problem"]).index("strogatz_lv1"),
                list(raw["problem"]).index("strogatz_lv2"),
            )
            wrong = task.score(
                {k: v[i : i + 1] for k, v in raw.items()},
                [[task.codec.encode(tuple(str(raw["tree"][j]).split()))]],
            )
            assert not wrong["recovery"].any() and not wrong["acc_r2_0.99"].any()


def test_feynman_points_lie_in_their_ranges_and_match_the_formulas():
    rng = np.random.default_rng(0)
    problems = bench.feynman_problems()
    assert len(problems) == 30 and max(p.dim for p in problems) <= 10
    for p in problems:
        x, y = bench.raw_points(p, 100, rng)
        low, high = np.array(p.ranges).T
        assert ((x >= low) & (x <= high)).all(), p.name
        assert np.isfinite(y).all() and len(y) == 100, p.name
        if p.name in FEYNMAN_BY_HAND:
            np.testing.assert_allclose(y, FEYNMAN_BY_HAND[p.name](*x.T), rtol=1e-12, err_msg=p.name)


def test_feynman_test_set_is_seeded_and_grouped_by_equation(feynman):
    task, raw = feynman
    assert list(raw["problem"]) == [p.name for p in bench.feynman_problems()]
    again = task.sample(30, np.random.default_rng(4))
    for key in raw:
        np.testing.assert_array_equal(raw[key], again[key])
    groups = task.groups(raw)
    assert set(groups["problem"]) == set(raw["problem"]) and groups["dim"][0] == "1"
    z, _ = task.points(raw, 3)  # I.9.18: 9 inputs, standardised
    assert z.shape == (50, 9)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-2)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-2)
    assert task.to_json(raw, 0)["problem"]["name"] == "I.6.2a"
    with pytest.raises(ConfigError, match="max_dim=1 variables"):
        make_task("symreg", {"benchmark": "strogatz", "max_dim": 1})
    small = make_task("symreg", {"benchmark": "feynman", "max_dim": 2, "max_points": 10})
    assert {p.dim for p in small.problems} == {1, 2}


def test_noise_applies_to_benchmark_points(strogatz):
    task, raw = strogatz
    noisy = make_task("symreg", {"benchmark": "strogatz", "noise": 0.1})
    raw_noisy = noisy.sample(28, np.random.default_rng(3))
    np.testing.assert_array_equal(raw_noisy["x"], raw["x"])
    rel = np.abs(raw_noisy["y"] - raw["y"]).sum() / np.abs(raw["y"]).sum()
    assert 0.01 < rel < 0.3
    scores = _truth_scores(noisy, raw_noisy)  # scored against the noiseless truth
    assert scores["acc_r2_0.999"].all()


def test_default_leaves_dataset_ids_and_metadata_unchanged():
    """Ids computed before the option existed."""
    assert make_dataset("symreg", {}, 5000, 0, 1, "test").id == "symreg-test-39bc86bce3"
    assert make_dataset("symreg", {"noise": 0.1, "rerank": True}, 5000, 0, 1, "test").id == (
        "symreg-test-b8e7fe09e6"
    )
    assert "benchmark" not in make_task("symreg", {}).generator_params()
    assert (
        make_task("symreg", {"benchmark": "feynman"}).generator_params()["benchmark"] == "feynman"
    )
    assert make_dataset("symreg", {"benchmark": "strogatz"}, 5000, 0, 1, "test").id != (
        "symreg-test-39bc86bce3"
    )


def test_to_symreg_writes_the_e2e_vocabulary():
    assert bench.to_symreg(("div", "x_0", "pow", "x_1", "i2")) == (
        "mul",
        "x_0",
        "inv",
        "pow2",
        "x_1",
    )
    assert bench.to_symreg(("pow", "x_0", "i-3")) == ("inv", "pow3", "x_0")
    assert bench.to_symreg(("cot", "x_0")) == ("inv", "tan", "x_0")
    assert bench.to_symreg(("mul", "div", "i1", "i2", "x_0")) == ("mul", "f0.5", "x_0")
    assert bench.to_symreg(("mul", "i1", "sqrt", "mul", "pi", "x_0")) == (
        "sqrt", "mul", f"f{np.pi!r}", "x_0",
    )  # fmt: skip
    with pytest.raises(ValueError, match="'asin' is not in the symreg vocabulary"):
        bench.to_symreg(("asin", "x_0"))
    with pytest.raises(ValueError, match="no symreg form"):
        bench.to_symreg(("pow", "x_0", "i5"))


def test_bad_feynman_file_names_the_field():
    good = json.loads(bench.FEYNMAN_FILE.read_text())
    bad = json.loads(json.dumps(good))
    bad["equations"][2]["variables"][0]["high"] = 0.5
    with pytest.raises(
        bench.BenchmarkError, match=r"equations\[2\].variables\[0\]: expected finite low < high"
    ):
        bench.parse_feynman(bad, "feynman.json")
    bad = json.loads(json.dumps(good))
    bad["equations"][0]["prefix"] = "asin x_0"
    with pytest.raises(bench.BenchmarkError, match=r"equations\[0\].prefix: operator 'asin'"):
        bench.parse_feynman(bad, "feynman.json")
    bad["equations"][0]["prefix"] = "sin x_3"
    with pytest.raises(bench.BenchmarkError, match="outside x_0..x_0"):
        bench.parse_feynman(bad, "feynman.json")


def test_the_feynman_file_is_what_the_tool_makes():
    path = Path(__file__).resolve().parents[3] / "tools" / "make_known_benchmarks.py"
    spec = importlib.util.spec_from_file_location("make_known_benchmarks", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.dumps(tool.feynman()) == bench.FEYNMAN_FILE.read_text(encoding="utf-8")
    source = Path(bench.__file__).read_text()
    for word in ("sympify", "parse_expr", "eval(", "exec(", "infix import", "pickle"):
        assert word not in source


def test_a_benchmark_dataset_shard_round_trips(tmp_path):
    """The shard holds the ``problem`` array and loads as the dataset the run expects."""
    from synthmath.runs.datasets import generate_shard, load_dataset

    params = {"benchmark": "strogatz", "max_points": 20}
    spec = make_dataset("symreg", params, 16, 0, 1, "test")
    path = generate_shard("symreg", spec.params, 16, 0, 0, tmp_path / "shard-0.npz", spec.id)
    raw, meta = load_dataset([path], spec, make_task("symreg", params))
    assert meta["params"]["benchmark"] == "strogatz" and raw["problem"][2] == "strogatz_barmag1"
    with pytest.raises(Exception, match="unexpected: problem"):
        load_dataset([path], spec, make_task("symreg", {"max_points": 20}))
