"""Inference for symreg: refinement in scoring (e2e / skeleton / none), extrapolation scoring,
the SymbolicRegressor (standardisation written back exactly), CSV errors and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from synthmath.core.errors import ConfigError, DataError
from synthmath.tasks.registry import make_task
from synthmath.tasks.regression import inference
from synthmath.tasks.regression import symreg_gen as gen
from synthmath.tasks.regression.fitting import constants_of, r2, refine, select, with_constants

#: 2.5 sin(1.3 x_0) + 0.7
TRUTH = ("add", "f0.7", "mul", "f2.5", "sin", "mul", "f1.3", "x_0")


def points(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).standard_normal((n, 1))
    return x, gen.evaluate(TRUTH, x)


def test_refinement_recovers_known_constants_from_perturbed_and_random_starts():
    x, y = points()
    where, c = constants_of(TRUTH)
    guess = with_constants(TRUTH, where, c * np.array([1.3, 0.8, 1.1]))
    fitted, loss = refine(guess, x, y)
    assert loss < 1e-12
    np.testing.assert_allclose(constants_of(fitted)[1], c, rtol=1e-6)
    # the skeleton baseline: N(0, 1) starts (one per seed); sign-symmetric optima count
    wins = 0
    for seed in range(6):
        rows = select([TRUTH], x, y, mode="skeleton", rng=np.random.default_rng(seed))
        assert not set(constants_of(rows[-1][0])[1]) & set(c)  # predicted constants unused
        wins += rows[0][1] > 1 - 1e-9
    assert wins >= 3
    # without refinement the candidate is kept as predicted
    assert select([guess], x, y, mode="none") == [(guess, r2(y, gen.evaluate(guess, x)), False)]


def raw_of(task, tree, x):
    ex = gen.Example(tree, x, gen.evaluate(tree, x), x.shape[1], 2, 1)
    return task.to_raw([ex])


def test_scoring_options_refine_and_extrapolate():
    x, _ = points(80)
    params = {"max_dim": 2, "max_points": 80}
    where, c = constants_of(TRUTH)
    near = with_constants(TRUTH, where, np.round(c * 1.2, 3))
    hyps = [[["x_0"], ["add", "x_0"], make_task("symreg", params).codec.encode(near)]]
    scores = {}
    for mode in ("none", "e2e", "skeleton"):
        task = make_task("symreg", params | {"refine": mode, "n_refine": 3})
        raw = raw_of(task, TRUTH, x)
        scores[mode] = task.score(raw, hyps)
    none = scores["none"]  # as decoded: today's scores
    assert none["parse_error"][0].tolist() == [0.0, 1.0, 0.0]
    assert not none["acc_r2_0.999"][0].any() and none["r2"][0, 2] < 0.999
    assert none["r2"][0, 0] == r2(gen.evaluate(TRUTH, x), x[:, 0])
    e2e = scores["e2e"]  # refined first, then the unrefined, then what did not parse
    assert e2e["acc_r2_0.999"][0, 0] and e2e["recovery"][0, 0]
    assert e2e["parse_error"][0].tolist() == [0.0, 0.0, 0.0]
    assert e2e["r2"][0, 1] == none["r2"][0, 2] and e2e["r2"][0, 2] == none["r2"][0, 0]
    skeleton = scores["skeleton"]
    assert np.isfinite(skeleton["r2"][0]).sum() >= 2
    # extrapolation: sin(x) ~ x near 0 only; the truth stays exact at every scale
    task = make_task("symreg", params)
    raw = raw_of(task, ("sin", "x_0"), x)
    r2_at = {}
    for scale in (1.0, 8.0):
        task = make_task("symreg", params | {"extrapolation_scale": scale})
        s = task.score(raw, [[["x_0"], ["sin", "x_0"]]])
        assert s["r2"][0, 1] == 1.0
        r2_at[scale] = s["r2"][0, 0]
    assert r2_at[8.0] < r2_at[1.0] < 1.0
    again = make_task("symreg", params | {"extrapolation_scale": 8.0}).score(raw, [[["x_0"]]])
    assert again["r2"][0, 0] == r2_at[8.0]  # seeded per example


class TruthRegressor(inference.SymbolicRegressor):
    """A stub whose "model" decodes ``truth`` (in original units) rewritten in the
    standardised inputs, constants rounded to 3 digits: refinement fixes them."""

    truth: tuple = ()

    def _decode(self, z, y, bags):
        # x_k = mu_j + sigma_j z_j for the selected columns k = features_[j]
        out = []
        for token in self.truth:
            if token.startswith("x_"):
                j = int(np.flatnonzero(self.features_ == int(token[2:]))[0])
                mu, sigma = round(float(self.mu_[j]), 3), round(float(self.sigma_[j]), 3)
                out += ["add", f"f{mu!r}", "mul", f"f{sigma!r}", f"x_{j}"]
            else:
                out.append(token)
        codec = self.task.codec
        return [codec.encode(tuple(out)), codec.encode(("x_0",))] * len(bags)


def test_regressor_writes_the_standardised_fit_back_exactly():
    task = make_task("symreg")
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 5.0, (300, 12))
    truth = ("add", "f0.7", "mul", "f2.5", "sin", "mul", "f0.3", "x_11")
    truth = ("add", *truth, "mul", "f-1.5", "x_4")
    y = gen.evaluate(truth, x)
    reg = TruthRegressor(None, task, n_bags=2)
    reg.truth = truth
    reg.fit(x, y)
    assert len(reg.features_) == 10 and {4, 11} <= set(reg.features_.tolist())
    assert reg.n_bags_ == 2 and reg.n_decoded_ == 4
    assert reg.r2_ > 1 - 1e-10 and reg.candidates_[0][2]  # refined
    z = (x[:, reg.features_] - reg.mu_) / reg.sigma_
    assert np.array_equal(reg.predict(x), gen.evaluate(reg.tree_std_, z))  # exact rewrite
    expr = reg.sympy()
    assert expr.free_symbols == {sp.Symbol("x_4"), sp.Symbol("x_11")}
    f = sp.lambdify([sp.Symbol("x_4"), sp.Symbol("x_11")], expr, "numpy")
    np.testing.assert_allclose(f(x[:, 4], x[:, 11]), reg.predict(x), rtol=1e-9, atol=1e-9)
    assert "x_11" in reg.expression_ and "x_0" not in reg.tree_  # original column names
    with pytest.raises(DataError, match="12 columns"):
        reg.predict(x[:, :3])


def test_regressor_refine_modes():
    task = make_task("symreg", {"max_dim": 2})
    x, y = points(200, seed=2)
    x = x * 3 + 1
    y = gen.evaluate(TRUTH, x)
    fits = {}
    for mode in ("none", "e2e", "skeleton"):
        reg = TruthRegressor(None, task, refine=mode, seed=0)
        reg.truth = TRUTH
        fits[mode] = reg.fit(x, y)
    none = fits["none"]  # the decoded candidate as it is: rounded constants, no refinement
    assert not any(refined for _, _, refined in none.candidates_)
    assert none.tree_std_ == task.codec.parse(none._decode(None, None, [0])[0])
    assert 0.9 < none.r2_ < fits["e2e"].r2_ and fits["e2e"].r2_ > 1 - 1e-9
    assert np.isfinite(fits["skeleton"].r2_)
    with pytest.raises(ConfigError, match="refine: expected one of none, e2e, skeleton"):
        TruthRegressor(None, task, refine="bfgs")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A randomly initialised symreg model saved as a run directory (decoded on one thread:
    a tiny model on a busy machine is 50x slower on two)."""
    import torch

    from synthmath.runs.artifacts import RunDir, build_model, save_model
    from synthmath.runs.plan import build_plan

    model = {"d_model": 16, "n_heads": 2, "n_enc_layers": 1, "n_dec_layers": 1, "max_len": 256}
    params = {"max_dim": 2, "max_points": 50}
    config = {"studies": {"s": {"task": "symreg", "params": params, "model": model}}}
    run = next(iter(build_plan(config).runs.values()))
    task = make_task("symreg", run.params)
    torch.manual_seed(0)
    net = build_model(run, task)
    run_dir = tmp_path_factory.mktemp("symreg") / "run"
    save_model(RunDir(run_dir).model, net, task, run)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield net, task, run_dir
    torch.set_num_threads(threads)


@pytest.mark.parametrize("options", [{"beam_size": 2}, {"sampling": 3, "temperature": 1.0}])
def test_regressor_decodes_a_real_model_without_crashing(tiny, options):
    net, task, _ = tiny
    x, y = points(120)
    reg = inference.SymbolicRegressor(net, task, max_len=6, **options)
    bags = reg._bags(120, np.random.default_rng(0))
    assert [len(b) for b in bags] == [40, 40, 40]  # at most the model's 50 points each
    hyps = reg._decode(x, y, bags)
    per = options.get("sampling") or options["beam_size"]
    assert len(hyps) == 3 * per and all(len(h) <= 6 for h in hyps)
    assert all(t in task.tgt_vocab().index for h in hyps for t in h)
    try:  # an untrained model rarely writes a formula: a clear error, or a fit
        reg.fit(x, y)
    except DataError as err:
        assert f"none of the model's {3 * per} hypotheses evaluates" in str(err)
    else:
        np.testing.assert_array_equal(reg.predict(x), gen.evaluate(reg.tree_, x))


def write(tmp_path, text: str):
    path = tmp_path / "points.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        ("", None, "empty file"),
        ("\n\n", None, "empty file"),
        ("1,2\n3,4\n", None, "line 1 must be a header"),
        ("a,b\n", None, r"0 row\(s\) of points; need at least 2"),
        ("a,b\n1,2\n", None, r"1 row\(s\) of points; need at least 2"),
        ("a,b\n1,2\n3,4\n", "c", "no column 'c' \\(columns: a, b\\)"),
        ("y\n1\n2\n", None, "at least 2 columns"),
        ("a,a\n1,2\n3,4\n", None, "distinct"),
        ("a,b\n1,2\n3,x\n", None, "row 2 \\(line 3\\), column 'b': not a number: 'x'"),
        ("a,b\n1,2\n,4\n", None, "row 2 \\(line 3\\), column 'a': not a number: ''"),
        ("a,y,b\n1,2,3\n1,nan,3\n", None, "row 2 \\(line 3\\), column 'y': not finite: 'nan'"),
        ("a,b\n1,inf\n3,4\n", None, "column 'b': not finite"),
        ("a,b\n1,2\n3\n", None, "row 2 \\(line 3\\) has 1 columns, expected 2"),
    ],
)
def test_bad_csv_is_a_one_line_error_naming_the_file(tmp_path, text, target, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message) as err:
        inference.read_points(path, target)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_csv_target_defaults_to_y_then_the_last_column(tmp_path):
    pts = inference.read_points(write(tmp_path, "a,y,b\n1,2,3\n4,5,6\n"))
    assert pts.target == "y" and pts.names == ["a", "b"]
    assert pts.x.tolist() == [[1, 3], [4, 6]] and pts.y.tolist() == [2, 5]
    pts = inference.read_points(write(tmp_path, "\ufeffa, out\n1,2\n4,5\n"))
    assert pts.target == "out" and pts.names == ["a"]  # a byte-order mark is not a name
    assert inference.read_points(write(tmp_path, "a,b\n1,2\n4,5\n"), "a").names == ["b"]


def test_cli_fit_symreg_prints_expression_r2_and_plots(tiny, tmp_path, capsys, monkeypatch):
    from synthmath.cli import main

    _, _, run_dir = tiny
    x, y = points(60)
    lines = ["t,speed"] + [f"{a!r},{b!r}" for a, b in zip(x[:, 0].tolist(), y.tolist())]
    path = write(tmp_path, "\n".join(lines) + "\n")
    monkeypatch.setattr(TruthRegressor, "truth", TRUTH)
    monkeypatch.setattr(inference, "SymbolicRegressor", TruthRegressor)
    plot = tmp_path / "fit.png"
    assert main(["fit", "symreg", str(path), "--run", str(run_dir), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("expression: ") and "named:      speed = " in out
    assert "variables:  x_0 = t" in out and "R^2:        1 on the 60 points" in out
    assert "time:" in out and plot.stat().st_size > 1000
    text = out.splitlines()[0].removeprefix("expression: ")
    expr = sp.parse_expr(text, {"x_0": sp.Symbol("x_0")})
    np.testing.assert_allclose(sp.lambdify(sp.Symbol("x_0"), expr)(x[:, 0]), y, atol=1e-3)
    # errors: one line naming the file, exit 2
    assert main(["fit", "symreg", str(path), "--run", str(run_dir), "--target", "v"]) == 2
    assert f"synthmath: error: {path}: no column 'v'" in capsys.readouterr().err
    assert main(["fit", "symreg", str(path), "--run", str(run_dir), "--time", "t"]) == 2
    assert "fit: --time is not an option of task 'symreg'" in capsys.readouterr().err
    assert main(["fit", "symreg", str(path)]) == 2
    assert "task 'symreg' needs a trained model: --run" in capsys.readouterr().err
