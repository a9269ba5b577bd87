"""Fitting a trained odeformer model to a trajectory: the ODERegressor (rescaling written back
exactly, ranking, dedupe), a tiny real model through beam and sampling, CSV errors and the
``synthmath fit odeformer`` command."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.integrate import solve_ivp

from synthmath.core.errors import ConfigError, DataError
from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.tasks.registry import make_task
from synthmath.tasks.regression import ode_inference as ode
from synthmath.tasks.regression.odeformer_scale import Scale

#: a damped oscillator: x_0' = x_1, x_1' = -2 x_0 - 0.5 x_1
TRUTH = (("x_1",), ("add", "mul", "f-2.0", "x_0", "mul", "f-0.5", "x_1"))
#: grows without bound: ranks below the truth
WRONG = (("x_1",), ("x_0",))
Y0 = (1.5, -0.7)


def reference(trees, y0, times) -> np.ndarray:
    """An independent solution: SymPy's lambdify and scipy at tight tolerances."""
    names = sp.symbols(f"x_0:{len(trees)}")
    fns = [sp.lambdify(names, to_sympy(tree), "math") for tree in trees]
    sol = solve_ivp(
        lambda t, x: [f(*x) for f in fns], (times[0], times[-1]), y0, t_eval=times,
        method="DOP853", rtol=1e-12, atol=1e-12,
    )  # fmt: skip
    assert sol.success
    return sol.y.T


def observed(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The truth at ``n`` irregular times on [0.5, 7]."""
    rng = np.random.default_rng(seed)
    times = np.sort(np.concatenate([[0.5, 7.0], rng.uniform(0.5, 7.0, n - 2)]))
    return times, reference(TRUTH, Y0, times)


class TruthRegressor(ode.ODERegressor):
    """A stub "model" that writes the truth (in the scaled coordinates when the task rescales,
    as a trained model would: through SymPy and the P10000 rounding), with garbage, a
    system of the wrong dimension, a wrong system and a duplicate around it."""

    truth: tuple = TRUTH

    def _decode(self, raw):
        self.raw_ = raw
        task = self.task
        truth = self.truth if self.scale_ is None else self.scale_.to_scaled(self.truth, task.codec)
        right = task.answer_tokens(truth)
        return [["@@"], task.answer_tokens(WRONG), ["x_0"], right, list(right)]


def test_fit_recovers_the_truth_raw_and_ranks_and_dedupes():
    task = make_task("odeformer", {"max_dim": 2})
    times, values = observed()
    reg = TruthRegressor(None, task).fit(times, values)
    assert reg.scale_ is None and reg.n_decoded_ == 5
    assert reg.n_parsed_ == 2 and reg.n_integrable_ == 2  # garbage, 1-D and duplicate dropped
    assert [c.trees for c in reg.candidates_] == [TRUTH, WRONG]
    assert reg.candidates_[0].score < 1e-5 < reg.candidates_[1].score
    assert reg.trees_ == TRUTH and reg.r2_ > 1 - 1e-9
    x0, x1 = sp.symbols("x_0 x_1")
    assert reg.sympy() == [x1, sp.Float(-2.0) * x0 - sp.Float(0.5) * x1]
    parts = reg.expression_.split(" | ")  # infix that SymPy reads back
    assert [sp.parse_expr(p, {"x_0": x0, "x_1": x1}) for p in parts] == reg.sympy()
    # predict: from the first observed state by default (a later start is the same curve),
    # from any y0 at times[0] otherwise
    np.testing.assert_allclose(reg.predict(times), values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reg.predict(times[10:]), reg.predict(times)[10:], rtol=1e-12)
    other = reference(TRUTH, (0.2, 1.0), times[20:])
    np.testing.assert_allclose(reg.predict(times[20:], y0=(0.2, 1.0)), other, atol=1e-5)
    assert reg.predict([times[0]]).tolist() == [values[0].tolist()]
    with pytest.raises(DataError, match="before the first observed time"):
        reg.predict(times - 1)
    with pytest.raises(DataError, match="y0 must be 2 finite values"):
        reg.predict(times, y0=(1.0,))
    with pytest.raises(ValueError, match="call fit"):
        ode.ODERegressor(None, task).predict(times)


def test_rescaled_fit_is_written_back_exactly():
    task = make_task("odeformer", {"max_dim": 2, "rescale": True})
    times, values = observed()
    reg = TruthRegressor(None, task).fit(times, values)
    scale = reg.scale_
    assert scale == Scale.of(times, values)  # t onto [1, 10], variables / their first value
    assert scale.a + scale.b * times[0] == pytest.approx(1.0)
    assert scale.a + scale.b * times[-1] == pytest.approx(10.0)
    ids, _ = task.encode_src(reg.raw_)
    vocab = task.src_vocab()
    first = task.codec.encoding.decode([vocab.tokens[i] for i in ids[0, 0, :9]], 3)
    np.testing.assert_allclose(first, 1.0)  # the model reads the scaled observations
    best = reg.candidates_[0]
    assert best.predicted == scale.to_scaled(TRUTH, task.codec) != best.trees
    # the predicted system, integrated in the scaled coordinates (tau = a + b t, y = x / s)
    # and mapped back, is what predict() gives in the data's units
    s = np.array(scale.s)
    scaled = reference(best.predicted, values[0] / s, scale.a + scale.b * times)
    np.testing.assert_allclose(reg.predict(times), scaled * s, rtol=1e-5, atol=1e-6)
    # the written-back right-hand side is s_j b g_j(x / s) at every point
    names = sp.symbols("x_0 x_1")
    for j in range(2):
        f = sp.lambdify(names, to_sympy(best.trees[j]), "numpy")
        g = sp.lambdify(names, to_sympy(best.predicted[j]), "numpy")
        lhs = f(values[:, 0], values[:, 1])
        rhs = s[j] * scale.b * g(values[:, 0] / s[0], values[:, 1] / s[1])
        np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
    # the truth through P10000 rounding in the scaled coordinates: still a near-perfect fit
    assert reg.r2_ > 0.9999
    for fitted, true in zip(reg.sympy(), (to_sympy(t) for t in TRUTH), strict=True):
        point = {sp.Symbol("x_0"): 0.7, sp.Symbol("x_1"): -1.3}
        assert float(fitted.subs(point)) == pytest.approx(float(true.subs(point)), rel=1e-3)


def test_long_trajectories_are_thinned_for_the_encoder():
    rows = ode.encoded_rows(120, 50)
    assert len(rows) == len(set(rows.tolist())) == 50 and rows[0] == 0 and rows[-1] == 119
    assert (np.diff(rows) >= 2).all() and ode.encoded_rows(30, 50).tolist() == list(range(30))
    task = make_task("odeformer", {"max_dim": 2, "max_points": 50, "min_points": 20})
    times, values = observed(120)
    reg = TruthRegressor(None, task).fit(times, values)
    assert reg.raw_["n_obs"].tolist() == [50] and reg.raw_["obs_times"][0, -1] == times[-1]
    assert reg.r2_ > 1 - 1e-9  # scored on all 120 points
    assert len(reg.predict(times)) == 120


def test_fit_rejects_bad_arrays_and_options():
    task = make_task("odeformer", {"max_dim": 2})
    times, values = observed(10)
    bad = [
        ((times[:5], values), r"times \(5,\) and trajectory \(10, 2\) do not match"),
        ((times, np.ones((10, 3))), "3 components; the model reads 1 to 2"),
        ((times[:2], values[:2]), r"2 time point\(s\); need at least 3"),
        ((times, np.where(values > 1, np.nan, values)), "must be finite"),
        ((times[::-1], values), r"times\[1\] = .* after times\[0\]"),
    ]
    for args, message in bad:
        with pytest.raises(DataError, match=message):
            TruthRegressor(None, task).fit(*args)
    reg = TruthRegressor(None, task).fit(times, values[:, :1])  # 1-D: the truth does not parse
    assert reg.n_parsed_ == 1 and reg.trees_ == (("x_0",),)
    with pytest.raises(ConfigError, match="temperature"):
        ode.ODERegressor(None, task, temperature=-1.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A randomly initialised odeformer model saved as a run directory (one thread)."""
    import torch

    from synthmath.runs.artifacts import RunDir, build_model, save_model
    from synthmath.runs.plan import build_plan

    model = {"d_model": 16, "n_heads": 2, "n_enc_layers": 1, "n_dec_layers": 1, "max_len": 64}
    params = {"max_dim": 2, "max_points": 50, "min_points": 20, "max_answer_tokens": 60}
    config = {"studies": {"s": {"task": "odeformer", "params": params, "model": model}}}
    run = next(iter(build_plan(config).runs.values()))
    task = make_task("odeformer", run.params)
    torch.manual_seed(0)
    net = build_model(run, task)
    run_dir = tmp_path_factory.mktemp("odeformer") / "run"
    save_model(RunDir(run_dir).model, net, task, run)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield net, task, run_dir
    torch.set_num_threads(threads)


@pytest.mark.parametrize("options", [{"sampling": 0, "beam_size": 2}, {"sampling": 3}])
def test_a_real_model_decodes_without_crashing(tiny, options):
    net, task, _ = tiny
    times, values = observed(60)
    reg = ode.ODERegressor(net, task, max_len=8, temperature=1.0, **options)
    raw = {"obs_times": times[None, :50], "obs_values": values[None, :50],
           "n_obs": np.array([50]), "dim": np.array([2])}  # fmt: skip
    hyps = reg._decode(raw)
    assert len(hyps) == (options["sampling"] or options["beam_size"])
    assert all(len(h) <= 8 for h in hyps)
    assert all(t in task.tgt_vocab().index for h in hyps for t in h)
    try:  # an untrained model rarely writes a system: a clear error, or a fit
        reg.fit(times, values)
    except DataError as err:
        assert f"none of the model's {len(hyps)} hypotheses is a system of 2" in str(err)
    else:
        assert reg.predict(times).shape == (60, 2) and len(reg.sympy()) == 2


def write(tmp_path, text: str, name: str = "traj.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "time", "message"),
    [
        ("", None, "empty file"),
        ("t,x\n", None, r"0 row\(s\) of time points; need at least 3"),
        ("t,x\n0,1\n", None, r"1 row\(s\) of time points; need at least 3"),
        ("t,x\n0,1\n1,2\n", None, r"2 row\(s\) of time points; need at least 3"),
        ("a,x\n0,1\n1,2\n2,3\n", "time", r"no time column 'time' \(columns: a, x\)"),
        ("t\n0\n1\n2\n", None, r"need at least 2 columns \(a time column, then the states\)"),
        ("t,x\n0,1\n1,nan\n2,3\n", None, r"row 2 \(line 3\), column 'x': not finite: 'nan'"),
        ("t,x\n0,1\n1,2\n2,-inf\n", None, r"row 3 \(line 4\), column 'x': not finite"),
        ("t,x\n0,1\n1,abc\n2,3\n", None, r"row 2 \(line 3\), column 'x': not a number: 'abc'"),
        ("t,x\n0,1\n1,\n2,3\n", None, r"row 2 \(line 3\), column 'x': not a number: ''"),
        ("t,x\n0,1\n1\n2,3\n", None, r"row 2 \(line 3\) has 1 columns, expected 2"),
        ("t,a,b,c\n0,1,1,1\n", None, r"3 state columns \(a, b, c\); the model reads at most 2"),
        ("t,x\n0,1\n1,2\n1,3\n", None, r"row 3 \(line 4\), column 't': time 1.0 repeats row 2"),
        ("t,x\n0,1\n2,2\n1,3\n", None, r"row 3 \(line 4\), column 't': time 1.0 comes before"),
        ("0,1\n1,2\n2,3\n", None, "line 1 must be a header"),
        ("t,t\n0,1\n1,2\n2,3\n", None, "distinct"),
    ],
)
def test_bad_csv_is_a_one_line_error_naming_the_file(tmp_path, text, time, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message) as err:
        ode.read_trajectory(path, time, max_dim=2)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_csv_time_column_defaults_to_t_then_the_first(tmp_path):
    traj = ode.read_trajectory(write(tmp_path, "x,t,v\n1,0,2\n3,0.5,4\n5,2,6\n"))
    assert traj.time_name == "t" and traj.names == ["x", "v"]
    assert traj.times.tolist() == [0, 0.5, 2] and traj.values.tolist() == [[1, 2], [3, 4], [5, 6]]
    traj = ode.read_trajectory(write(tmp_path, "time,x\n0,1\n1,2\n\n2,3\n"))
    assert traj.time_name == "time" and traj.names == ["x"] and len(traj.times) == 3
    assert ode.read_trajectory(write(tmp_path, "a,b\n3,0\n2,1\n1,2\n"), "b").names == ["a"]


def test_cli_fit_odeformer_prints_the_system_r2_and_plots(tiny, tmp_path, capsys, monkeypatch):
    from synthmath.cli import main

    _, _, run_dir = tiny
    times, values = observed(80)
    rows = [f"{a!r},{b!r},{c!r}" for a, (b, c) in zip(times.tolist(), values.tolist())]
    path = write(tmp_path, "\n".join(["time,pos,vel", *rows]) + "\n")
    monkeypatch.setattr(ode, "ODERegressor", TruthRegressor)
    plot = tmp_path / "fit.png"
    run = ["--run", str(run_dir)]
    assert main(["fit", "odeformer", str(path), *run, "--time", "time", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "system:     x_1 | (((-2.0))*(x_0) + ((-0.5))*(x_1))"
    assert lines[1] == "named:      pos' = vel"
    assert lines[2] == "            vel' = -2.0*pos - 0.5*vel"
    assert lines[3] == "variables:  x_0 = pos, x_1 = vel; time time"
    assert lines[4].startswith(f"R^2:        1 on the 80 time points of {path}")
    assert "50 samples at temperature 0.1, 5 hypotheses, 2 distinct systems" in lines[5]
    assert lines[6] == f"plot:       {plot}" and plot.stat().st_size > 1000
    assert main(["fit", "odeformer", str(path), *run, "--beam", "4"]) == 0  # time: the first
    assert "beam 4, 5 hypotheses" in capsys.readouterr().out
    # errors: one line naming the file or the option, exit 2
    errors = [
        (["--time", "t"], f"{path}: no time column 't' (columns: time, pos, vel)"),
        (["--beam", "2", "--sample", "3"], "fit: beam search (--beam) or sampling (--sample)"),
        (["--beam", "2", "--temperature", "1"], "--temperature applies to sampling"),
        (["--target", "pos"], "fit: --target is not an option of task 'odeformer'"),
    ]
    for extra, message in errors:
        assert main(["fit", "odeformer", str(path), *run, *extra]) == 2
        err = capsys.readouterr().err
        assert err == f"synthmath: error: {message}\n" or message in err.splitlines()[0]
    assert main(["fit", "odeformer", str(path)]) == 2
    assert "task 'odeformer' needs a trained model: --run" in capsys.readouterr().err


def test_a_binary_file_is_not_a_csv(tmp_path):
    path = tmp_path / "traj.csv"
    path.write_bytes(b"t,x\n\xff\xfe\x00\x81,1\n")
    with pytest.raises(DataError, match=f"^{path}: not a text CSV file$"):
        ode.read_trajectory(path)
