"""Non-autonomous controllability (control_t): known systems, and the truncated Taylor series
fast path against the SymPy reference (the D_i matrices themselves, time by time)."""

import numpy as np
import pytest
import sympy as sp

from synthmath.expressions.errors import TimeoutExpired
from synthmath.expressions.workers import time_limit
from synthmath.tasks.differential import timevarying as reference
from synthmath.tasks.differential.parsing import parse_infix
from synthmath.tasks.differential.systems import sample_system
from synthmath.tasks.differential.taylor import krylov_values, time_varying_rank_taylor
from synthmath.tasks.registry import make_task


@pytest.mark.parametrize(
    ("equations", "expected"),
    [
        (("x1", "u0"), 2),  # the double integrator
        (("x0", "u0"), 1),  # x0 is not reached
        (("t*u0", "t**2*u0"), 2),  # B(t) spans one direction at each t, B and B' span two
        (("t*u0", "2*t*u0"), 1),  # B(t) keeps its direction: not controllable
        (("x1*t", "u0*x0"), 2),  # A(t) = [[0, t], [0, 0]], B = (0, 1/2)
        (("sqrt(t - x1)*u0", "x0"), 2),  # sqrt undefined at t < 0.5: only later times count
        (("log(x1 - t)*u0", "x0"), 2),  # ln defined at t < 0.5 only
        (("log(t - 2)*u0", "x0"), None),  # undefined at every time
    ],
)
def test_known_time_varying_systems(equations, expected):
    trees = [parse_infix(e) for e in equations]
    assert time_varying_rank_taylor(trees, 2, 1) == expected
    assert reference.time_varying_rank(trees, 2, 1) == expected


def _sympy_values(equations, n, p):
    blocks = reference.krylov_matrices(equations, n, p)
    stacked = sp.Matrix.hstack(*blocks)
    out = []
    for t in reference.TIMES:
        sub = stacked.xreplace({reference.T: sp.Rational(t).limit_denominator(1000)})
        out.append([[reference._value(e) for e in row] for row in sub.tolist()])
    return np.array(out)


def test_taylor_series_match_sympy_on_sampled_systems():
    """Measured on 170 (system, time) pairs: the same usable times, values within 6e-11."""
    rng = np.random.default_rng(0)
    compared = 0
    while compared < 12:
        n = int(rng.integers(2, 4))
        system = sample_system(n, 1, (n + 1, 2 * n + 4), 0.5, rng, time=True)
        if system is None:
            continue
        try:
            with time_limit(2.0):
                want = _sympy_values(system.equations, n, 1)
        except TimeoutExpired:
            continue
        got, usable = krylov_values(system.equations, n, 1)
        np.testing.assert_array_equal(usable, np.isfinite(want).all(axis=(1, 2)))
        scale = 1 + np.abs(np.where(np.isfinite(want), want, 0)).max()
        np.testing.assert_allclose(got[usable], want[usable], rtol=1e-7, atol=1e-9 * scale)
        compared += int(usable.sum())


def test_control_t_samples_label_and_answer():
    task = make_task("differential", {"problem": "control_t"})
    raw = task.sample(20, np.random.default_rng(0))
    assert set(raw["n_eq"]) <= {2, 3} and (raw["n_ctrl"] == 1).all()
    assert 0.5 < (raw["deficit"] == 0).mean() < 1  # natural ratio (paper: 83% controllable)
    assert any("t" in " ".join(task.equations(raw, i)[0]) for i in range(20))
    for i in range(20):
        n = int(raw["n_eq"][i])
        assert raw["deficit"][i] == n - time_varying_rank_taylor(task.equations(raw, i), n, 1)
        ex = task.to_json(raw, i)
        assert ex["answer"]["controllable"] == (raw["deficit"][i] == 0)
        assert "times" in ex["problem"]
    assert [m.name for m in task.metrics()] == ["acc"]
