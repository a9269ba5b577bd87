"""The spherical p-spin Langevin toy: normalisation, gradient, schedules, spike recovery."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthmath.theory.pspin import (
    beta_sweep,
    first_step_below,
    langevin,
    learning_rate,
    make_pspin,
)


def test_energy_variance_is_n_q_cubed_over_two():
    """E H0(sigma)^2 = N / 2 at a fixed point of the sphere, over instances."""
    n, rng = 12, np.random.default_rng(0)
    sigma = rng.standard_normal(n)
    sigma *= math.sqrt(n) / np.linalg.norm(sigma)
    energies = np.array([n * make_pspin(n, rng).energy(sigma) for _ in range(1500)])
    assert abs(energies.mean()) < 4 * math.sqrt(n / 2 / 1500)
    assert energies.var() == pytest.approx(n / 2, rel=0.1)


def test_gradient_matches_finite_differences():
    n, rng = 20, np.random.default_rng(1)
    for snr, order in ((0.0, 3), (2.0, 3), (1.5, 2)):
        model = make_pspin(n, rng, snr=snr, spike_order=order)
        sigma = rng.standard_normal(n)
        h, grad = 1e-6, model.gradient(sigma)
        for i in (0, 7, 19):
            e = np.zeros(n)
            e[i] = h
            fd = n * (model.energy(sigma + e) - model.energy(sigma - e)) / (2 * h)
            assert fd == pytest.approx(grad[i], rel=1e-6, abs=1e-8)


def test_learning_rate_schedule_values():
    assert [learning_rate(t, 0.2, 1.0) for t in (0, 1, 3, 9)] == pytest.approx(
        [0.2, 0.1, 0.05, 0.02]
    )
    assert learning_rate(99, 0.2, 0.0) == 0.2
    assert [learning_rate(t, 0.2, 1.0, switch=50) for t in (49, 99)] == pytest.approx([0.2, 0.1])


def test_descent_stays_on_the_sphere_and_decays_faster_with_small_beta():
    """At T = 0 the energy falls towards the threshold (-1.15 per spin for large N); with
    beta > 1 the total time sum eta(t) is finite and the dynamics stops far above it."""
    model = make_pspin(50, np.random.default_rng(2))
    sweep = beta_sweep(model, (0.0, 0.5, 1.5), 300, seed=3, eta0=0.2)
    final = {beta: traj.energy[-1] for beta, traj in sweep.items()}
    assert final[0.0] < -0.95 and final[0.0] <= final[0.5] < final[1.5] - 0.2
    assert np.all(np.diff(sweep[0.5].energy) <= 1e-9)  # gradient descent at small steps
    assert first_step_below(sweep[0.0], -0.9) < first_step_below(sweep[0.5], -0.9)
    assert first_step_below(sweep[1.5], -0.9) == math.inf


def test_planted_spike_is_found_with_slow_decay_and_lost_with_fast_decay():
    model = make_pspin(60, np.random.default_rng(4), snr=3.0, spike_order=3)
    sweep = beta_sweep(model, (0.5, 1.5), 400, seed=5, eta0=0.2, temperature=0.05)
    assert abs(sweep[0.5].overlap[-1]) > 0.9
    assert abs(sweep[1.5].overlap[-1]) < 0.5
    assert first_step_below(sweep[0.5], 0.9, of="overlap") < 400
    traj = langevin(model, 10, np.random.default_rng(0), records=5)
    assert list(traj.steps) == sorted(set(traj.steps)) and traj.steps[-1] == 10


def test_bad_input():
    with pytest.raises(ValueError, match="spike_order must be 2 or 3"):
        make_pspin(10, np.random.default_rng(0), spike_order=4)
