"""Random matrices: coefficient laws and the spectrum laws of the out-of-distribution study.

Coefficient laws (non-eigen ops): ``uniform`` on [-A, A] and ``gaussian`` with the same
variance A^2/3 (std A/sqrt 3).

Symmetric matrices (eigen ops) start from a Wigner matrix W: an iid uniform [-A, A] matrix
whose lower triangle (diagonal included) is mirrored to the upper one, so every entry has
variance A^2/3. Its eigenvalues have second moment (1/n) E[tr W^2] = (1/n) sum_ij E[W_ij^2]
= n A^2/3 *exactly*, for every n (this is the spec's "variance n A^2/3"; the spectrum tends to
the semicircle of radius 2 A sqrt(n/3)).

Other spectrum laws keep W's eigenvectors Q and replace its eigenvalues by ``n`` iid draws
lambda with E[lambda^2] = n A^2/3 (so the Frobenius norms match the Wigner matrices), then
rebuild ``Q diag(lambda) Q^T`` (symmetrised against rounding):

=========== ==============================================================================
semicircle  W itself (no rebuilding)
positive    |eigenvalues of W|, i.e. the matrix |W| = sqrt(W^2)
uniform     uniform on [-a, a], a = A sqrt(n)
gaussian    normal, mean 0, variance n A^2/3
laplace     Laplace, mean 0, scale b = A sqrt(n/6) (variance 2 b^2 = n A^2/3)
positive2   |laplace|
marchenko   c * eigenvalues(G^T G), G an n x n standard normal matrix (Wishart, ratio 1),
            c = A / sqrt(3 (2n + 1)), since E[tr (G^T G)^2] = n^2 (2n + 1)
=========== ==============================================================================

For the symmetric laws E[lambda^2] is the variance; the positive laws are absolute values of
a symmetric law, so they share its second moment (their variance about their mean is smaller).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

COEFF_LAWS = ("uniform", "gaussian")
SPECTRUM_LAWS = (
    "semicircle",
    "positive",
    "uniform",
    "gaussian",
    "laplace",
    "positive2",
    "marchenko",
)


def coefficients(law: str, shape: tuple[int, ...], scale: float, rng: np.random.Generator):
    """iid coefficients: uniform on [-scale, scale] or Gaussian of the same variance."""
    if law == "uniform":
        return rng.uniform(-scale, scale, shape)
    if law == "gaussian":
        return rng.normal(0.0, scale / np.sqrt(3.0), shape)
    raise ValueError(f"unknown coefficient law {law!r}; allowed: {', '.join(COEFF_LAWS)}")


def wigner(count: int, n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` symmetric n x n matrices with iid uniform [-scale, scale] entries (i >= j)."""
    g = rng.uniform(-scale, scale, (count, n, n))
    lower = np.tril(g)
    return lower + np.swapaxes(np.tril(g, -1), 1, 2)


def spectrum(
    law: str,
    count: int,
    n: int,
    scale: float,
    rng: np.random.Generator,
    wigner_eigenvalues: np.ndarray | None = None,
) -> np.ndarray:
    """``(count, n)`` eigenvalues drawn from ``law`` with E[lambda^2] = n scale^2 / 3.

    ``semicircle`` and ``positive`` need the Wigner eigenvalues they are built from.
    """
    variance = n * scale**2 / 3.0
    if law in ("semicircle", "positive"):
        if wigner_eigenvalues is None:
            raise ValueError(f"spectrum law {law!r} needs the Wigner eigenvalues")
        w = wigner_eigenvalues
        return np.abs(w) if law == "positive" else w.copy()
    if law == "uniform":
        half_width = np.sqrt(3.0 * variance)
        return rng.uniform(-half_width, half_width, (count, n))
    if law == "gaussian":
        return rng.normal(0.0, np.sqrt(variance), (count, n))
    if law in ("laplace", "positive2"):
        draws = rng.laplace(0.0, np.sqrt(variance / 2.0), (count, n))
        return np.abs(draws) if law == "positive2" else draws
    if law == "marchenko":
        g = rng.standard_normal((count, n, n))
        wishart = np.swapaxes(g, 1, 2) @ g
        return np.linalg.eigvalsh(wishart) * (scale / np.sqrt(3.0 * (2 * n + 1)))
    raise ValueError(f"unknown spectrum law {law!r}; allowed: {', '.join(SPECTRUM_LAWS)}")


def symmetric_matrices(
    laws: Sequence[str],
    law_index: np.ndarray,
    n: int,
    scale: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Symmetric n x n matrices, example i with spectrum law ``laws[law_index[i]]``.

    Returns ``(matrices (count, n, n), eigenvalues (count, n) or None)``; the eigenvalues
    (in no particular order) are those the matrices were built from, ``None`` when every
    example is a plain Wigner matrix (then nothing was diagonalised).
    """
    count = len(law_index)
    w = wigner(count, n, scale, rng)
    if all(laws[i] == "semicircle" for i in np.unique(law_index)):
        return w, None
    w_eigs, q = np.linalg.eigh(w)
    lam = np.empty((count, n))
    for i, law in enumerate(laws):
        rows = np.flatnonzero(law_index == i)
        if len(rows):
            lam[rows] = spectrum(law, len(rows), n, scale, rng, w_eigs[rows])
    m = (q * lam[:, None, :]) @ np.swapaxes(q, 1, 2)  # Q diag(lambda) Q^T
    m = 0.5 * (m + np.swapaxes(m, 1, 2))
    plain = np.isin(law_index, [i for i, law in enumerate(laws) if law == "semicircle"])
    m[plain] = w[plain]
    return m, lam
