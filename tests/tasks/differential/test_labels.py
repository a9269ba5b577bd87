"""Labels recomputed independently: systems with known answers, scipy controllability,
the exact Gramian against quadrature, feedbacks checked by simulating the closed loop."""

import numpy as np
import pytest
import scipy.linalg
from scipy.integrate import quad_vec, solve_ivp

from synthmath.tasks.differential import labels
from synthmath.tasks.differential.commands import solve_system
from synthmath.tasks.differential.parsing import parse_infix
from synthmath.tasks.registry import make_task


def solve(*equations, point=None, p=0):
    trees = [parse_infix(e) for e in equations]
    return solve_system(trees, p, None if point is None else np.asarray(point, float))


def test_damped_oscillator_is_stable_with_speed_half_the_damping():
    # x'' + 0.5 x' + x = 0: eigenvalues -0.25 +- i sqrt(15)/4
    out = solve("x1", "-x0 - 0.5*x1")
    assert out["stable"] is True
    assert out["speed"] == pytest.approx(0.25, rel=1e-12)
    assert sorted(abs(im) for _, im in out["eigenvalues"]) == pytest.approx([15**0.5 / 4] * 2)


def test_lotka_volterra_at_its_equilibria():
    prey, predator = "x0 - x0*x1", "x0*x1 - x1"
    origin = solve(prey, predator, point=[0.0, 0.0])  # a saddle: eigenvalues 1 and -1
    assert origin["stable"] is False and origin["speed"] == pytest.approx(-1.0)
    centre = solve(prey, predator, point=[1.0, 1.0])  # a centre: +-i, marginal, not stable
    assert centre["stable"] is False and abs(centre["speed"]) < 1e-12
    assert sorted(im for _, im in centre["eigenvalues"]) == pytest.approx([-1.0, 1.0])


def test_double_integrator_with_one_input_is_controllable_and_its_feedback_brings_it_home():
    out = solve("x1", "u0", point=[0.0, 0.0, 0.0], p=1)
    assert out["controllable"] is True and out["rank_deficit"] == 0
    k = np.array(out["feedback"])
    a, b = np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[0.0], [1.0]])
    # ||A||_F = 1: the normalisation changes nothing, so K stabilises the system itself
    closed = a + b @ k
    sol = solve_ivp(lambda t, x: closed @ x, (0, 60), [1.0, -2.0], rtol=1e-9, atol=1e-12)
    assert sol.success and np.linalg.norm(sol.y[:, -1]) < 1e-6
    # the input acting on the position only (x0' = u, x1' = x1) is not controllable
    assert solve("u0", "x1", point=[0.0, 0.0, 0.0], p=1)["rank_deficit"] == 1


def _controllable_scipy(a: np.ndarray, b: np.ndarray) -> bool:
    """The Hautus test: rank [lambda I - A, B] = n at every eigenvalue (scipy SVD)."""
    n = len(a)
    scale = max(1.0, np.abs(a).max(), np.abs(b).max())
    for lam in scipy.linalg.eigvals(a):
        s = scipy.linalg.svdvals(np.hstack([lam * np.eye(n) - a, b]))
        if s.min() <= 1e-9 * scale:
            return False
    return True


def test_control_labels_match_the_hautus_test_on_sampled_systems():
    task = make_task("differential", {"problem": "control", "max_equations": 4})
    with np.errstate(all="ignore"):  # A^k B overflows for the worst-scaled systems
        raw = task.sample(40, np.random.default_rng(3))
    ctrl = raw["deficit"] == 0
    assert (~ctrl).sum() >= 8  # balanced after 10 per size: both classes are exercised
    compared = 0
    for i in range(40):
        n, p = int(raw["n_eq"][i]), int(raw["n_ctrl"][i])
        a, b = raw["a"][i, :n, :n], raw["b"][i, :n, :p]
        powers = [np.linalg.matrix_power(a, j) @ b for j in range(n)]
        s = scipy.linalg.svdvals(np.hstack(powers))
        assert (np.sum(s > 1e-6) == n) == ctrl[i], i  # the released rule, recomputed
        if max(np.abs(a).max(), np.abs(b).max()) > 100 or 1e-12 < s.min() < 1e-2:
            continue  # badly scaled (entries up to 1e17 occur) or near the 1e-6 threshold
        assert _controllable_scipy(a, b) == ctrl[i], i
        compared += 1
    assert compared >= 20


def test_exact_gramian_matches_quadrature_and_the_trapezoid_rule_approximates_it():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3, 1))
    exact = labels.gramian(a, b)  # batched
    for i in range(2):

        def integrand(t, a=a[i], b=b[i]):
            e = scipy.linalg.expm(-a * t)
            return e @ b @ b.T @ e.T

        e1 = scipy.linalg.expm(-a[i])
        want = e1 @ quad_vec(integrand, 0, 1)[0] @ e1.T
        np.testing.assert_allclose(exact[i], want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
        np.testing.assert_allclose(labels.gramian(a[i], b[i]), exact[i])  # single = batched
    trap = labels.gramian(a, b, "trapezoid40")
    assert np.abs(trap - exact).max() < 0.01 * np.abs(exact).max()


def test_sampled_feedbacks_bring_the_closed_loop_to_the_point():
    """The normalised linearisation z' = (A/||A|| + B K) z, simulated from z = 1, decays."""
    task = make_task("differential", {"problem": "feedback", "max_equations": 4})
    raw = task.sample(8, np.random.default_rng(5))
    for i in range(8):
        n, p = int(raw["n_eq"][i]), int(raw["n_ctrl"][i])
        a, b, k = raw["a"][i, :n, :n], raw["b"][i, :n, :p], raw["k"][i, :p, :n]
        assert raw["deficit"][i] == 0
        closed = a / np.linalg.norm(a) + b @ k
        rate = -np.linalg.eigvals(closed).real.max()
        assert rate > 0
        horizon = 40 / rate  # slow modes exist (rate 1.6e-3 here): run them down
        sol = solve_ivp(lambda t, z, m=closed: m @ z, (0, horizon), np.ones(n), method="BDF",
                        rtol=1e-8, atol=1e-12)  # fmt: skip
        assert sol.success and np.linalg.norm(sol.y[:, -1]) < 1e-3 * np.sqrt(n), i
        # K is the released formula, rounded to 3 significant digits
        exact = labels.feedback_gain(a, b)
        np.testing.assert_allclose(k, exact, rtol=5e-3, atol=1e-12)


def test_normalize_b_divides_b_by_the_frobenius_norm_of_a():
    a, b = np.array([[3.0, 0.0], [0.0, 4.0]]), np.array([[1.0], [1.0]])
    an, bn = labels.normalise(a, b)
    assert np.linalg.norm(an) == pytest.approx(1.0) and (bn == b).all()
    assert labels.normalise(a, b, normalize_b=True)[1] == pytest.approx(b / 5.0)
