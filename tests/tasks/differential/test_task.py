"""The differential task: CLI output, balancing, precision, shift, marginal systems, scoring,
``synthmath solve differential`` and its errors."""

import ast
import json
import pathlib

import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from synthmath.cli import main
from synthmath.core.errors import ConfigError
from synthmath.expressions import numeric
from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.tasks.differential import generation as gen
from synthmath.tasks.differential.parsing import parse_infix
from synthmath.tasks.differential.systems import System
from synthmath.tasks.registry import make_task

PACKAGE = pathlib.Path(gen.__file__).parent


def _sample(capsys, *args) -> list[dict]:
    assert main(["sample", "differential", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_sample_prints_sympy_readable_systems_with_their_labels(capsys):
    lines = _sample(capsys, "problem=stability", "n_equations=2", "-n", "3")
    task = make_task("differential", {"problem": "stability", "n_equations": 2})
    raw = task.sample(3, np.random.default_rng(0))
    symbols = {f"x{k}": sp.Symbol(f"x_{k}") for k in range(2)}
    at = {sp.Symbol("x_0"): sp.Rational(3, 10), sp.Symbol("x_1"): sp.Rational(7, 10)}
    for i, ex in enumerate(lines):
        assert set(ex["answer"]) >= {"stable"} and isinstance(ex["answer"]["stable"], bool)
        assert ex["answer"]["stable"] == (raw["speed"][i] > 0)
        assert ex["problem"]["point"] == [0.01, 0.01]
        assert ex["problem"]["tokens"][0] == "V2" and ex["problem"]["tokens"].count("<EQ>") == 2
        assert ex["tgt"] == ("YES" if ex["answer"]["stable"] else "NO")
        for text, tree in zip(ex["problem"]["system"], task.equations(raw, i), strict=True):
            assert "x_" not in text
            read = parse_expr(text, local_dict=symbols)  # SymPy reads the infix back
            assert complex(sp.N((read - to_sympy(tree)).xreplace(at))) == pytest.approx(0)
            ours = numeric.compile(parse_infix(text))  # ... and so does our own parser
            env = {"x_0": np.array([0.3]), "x_1": np.array([0.7])}
            np.testing.assert_allclose(ours(env), numeric.compile(tree)(env))


@pytest.mark.parametrize(
    ("problem", "keys"),
    [("convergence", {"stable", "speed"}), ("control", {"controllable", "rank_deficit"}),
     ("feedback", {"controllable", "feedback"})],
)  # fmt: skip
def test_each_problem_answers_under_its_own_name(capsys, problem, keys):
    (ex,) = _sample(capsys, f"problem={problem}", "max_equations=4", "-n", "1")
    assert set(ex["answer"]) >= keys
    if problem != "convergence":
        assert ex["problem"]["controls"] and ex["problem"]["point"][0] == 0.9
    if problem == "feedback":
        k = np.array(ex["answer"]["feedback"])
        assert k.shape == (len(ex["problem"]["controls"]), len(ex["problem"]["system"]))


def test_stability_is_balanced_per_size_and_convergence_is_not():
    task = make_task("differential", {"problem": "stability", "min_equations": 3,
                                      "max_equations": 4})  # fmt: skip
    raw = task.sample(80, np.random.default_rng(1))
    for n in (3, 4):
        stable = raw["speed"][raw["n_eq"] == n] > 0
        assert abs(stable.sum() - (~stable).sum()) <= 6, n  # balancing after 10 per size
    assert task.stats["rejected_balance"] > 0
    natural = make_task("differential", {"problem": "convergence", "n_equations": 4})
    assert (natural.sample(40, np.random.default_rng(1))["speed"] > 0).mean() < 0.35
    assert np.abs(raw["speed"]).min() >= gen.MARGINAL


def test_marginal_systems_are_rejected():
    task = make_task("differential", {"problem": "stability"})
    rotation = System((("x_1",), ("mul", "i-1", "x_0")), (0, 1),
                      np.array([[0.0, 1.0], [-1.0, 0.0]]), np.zeros((2, 0)))  # fmt: skip
    assert gen.label(task.config, rotation) == (None, "marginal")


def test_precision_writes_three_or_four_significant_digits():
    raw = make_task("differential", {"problem": "convergence"}).sample(4, np.random.default_rng(2))
    for digits in (3, 4):
        task = make_task("differential", {"problem": "convergence", "precision": digits})
        tokens = [task.tgt_vocab().to_tokens(row) for row in task.encode_tgt(raw)[0]]
        for i, t in enumerate(tokens):
            assert len(t) == digits + 2  # sign, digits, exponent
            want = float(f"{raw['speed'][i]:.{digits - 1}e}")
            assert task.decode_answer(t) == pytest.approx(want, rel=1e-12)
    with pytest.raises(ConfigError, match="precision"):
        make_task("differential", {"problem": "convergence", "encoding": "P1000", "precision": 4})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"problem": "heat"}, "problem: unknown value 'heat'"),
        ({"min_equations": 5, "max_equations": 3}, "min_equations: must be <= max_equations=3"),
        ({"n_equations": 11}, "n_equations: must be in 2..10"),
        ({"problem": "control_t", "shift": True}, "shift: f - f"),
        ({"precision": 5}, "precision: must be in 2..4"),
    ],
)
def test_bad_parameters_are_config_errors_naming_the_key(params, message):
    with pytest.raises(ConfigError, match=message):
        make_task("differential", params)


def test_shift_subtracts_the_value_at_the_point_and_keeps_the_labels():
    plain = make_task("differential", {"problem": "convergence", "n_equations": 3})
    shifted = make_task("differential", {"problem": "convergence", "n_equations": 3,
                                         "shift": True})  # fmt: skip
    a, b = (t.sample(3, np.random.default_rng(3)) for t in (plain, shifted))
    np.testing.assert_array_equal(a["speed"], b["speed"])
    env = {f"x_{k}": np.array([0.01]) for k in range(3)}
    for i in range(3):
        for tree, original in zip(shifted.equations(b, i), plain.equations(a, i), strict=True):
            assert tree[0] == "sub" and tree[1:-1] == original
            assert abs(numeric.compile(tree)(env)[0]) < 1e-9 * (1 + abs(float(tree[-1][1:])))
    assert "+" in shifted.src_tokens(b)[0]  # the float is written in the number encoding


def test_sympy_jacobians_give_the_same_labels():
    fast = make_task("differential", {"problem": "convergence", "n_equations": 2})
    ref = make_task("differential", {"problem": "convergence", "n_equations": 2,
                                     "jacobian": "sympy"})  # fmt: skip
    a, b = (t.sample(3, np.random.default_rng(4)) for t in (fast, ref))
    if (a["system"] == b["system"]).all():  # same draws unless SymPy rejected one
        np.testing.assert_allclose(a["speed"], b["speed"], rtol=1e-9)
    else:
        assert ref.stats["rejected_sympy_undefined"] > 0


def test_convergence_scoring_uses_relative_tolerances():
    task = make_task("differential", {"problem": "convergence"})
    raw = task.sample(2, np.random.default_rng(5))
    hyp = [task.encoding.encode([1.07 * s]) for s in raw["speed"]]
    flip = [task.encoding.encode([-s]) for s in raw["speed"]]
    scores = task.score(raw, [[h, f] for h, f in zip(hyp, flip)])
    assert scores["acc_tol10"][:, 0].all() and not scores["acc_tol5"][:, 0].any()
    assert scores["acc_sign"][:, 0].all() and not scores["acc_sign"][:, 1].any()
    assert scores["rel_error"][:, 0] == pytest.approx([0.07, 0.07], abs=0.006)


def test_feedback_scoring_accepts_any_stabilising_matrix():
    task = make_task("differential", {"problem": "feedback", "max_equations": 4})
    raw = task.sample(4, np.random.default_rng(6))
    preds = []
    for i in range(4):
        n, p = int(raw["n_eq"][i]), int(raw["n_ctrl"][i])
        k = raw["k"][i, :p, :n]
        preds.append([f"V{p}", f"V{n}", *task.encoding.encode((1.3 * k).ravel())])  # 30% off
        preds.append([f"V{p}", f"V{n}", *task.encoding.encode(np.zeros(p * n))])  # no control
        preds.append([f"V{n}", f"V{p}", *task.encoding.encode(k.T.ravel())])  # transposed
    scores = task.score(raw, [preds[3 * i : 3 * i + 3] for i in range(4)])
    a = [raw["a"][i, : raw["n_eq"][i], : raw["n_eq"][i]] for i in range(4)]
    open_loop_stable = [np.linalg.eigvals(m / np.linalg.norm(m)).real.max() < 0 for m in a]
    assert not scores["acc_tol10"].any()
    np.testing.assert_array_equal(scores["acc"][:, 1], open_loop_stable)
    assert not scores["acc"][:, 2].any()  # a p x n block is expected (p < n)
    assert scores["acc"][:, 0].sum() >= 2  # a scaled-up feedback often still stabilises


def _write(tmp_path, data) -> str:
    path = tmp_path / "system.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_solve_prints_the_labels_of_a_user_system(tmp_path, capsys):
    path = _write(tmp_path, {"system": ["x1", "-x0 - 0.5*x1 + u0"], "point": 0.0})
    assert main(["solve", "differential", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stable"] is True and out["speed"] == pytest.approx(0.25)
    assert out["controllable"] is True and np.array(out["feedback"]).shape == (1, 2)
    tokens = _write(tmp_path, {"system": [["x_1"], ["mul", "INT-", "1", "x_0"]]})
    assert main(["solve", "differential", tokens]) == 0
    assert "stable: false" in capsys.readouterr().out  # a centre is not stable


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"system": ["x0 +* x1", "x0"]}, "system[0]: unexpected '*'"),
        ({"system": ["foo(x0)", "x1"]}, "system[0]: unknown function 'foo'"),
        ({"system": ["x0", "x5"]}, "system[1]: variable x5 but the system has 2"),
        ({"system": ["x0", "y"]}, "system[1]: unknown name 'y'"),
        ({"system": ["x0", "t*x1"]}, "system[1]: time-varying systems"),
        ({"system": ["sqrt(-x0)", "x1"]}, "system[0]: not differentiable"),
        ({"system": []}, "system: expected a list"),
        ({"equations": ["x0"]}, "equations: unknown field"),
        ({"system": ["x0"], "point": [1, 2]}, "point: expected a number or a list of 1"),
        ({"system": ["x0 + u1"], "controls": 1}, "controls: 1, but the equations use u1"),
        ("{not json", "not valid JSON"),
    ],
)
def test_solve_errors_are_one_line_and_name_the_field(tmp_path, capsys, data, message):
    assert main(["solve", "differential", _write(tmp_path, data)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_the_package_never_parses_strings_with_sympy_or_python():
    banned = {"sympify", "parse_expr", "S", "eval", "exec", "lambdify"}
    for module in PACKAGE.glob("*.py"):
        syntax = ast.parse(module.read_text())
        calls = [n.func for n in ast.walk(syntax) if isinstance(n, ast.Call)]
        assert not {getattr(f, "id", getattr(f, "attr", None)) for f in calls} & banned, module
