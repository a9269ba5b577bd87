"""The spherical p-spin toy of learning-rate schedules (d'Ascoli, Refinetti, Biroli 2022):
Langevin dynamics on the sphere |sigma|^2 = N with step eta(t) = eta0 (t0 / (t + 1))^beta, on a
Gaussian random landscape, optionally with a planted spike to recover.

INFERRED reconstruction (the paper's exact models and numbers are not known, see the spec,
dynamics.md section 1):

- Noise: H0(sigma) = -(1 / (N sqrt 2)) sum_ijk G_ijk sigma_i sigma_j sigma_k, G iid N(0, 1)
  (p = 3), so E H0(s) H0(t) = N q^3 / 2 with q = s.t / N: the usual normalisation, in which
  the threshold energy per spin is -sqrt(2 (p - 1) / p) = -1.1547 and the ground state about
  -1.172. The coupling tensor is dense (N^3 numbers): N = 100-300 on a CPU, not the spec's
  1000-4000 (N = 1000 would take 8 GB).
- Spike: H = H0 - N snr m^k with the overlap m = v.sigma / N, |v|^2 = N, k = ``spike_order``
  (k = 3 is the spiked tensor; k = 2 a spiked matrix added to the tensor noise, whose spike a
  random start detects at moderate snr).
- Dynamics: sigma <- normalise(sigma - eta(t) grad_sphere H + sqrt(2 eta(t) T) xi), the same
  Euler-Maruyama step as the trainer's ``langevin_temperature`` with ``optimizer: sgd``;
  eta(t) = eta0 until ``switch`` then eta0 (switch / (t + 1))^beta (switch = 1: a plain power
  law), as ``schedule: power``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

THRESHOLD_ENERGY = -2 / math.sqrt(3)  # p = 3: -sqrt(2 (p - 1) / p)


@dataclass(frozen=True)
class PSpin:
    """A p = 3 spherical spin glass of size N with an optional planted spike."""

    couplings: np.ndarray  # (N, N, N), symmetric, scaled so that H0 = -sum J s s s
    spike: np.ndarray  # (N,), |v|^2 = N
    snr: float
    spike_order: int

    @property
    def n(self) -> int:
        return self.spike.shape[0]

    def overlap(self, sigma: np.ndarray) -> float:
        """m = v . sigma / N."""
        return float(self.spike @ sigma) / self.n

    def energy(self, sigma: np.ndarray) -> float:
        """H(sigma) / N."""
        js = self.couplings @ sigma  # (N, N)
        h0 = -float(sigma @ js @ sigma)
        return h0 / self.n - self.snr * self.overlap(sigma) ** self.spike_order

    def gradient(self, sigma: np.ndarray) -> np.ndarray:
        """The Euclidean gradient of H (not per spin)."""
        grad = -3.0 * ((self.couplings @ sigma) @ sigma)
        if self.snr:
            k = self.spike_order
            grad -= k * self.snr * self.overlap(sigma) ** (k - 1) * self.spike
        return grad


def make_pspin(n: int, rng: np.random.Generator, snr: float = 0.0, spike_order: int = 3) -> PSpin:
    """A random instance: iid Gaussian couplings symmetrised, a random spike of norm sqrt(N)."""
    if n < 2:
        raise ValueError(f"n must be >= 2 (got {n})")
    if spike_order not in (2, 3):
        raise ValueError(f"spike_order must be 2 or 3 (got {spike_order})")
    g = rng.standard_normal((n, n, n), dtype=np.float64)
    sym = (
        g
        + g.transpose(0, 2, 1)
        + g.transpose(1, 0, 2)
        + g.transpose(1, 2, 0)
        + g.transpose(2, 0, 1)
        + g.transpose(2, 1, 0)
    ) / 6.0
    del g
    spike = rng.standard_normal(n)
    spike *= math.sqrt(n) / np.linalg.norm(spike)
    return PSpin(sym / (n * math.sqrt(2.0)), spike, float(snr), spike_order)


def learning_rate(t: int, eta0: float, beta: float, switch: int = 1) -> float:
    """eta0 until step ``switch``, then eta0 (switch / (t + 1))^beta."""
    if t < switch:
        return eta0
    return eta0 * (switch / (t + 1)) ** beta


@dataclass(frozen=True)
class Trajectory:
    """Energy per spin and overlap at the recorded steps (1-based: after that many steps)."""

    steps: np.ndarray
    energy: np.ndarray
    overlap: np.ndarray


def langevin(
    model: PSpin,
    steps: int,
    rng: np.random.Generator,
    eta0: float = 0.2,
    beta: float = 0.5,
    temperature: float = 0.0,
    switch: int = 1,
    records: int = 40,
    start: np.ndarray | None = None,
) -> Trajectory:
    """Langevin dynamics on the sphere from a random (or given) start; energy and overlap at
    about ``records`` log-spaced steps."""
    n = model.n
    sigma = rng.standard_normal(n) if start is None else np.array(start, float)
    sigma *= math.sqrt(n) / np.linalg.norm(sigma)
    marks = set(np.unique(np.geomspace(1, steps, records).astype(int)).tolist())
    out_steps, energy, overlap = [], [], []
    for t in range(steps):
        eta = learning_rate(t, eta0, beta, switch)
        grad = model.gradient(sigma)
        grad -= (grad @ sigma) / n * sigma  # tangent to the sphere
        sigma = sigma - eta * grad
        if temperature:
            sigma += math.sqrt(2 * eta * temperature) * rng.standard_normal(n)
        sigma *= math.sqrt(n) / np.linalg.norm(sigma)
        if t + 1 in marks:
            out_steps.append(t + 1)
            energy.append(model.energy(sigma))
            overlap.append(model.overlap(sigma))
    return Trajectory(np.array(out_steps), np.array(energy), np.array(overlap))


def first_step_below(traj: Trajectory, threshold: float, of: str = "energy") -> float:
    """First recorded step where the energy falls to ``threshold`` (``of="overlap"``: where
    |overlap| reaches it); inf if never."""
    values = traj.energy if of == "energy" else -np.abs(traj.overlap)
    bound = threshold if of == "energy" else -threshold
    hits = np.nonzero(values <= bound)[0]
    return float(traj.steps[hits[0]]) if hits.size else math.inf


def beta_sweep(
    model: PSpin,
    betas: tuple[float, ...],
    steps: int,
    seed: int,
    **kwargs,
) -> dict[float, Trajectory]:
    """One trajectory per beta from the same start and noise seed (a paired comparison)."""
    start = np.random.default_rng(seed).standard_normal(model.n)
    return {
        beta: langevin(
            model, steps, np.random.default_rng(seed + 1), beta=beta, start=start, **kwargs
        )
        for beta in betas
    }
