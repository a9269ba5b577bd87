"""Random-features ridge regression: the analytic test loss over the (N/D, P/D) phase space
and the numerical regression it predicts (d'Ascoli, Sagun, Biroli 2020, "Triple descent").

Model (spec dynamics.md section 3): inputs x in R^D, Gaussian rescaled to norm sqrt(D);
teacher y = beta . x / sqrt(D) + noise of variance ``delta``; student
f(x) = a . sigma(F^T x / sqrt(D)) / sqrt(D) with a fixed Gaussian F (D x P) and a fitted by
ridge: (Z^T Z + lambda I) a = Z^T y with Z = sigma(X F / sqrt(D)) / sqrt(D).
psi1 = P / D (parameters), psi2 = N / D (samples).

The analytic side (:func:`fixed_point`) iterates the five order parameters
(V_x, q_x, m_x, V_w, q_w) of the replica solution (Gerace et al. 2020) to their fixed point;
the resolvent of the features' Gram matrix enters through the Marchenko-Pastur Stieltjes
transform. Only the activation's Gaussian coefficients (mu0, mu1, mu*) enter; mu0 does not,
so the numerical side uses the mean-centred activation sigma(z) - mu0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """An activation and its Gaussian coefficients for z ~ N(0, 1): mu0 = E sigma(z),
    mu1 = E z sigma(z), mu* = sqrt(E sigma(z)^2 - mu0^2 - mu1^2)."""

    name: str
    fn: Callable[[Array], Array]
    mu0: float
    mu1: float
    mustar: float

    def centred(self, z: Array) -> Array:
        """sigma(z) - mu0: the activation the analytic solution describes."""
        return self.fn(z) - self.mu0


def _relu(z: Array) -> Array:
    return np.maximum(z, 0.0)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation(
            "relu", _relu, 1 / math.sqrt(2 * math.pi), 0.5, math.sqrt((math.pi - 2) / (4 * math.pi))
        ),
        Activation("tanh", np.tanh, 0.0, 0.605706, 0.165576),
        Activation("erf", erf, 0.0, 2 / math.sqrt(3 * math.pi), 0.200364),
        Activation("sign", np.sign, 0.0, math.sqrt(2 / math.pi), math.sqrt(1 - 2 / math.pi)),
        Activation("abs", np.abs, math.sqrt(2 / math.pi), 0.0, math.sqrt(1 - 2 / math.pi)),
        Activation("linear", lambda z: z, 0.0, 1.0, 0.0),
    )
}


def activation(name: str) -> Activation:
    """The named activation (one of :data:`ACTIVATIONS`); a one-line error otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: unknown {name!r}; allowed: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def linearity(r: float) -> Activation:
    """The "degree of linearity" family: coefficients (0, sqrt r, sqrt(1 - r)). As a function
    (INFERRED, any function with these coefficients behaves alike in the limit):
    sqrt(r) z + sqrt(1 - r) (z^2 - 1) / sqrt(2), mean 0 and variance 1."""
    if not 0 <= r <= 1:
        raise ValueError(f"linearity: r must lie in [0, 1] (got {r})")
    a, b = math.sqrt(r), math.sqrt(1 - r)
    return Activation(f"lin{r:g}", lambda z: a * z + b * (z * z - 1) / math.sqrt(2), 0.0, a, b)


def relu_family(a: float) -> Activation:
    """(relu(z) + a relu(-z) - (1 + a) / sqrt(2 pi)) / norm, mean 0, variance 1: a = 1 is
    |z|, a = -1 linear, a = 0 the centred relu."""
    if not -1 <= a <= 1:
        raise ValueError(f"relu_family: a must lie in [-1, 1] (got {a})")
    shift = (1 + a) / math.sqrt(2 * math.pi)
    norm = math.sqrt((1 + a * a) / 2 - (1 + a) ** 2 / (2 * math.pi))
    mu1 = (1 - a) / (2 * norm)

    def fn(z: Array) -> Array:
        return (_relu(z) + a * _relu(-z) - shift) / norm

    return Activation(f"relu_a{a:g}", fn, 0.0, mu1, math.sqrt(max(1 - mu1 * mu1, 0.0)))


def gaussian_coefficients(fn: Callable[[Array], Array], degree: int = 160) -> tuple[float, ...]:
    """(mu0, mu1, mu*) of ``fn`` by Gauss-Hermite quadrature (a check of the table)."""
    z, w = np.polynomial.hermite_e.hermegauss(degree)
    w = w / w.sum()
    values = fn(z)
    mu0 = float(w @ values)
    mu1 = float(w @ (z * values))
    second = float(w @ (values * values))
    return mu0, mu1, math.sqrt(max(second - mu0 * mu0 - mu1 * mu1, 0.0))


def _stieltjes(u: Array, gamma: Array) -> tuple[Array, Array]:
    """Marchenko-Pastur Stieltjes transform s(u) = (1 - u - gamma - R) / (2 u gamma) and its
    derivative at u < 0, written without cancellation: s = 2 / (A + R) when A = 1 - u - gamma
    >= 0, and s' = (gamma s^2 + s) / R from s's quadratic gamma u s^2 + (u + gamma - 1) s + 1 = 0
    (the textbook form loses every digit at P >> D, where u gamma is tiny)."""
    root = np.sqrt((u - gamma - 1) ** 2 - 4 * gamma)
    a = 1 - u - gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(a >= 0, 2 / (a + root), (a - root) / (2 * u * gamma))
    return s, (gamma * s * s + s) / root


@dataclass(frozen=True)
class PhasePoint:
    """The fixed point at each (psi1, psi2) (arrays of their broadcast shape)."""

    test_loss: Array  # 1 + Q - 2M: squared error against the noise-free teacher
    Q: Array
    M: Array
    iterations: int
    converged: Array  # bool


def fixed_point(
    psi1: Array | float,
    psi2: Array | float,
    lam: float,
    delta: float,
    mu1: float,
    mustar: float,
    damping: float = 0.5,
    tol: float = 1e-9,
    max_iter: int = 20_000,
) -> PhasePoint:
    """Analytic test loss of ridge random features at P/D = psi1, N/D = psi2 (vectorised:
    arrays broadcast). Iterates (V_x, q_x, m_x, V_w, q_w) from 1e-3 with ``damping`` until
    no order parameter moves by more than ``tol`` (per point), as the spec states."""
    if lam <= 0:
        raise ValueError(f"lambda must be > 0 (got {lam})")
    psi1, psi2 = np.broadcast_arrays(np.asarray(psi1, float), np.asarray(psi2, float))
    gamma = 1.0 / psi1
    state = np.full((5, *psi1.shape), 1e-3)
    done = np.zeros(psi1.shape, bool)
    m1, ms = mu1 * mu1, mustar * mustar
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        Vx, qx, mx, Vw, qw = state
        Q = m1 * qx + ms * qw
        M = mu1 * mx
        c = 1.0 / (1.0 + m1 * Vx + ms * Vw)
        E = 1.0 + Q + delta - 2.0 * M
        mh = psi2 * mu1 * c
        Vxh = psi2 * m1 * c
        qxh = psi2 * m1 * c * c * E
        Vwh = psi2 * ms * c
        qwh = psi2 * ms * c * c * E
        lw = lam + Vwh
        z = lw / Vxh
        s, ds = _stieltjes(-gamma * z, gamma)
        g, gp = gamma * s, gamma * gamma * ds
        Vx_new = (1 - z * g) / Vxh
        mx_new = mh * Vx_new
        cross = z * z * gp - z * g
        qx_new = (mh * mh + qxh) * (1 - 2 * z * g + z * z * gp) / Vxh**2 - qwh * cross / (lw * Vxh)
        Vw_new = (1 / gamma - 1 + z * g) / lw
        qw_new = qwh * (1 / gamma - 1 + z * z * gp) / lw**2 - (mh * mh + qxh) * cross / (Vxh * lw)
        new = np.stack([Vx_new, qx_new, mx_new, Vw_new, qw_new])
        new = damping * state + (1 - damping) * new
        moved = np.max(np.abs(new - state), axis=0)
        state = np.where(done, state, new)
        done |= moved < tol
        if done.all():
            break
    Vx, qx, mx, Vw, qw = state
    Q = m1 * qx + ms * qw
    M = mu1 * mx
    return PhasePoint(1 + Q - 2 * M, Q, M, iteration, done)


def analytic_test_loss(
    psi1: Array | float, psi2: Array | float, lam: float, delta: float, act: Activation
) -> Array:
    """:func:`fixed_point`'s test loss for an :class:`Activation`."""
    return fixed_point(psi1, psi2, lam, delta, act.mu1, act.mustar).test_loss


def simulate(
    n: int,
    p: int,
    d: int,
    lam: float,
    delta: float,
    act: Activation,
    rng: np.random.Generator,
    n_test: int = 2000,
) -> tuple[float, float]:
    """Numerical random-features ridge regression at N = n, P = p, D = d: (test loss against
    the noise-free teacher, mean training squared error). Solves the normal equations
    (Z^T Z + lambda I) a = Z^T y, or their dual form when P > N (the same a)."""

    def inputs(k: int) -> Array:
        x = rng.standard_normal((k, d))
        return x * (math.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True))

    beta = rng.standard_normal(d)
    beta *= math.sqrt(d) / np.linalg.norm(beta)  # teacher output variance exactly 1
    feats = rng.standard_normal((d, p))
    x, x_test = inputs(n), inputs(n_test)
    y = x @ beta / math.sqrt(d) + math.sqrt(delta) * rng.standard_normal(n)
    z = act.centred(x @ feats / math.sqrt(d)) / math.sqrt(d)
    if p <= n:
        a = np.linalg.solve(z.T @ z + lam * np.eye(p), z.T @ y)
    else:
        a = z.T @ np.linalg.solve(z @ z.T + lam * np.eye(n), y)
    z_test = act.centred(x_test @ feats / math.sqrt(d)) / math.sqrt(d)
    test = float(np.mean((x_test @ beta / math.sqrt(d) - z_test @ a) ** 2))
    train = float(np.mean((y - z @ a) ** 2))
    return test, train


def phase_space(
    ratios: Array, lam: float, delta: float, act: Activation
) -> tuple[Array, Array, Array]:
    """(N/D grid, P/D grid, analytic test loss) on ``ratios`` x ``ratios``: rows index P/D,
    columns N/D (the paper's Fig. 3 uses logspace(-1.5, 2.5, 20) for both)."""
    ratios = np.asarray(ratios, float)
    n_grid, p_grid = np.meshgrid(ratios, ratios)
    return n_grid, p_grid, analytic_test_loss(p_grid, n_grid, lam, delta, act)
