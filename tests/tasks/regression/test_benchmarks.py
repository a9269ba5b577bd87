"""The benchmark ODE systems as data: ids and dimensions as in the spec's table, prefix tokens
that match the infix text, right-hand sides checked against SymPy and against numpy formulas
written here, every trajectory integrated, and one-line errors for malformed files."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from synthmath import cli
from synthmath.core.errors import DataError
from synthmath.expressions.infix import indexed_names, parse_system
from synthmath.expressions.numeric import compile
from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.tasks.regression import benchmarks
from synthmath.tasks.regression.benchmarks import (
    BenchmarkFileError,
    integrate,
    load_benchmark,
    parse_benchmark,
    read_benchmark,
)

ODEBENCH = load_benchmark("odebench")
STROGATZ = load_benchmark("strogatz")
ALL = [(ODEBENCH, s) for s in ODEBENCH.systems] + [(STROGATZ, s) for s in STROGATZ.systems]
IDS = [f"{b.name}-{s.id}" for b, s in ALL]


def test_odebench_ids_dimensions_and_flags_are_the_spec_table():
    systems = ODEBENCH.systems
    assert [s.id for s in systems] == list(range(1, 64))
    expected_dim = {**dict.fromkeys(range(1, 24), 1), **dict.fromkeys(range(24, 52), 2)}
    expected_dim |= {**dict.fromkeys(range(52, 62), 3), 62: 4, 63: 4}
    assert {s.id: s.dim for s in systems} == expected_dim
    assert {s.id for s in systems if s.chaotic} == {56, 59, 60, 61}
    assert all(len(s.initial_conditions) == 2 for s in systems)
    assert sum(len(s.constants) for s in systems) == 153  # as in the released file
    # spot checks against the table
    lorenz = ODEBENCH.system(56)
    assert lorenz.constants == (10.0, 28.0, 8 / 3)
    assert lorenz.initial_conditions == ((2.3, 8.1, 12.4), (10.0, 20.0, 30.0))
    assert ODEBENCH.system(53).constants[9] == 0.1 and len(ODEBENCH.system(53).constants) == 10
    assert ODEBENCH.system(11).constants == () and ODEBENCH.system(11).infix == ("- x_0^3",)
    assert ODEBENCH.system(16).constants == (0.1, -0.04, 0.001)
    assert ODEBENCH.system(1).source == "strogatz p.20"
    assert ODEBENCH.solver.n_points == 512 and ODEBENCH.solver.method == "LSODA"
    assert (ODEBENCH.solver.rtol, ODEBENCH.solver.atol) == (1e-5, 1e-7)


def test_strogatz_systems():
    assert [s.key for s in STROGATZ.systems] == [
        "bacres", "barmag", "glider", "lv", "predprey", "shearflow", "vdp",
    ]  # fmt: skip
    assert all(s.dim == 2 and len(s.initial_conditions) == 4 for s in STROGATZ.systems)
    assert all(s.initial_conditions[k][0] > 0 for k in range(4) for s in [STROGATZ.system(3)])
    shear = STROGATZ.system(6)
    assert all(abs(math.sin(y0[1])) > 0.2 for y0 in shear.initial_conditions)
    assert STROGATZ.solver.n_points == 100


@pytest.mark.parametrize(("bench", "system"), ALL, ids=IDS)
def test_prefix_is_the_parsed_infix_and_the_rhs_is_its_program(bench, system):
    names = indexed_names(system.dim, len(system.constants))
    assert parse_system(" | ".join(system.infix), names, system.dim) == system.skeleton
    rng = np.random.default_rng(system.id)
    states = rng.uniform(0.2, 0.9, (5, system.dim))
    programs = [compile(tree) for tree in system.trees]
    f = system.rhs()
    x = sp.symbols(f"x_0:{system.dim}")
    exprs = [to_sympy(tree) for tree in system.trees]
    for state in states:
        env = {f"x_{k}": state[k] for k in range(system.dim)}
        by_program = np.array([float(p(env)) for p in programs])
        np.testing.assert_allclose(f(0.0, state), by_program, rtol=1e-12)
        point = {x[k]: sp.Float(state[k]) for k in range(system.dim)}
        by_sympy = [float(e.xreplace(point).evalf()) for e in exprs]
        np.testing.assert_allclose(by_program, by_sympy, rtol=1e-9)


# written from the formulas (not from the files); x is the state
FORMULAS = {
    ("odebench", 10): lambda x: [(1 - x[0]) * 0.2 * x[0] ** 1.2 - x[0] * 0.8 * (1 - x[0]) ** 1.2],
    ("odebench", 14): lambda x: [
        0.78 * x[0] * (1 - x[0] / 81) - 0.9 * x[0] ** 2 / (21.2**2 + x[0] ** 2)
    ],
    ("odebench", 31): lambda x: [-0.4 * x[0] * x[1], 0.4 * x[0] * x[1] - 0.314 * x[1]],
    ("odebench", 35): lambda x: [
        np.cos(x[0]) / np.tan(x[1]),
        np.sin(x[0]) * (np.cos(x[1]) ** 2 + 4.2 * np.sin(x[1]) ** 2),
    ],
    ("odebench", 37): lambda x: [x[1], -x[0] - 0.43 * (x[0] ** 2 - 1) * x[1]],
    ("odebench", 49): lambda x: [
        1 - 4.03 * x[0] + 3.1 * x[0] ** 2 * x[1],
        3.03 * x[0] - 3.1 * x[0] ** 2 * x[1],
    ],
    ("odebench", 56): lambda x: [
        10 * (x[1] - x[0]),
        28 * x[0] - x[1] - x[0] * x[2],
        x[0] * x[1] - 8 / 3 * x[2],
    ],
    ("odebench", 59): lambda x: [
        5 * (-x[1] - x[2]),
        5 * (x[0] + 0.2 * x[1]),
        5 * (0.2 + x[2] * (x[0] - 5.7)),
    ],
    ("odebench", 60): lambda x: [
        (x[2] - 0.7) * x[0] - 3.5 * x[1],
        3.5 * x[0] + (x[2] - 0.7) * x[1],
        0.65
        + 0.95 * x[2]
        - x[2] ** 3 / 3
        - (x[0] ** 2 + x[1] ** 2) * (1 + 0.25 * x[2])
        + 0.1 * x[2] * x[0] ** 3,
    ],
    ("odebench", 63): lambda x: [
        -0.28 * x[0] * x[2],
        0.28 * x[0] * x[2] - 0.47 * x[1],
        0.47 * x[1] - 0.3 * x[2],
        0.3 * x[2],
    ],
    ("strogatz", 1): lambda x: [
        20 - x[0] - x[0] * x[1] / (1 + 0.5 * x[0] ** 2),
        10 - x[0] * x[1] / (1 + 0.5 * x[0] ** 2),
    ],
    ("strogatz", 3): lambda x: [-0.05 * x[0] ** 2 - np.sin(x[1]), x[0] - np.cos(x[1]) / x[0]],
    ("strogatz", 5): lambda x: [
        x[0] * (4 - x[0] - x[1] / (1 + x[0])),
        x[1] * (x[0] / (1 + x[0]) - 0.075 * x[1]),
    ],
    ("strogatz", 7): lambda x: [10 * (x[1] - (x[0] ** 3 - x[0]) / 3), -x[0] / 10],
}


@pytest.mark.parametrize("key", list(FORMULAS), ids=[f"{b}-{i}" for b, i in FORMULAS])
def test_rhs_is_the_formula(key):
    system = load_benchmark(key[0]).system(key[1])
    f = system.rhs()
    for state in np.random.default_rng(0).uniform(0.2, 0.9, (10, system.dim)):
        np.testing.assert_allclose(f(0.0, state), FORMULAS[key](state), rtol=1e-12)


@pytest.mark.parametrize(("bench", "system"), ALL, ids=IDS)
def test_every_trajectory_integrates(bench, system):
    times = np.linspace(0.0, 10.0, bench.solver.n_points)
    for y0 in system.initial_conditions:
        traj = integrate(system, y0, bench.solver)
        assert traj.success, traj.message
        assert traj.states.shape == (bench.solver.n_points, system.dim)
        assert np.isfinite(traj.states).all()
        np.testing.assert_allclose(traj.times, times)
        np.testing.assert_allclose(traj.states[0], y0)


def test_trajectories_match_closed_forms():
    t = np.linspace(0.0, 10.0, 512)
    growth = integrate(ODEBENCH.system(2), [4.78])  # x' = 0.23 x
    np.testing.assert_allclose(growth.states[:, 0], 4.78 * np.exp(0.23 * t), rtol=1e-4)
    rc = integrate(ODEBENCH.system(1), [10.0])  # x' = (0.7 - x / 1.2) / 2.31
    np.testing.assert_allclose(
        rc.states[:, 0], 0.84 + (10.0 - 0.84) * np.exp(-t / (1.2 * 2.31)), rtol=1e-4
    )
    w = math.sqrt(2.1)  # x'' = -2.1 x
    spring = integrate(ODEBENCH.system(24), [0.4, -0.03])
    exact = 0.4 * np.cos(w * t) - 0.03 / w * np.sin(w * t)
    np.testing.assert_allclose(spring.states[:, 0], exact, atol=1e-4)
    assert integrate(ODEBENCH.system(2), [1.0], n_points=7).states.shape == (7, 1)
    with pytest.raises(ValueError, match="initial state of shape \\(2,\\), expected \\(1,\\)"):
        integrate(ODEBENCH.system(2), [1.0, 2.0])


def test_the_files_are_those_the_tool_makes_from_the_transcriptions():
    """The shipped JSON is what tools/make_known_benchmarks.py writes from the transcribed
    tables (so neither was edited alone)."""
    path = Path(__file__).resolve().parents[3] / "tools" / "make_known_benchmarks.py"
    spec = importlib.util.spec_from_file_location("make_known_benchmarks", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for name, build in (("odebench", tool.odebench), ("strogatz", tool.strogatz)):
        shipped = (benchmarks.KNOWN_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert tool.dumps(build()) == shipped, name


def test_loading_never_parses_strings():
    source = Path(benchmarks.__file__).read_text()
    for word in ("sympify", "parse_expr", "eval(", "exec(", "infix import", "pickle"):
        assert word not in source


# ---- malformed files ----------------------------------------------------------------------
def _data() -> dict:
    return copy.deepcopy(json.loads((benchmarks.KNOWN_DIR / "strogatz.json").read_text()))


def _edit(path: str, value):
    def change(data: dict) -> None:
        *head, last = path.split(".")
        obj = data
        for key in head:
            obj = obj[int(key)] if key.isdigit() else obj[key]
        if value is _DELETE:
            del obj[last]
        elif last.isdigit():
            obj[int(last)] = value
        else:
            obj[last] = value

    return change


_DELETE = object()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_edit("colour", "red"), 'unknown field "colour" in the top level'),
        (_edit("systems.0.colour", 1), 'unknown field "colour" in systems\\[0\\]'),
        (_edit("systems.0.dim", _DELETE), 'missing field "dim" in systems\\[0\\]'),
        (_edit("systems", []), "systems: expected a non-empty list"),
        (_edit("systems.1.id", 1), "systems\\[1\\].id: duplicate id 1 \\(also systems\\[0\\]\\)"),
        (_edit("systems.0.dim", 3), "systems\\[0\\].equations: expected a list of 3 components"),
        (_edit("systems.0.dim", 0), "systems\\[0\\].dim: expected an integer >= 1"),
        (
            _edit("systems.0.equations.1.prefix", "sub c_2 foo"),
            "systems\\[0\\].equations\\[1\\].prefix: unknown token 'foo'",
        ),
        (
            _edit("systems.0.equations.1.prefix", "add x_0 x_2"),
            "equations\\[1\\].prefix: variable 'x_2' outside x_0..x_1",
        ),
        (
            _edit("systems.0.equations.1.prefix", "add t x_0"),
            "equations\\[1\\].prefix: unknown token 't'",
        ),
        (
            _edit("systems.0.equations.1.prefix", "add c_7 x_0"),
            "equations\\[1\\].prefix: c_7 but only 3 constants are given",
        ),
        (_edit("systems.0.equations.1.prefix", "add x_0"), "the tokens end inside an operand"),
        (_edit("systems.0.equations.1.prefix", "x_0 x_1"), "tokens after a complete expression"),
        (_edit("systems.0.equations.1.prefix", ""), "expected a non-empty string of prefix"),
        (_edit("systems.0.constants", [20, 0.5, 10, 4]), "c_3 has a value but no equation uses"),
        (_edit("systems.0.constants.0", "20"), "systems\\[0\\].constants\\[0\\]: expected a num"),
        (_edit("systems.0.constants.0", math.nan), "constants\\[0\\]: expected a finite number"),
        (_edit("systems.0.initial_conditions.2", [1.0]), "conditions\\[2\\]: 1 values, expected 2"),
        (_edit("systems.0.initial_conditions", []), "initial_conditions: expected a non-empty"),
        (_edit("systems.0.chaotic", "no"), "systems\\[0\\].chaotic: expected true or false"),
        (_edit("systems.0.name", 3), "systems\\[0\\].name: expected a string"),
        (_edit("solver.method", "Euler"), "solver.method: unknown method 'Euler'"),
        (_edit("solver.t_span", [10, 0]), "solver.t_span: expected \\[t0, t1\\] with t0 < t1"),
        (_edit("solver.n_points", 1.5), "solver.n_points: expected an integer >= 2"),
    ],
)
def test_malformed_files_are_one_line_errors(tmp_path, change, message):
    data = _data()
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchmarkFileError, match=f"^bad.json: .*{message}") as err:
        read_benchmark(path)
    assert "\n" not in str(err.value) and isinstance(err.value, DataError)


def test_file_errors_and_defaults(tmp_path):
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(BenchmarkFileError, match="broken.json: not valid JSON"):
        read_benchmark(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="no such benchmark file"):
        read_benchmark(tmp_path / "missing.json")
    with pytest.raises(KeyError, match="unknown benchmark 'feynman'"):
        load_benchmark("feynman")
    with pytest.raises(KeyError, match="no system 64; ids 1..63"):
        ODEBENCH.system(64)
    minimal = {"systems": [{"id": 1, "name": "decay", "dim": 1, "constants": [0.5],
               "equations": [{"prefix": "mul f-1.0 mul c_0 x_0"}],
               "initial_conditions": [[2.0]]}]}  # fmt: skip
    bench = parse_benchmark(minimal)
    assert bench.solver == benchmarks.Solver() and bench.systems[0].trees == (
        ("mul", "f-1.0", "mul", "f0.5", "x_0"),
    )
    traj = integrate(bench.systems[0], [2.0], bench.solver)
    np.testing.assert_allclose(traj.states[-1, 0], 2.0 * math.exp(-5.0), rtol=1e-4)


def test_cli_lists_the_systems(capsys):
    assert cli.main(["known", "strogatz"]) == 0
    out = capsys.readouterr().out
    assert "7  D=2  vdp: Van der Pol oscillator" in out and out.count("x' = ") == 7
    assert cli.main(["known", "odebench", "--id", "56", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["chaotic"] and row["equations"][0]["prefix"] == "mul c_0 sub x_1 x_0"
    assert cli.main(["known", "odebench", "--id", "99"]) == 2
    assert "no system 99" in capsys.readouterr().err
