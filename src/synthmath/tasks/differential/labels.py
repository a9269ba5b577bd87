"""Labels of linearised systems: stability, Kalman controllability, a stabilising feedback.

All functions take numeric Jacobians (``A`` = df/dx n x n, ``B`` = df/du n x p) and are
NumPy/SciPy only, vectorised over a leading batch axis where it matters.

- stability: lambda = max Re eig(A); convergence speed s = -lambda; stable iff s > 0.
- controllability: rank [B, AB, ..., A^(n-1) B] = n, the rank counting singular values above
  an absolute tolerance of 1e-6 (the released ``matrix_rank(..., tol=1e-6)``).
- feedback (Charton, Hayat & Lample 2020, released ``predict_gramian``): A normalised by its
  Frobenius norm (B too with ``normalize_b``), T = 1,
  C_T = e^(-AT) [int_0^T e^(-At) B B^T e^(-A^T t) dt] e^(-A^T T),
  K = -B^T (C_T + 1e-6 I)^(-1). The integral is exact by Van Loan's block exponential:
  expm([[A, B B^T], [0, -A^T]] T) = [[., G12], [0, e^(-A^T T)]] and the integral is
  e^(-A^T T)^T G12; ``trapezoid40`` is the released 40-point trapezoid rule (fidelity).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

#: rank tolerance of the Kalman matrix (absolute, on singular values)
RANK_TOL = 1e-6
#: regularisation of the Gramian before inversion (released)
GRAMIAN_EPS = 1e-6
#: horizon of the Gramian (released)
HORIZON = 1.0
#: points of the released trapezoid rule
TRAPEZOID_POINTS = 40
GRAMIANS = ("exact", "trapezoid40")


def max_real_eig(a: np.ndarray) -> np.ndarray:
    """max Re eig(A) for one matrix or a stack (``(..., n, n)`` -> ``(...)``)."""
    return np.linalg.eigvals(a).real.max(axis=-1)


def kalman_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[B, AB, ..., A^(n-1) B] (n x n p)."""
    blocks = [b]
    for _ in range(a.shape[0] - 1):
        blocks.append(a @ blocks[-1])
    return np.concatenate(blocks, axis=1)


def rank_deficit(a: np.ndarray, b: np.ndarray, tol: float = RANK_TOL) -> int:
    """n - rank of the Kalman matrix (0: controllable); ValueError when A^k B overflows."""
    with np.errstate(all="ignore"):
        kalman = kalman_matrix(a, b)
    if not np.isfinite(kalman).all():
        raise ValueError("the Kalman matrix overflows (A^k B beyond 1e308)")
    s = np.linalg.svd(kalman, compute_uv=False)
    return int(a.shape[0] - np.count_nonzero(s > tol))


def normalise(a: np.ndarray, b: np.ndarray, normalize_b: bool = False):
    """(A / ||A||_F, B or B / ||A||_F): the released code divides B by the norm of the already
    normalised A, i.e. by 1, so B stays as it is unless ``normalize_b``."""
    norm = np.linalg.norm(a, axis=(-2, -1), keepdims=True)
    return a / norm, (b / norm if normalize_b else b)


def gramian(a: np.ndarray, b: np.ndarray, method: str = "exact", t: float = HORIZON):
    """C_T of (A, B), stacked ``(m, n, n)``/``(m, n, p)`` or single; see module docstring."""
    if method not in GRAMIANS:
        raise ValueError(f"gramian: unknown method {method!r}; allowed: {', '.join(GRAMIANS)}")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    single = a.ndim == 2
    if single:
        a, b = a[None], b[None]
    n = a.shape[-1]
    q = b @ np.swapaxes(b, -1, -2)
    at = np.swapaxes(a, -1, -2)
    if method == "exact":
        block = np.zeros((len(a), 2 * n, 2 * n))
        block[:, :n, :n] = a
        block[:, :n, n:] = q
        block[:, n:, n:] = -at
        e = scipy.linalg.expm(block * t)
        g22 = e[:, n:, n:]  # e^(-A^T t)
        integral = np.swapaxes(g22, -1, -2) @ e[:, :n, n:]
    else:
        times = np.linspace(0.0, t, TRAPEZOID_POINTS)
        # e^(-A t_k) for every k: (m, K, n, n)
        ex = scipy.linalg.expm(-a[:, None] * times[None, :, None, None])
        values = ex @ q[:, None] @ np.swapaxes(ex, -1, -2)
        integral = np.trapezoid(values, times, axis=1)
        g22 = np.swapaxes(scipy.linalg.expm(-a * t), -1, -2)
    c = np.swapaxes(g22, -1, -2) @ integral @ g22
    return c[0] if single else c


def feedback_gain(
    a: np.ndarray, b: np.ndarray, method: str = "exact", normalize_b: bool = False
) -> np.ndarray:
    """K = -B^T (C_T + 1e-6 I)^(-1) of the normalised (A, B) (single or stacked)."""
    an, bn = normalise(np.asarray(a, float), np.asarray(b, float), normalize_b)
    c = gramian(an, bn, method)
    n = an.shape[-1]
    inv = np.linalg.inv(c + GRAMIAN_EPS * np.eye(n))
    return -np.swapaxes(bn, -1, -2) @ inv


def closed_loop_max_real(
    a: np.ndarray, b: np.ndarray, k: np.ndarray, normalize_b: bool = False
) -> float:
    """max Re eig(A + B K) of the normalised (A, B): K stabilises iff this is < 0."""
    an, bn = normalise(np.asarray(a, float), np.asarray(b, float), normalize_b)
    with np.errstate(all="ignore"):
        m = an + bn @ np.asarray(k, float)
    if not np.isfinite(m).all():
        return float("inf")
    return float(max_real_eig(m))
