"""Spectrum and coefficient laws: moments, shapes, and the matrices built from them."""

import numpy as np
import pytest

from synthmath.tasks.linalg.distributions import SPECTRUM_LAWS, spectrum, symmetric_matrices, wigner
from synthmath.tasks.registry import make_task

A = 10.0
N = 8
COUNT = 20000


def kurtosis(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x**4).mean() / (x**2).mean() ** 2)


@pytest.fixture(scope="module")
def wigner_eigenvalues() -> np.ndarray:
    return np.linalg.eigvalsh(wigner(COUNT, N, A, np.random.default_rng(0)))


def test_wigner_second_moment_is_n_a2_over_3(wigner_eigenvalues):
    lam = wigner_eigenvalues.ravel()
    assert abs(lam.mean()) < 0.02 * np.sqrt(N * A**2 / 3)
    assert (lam**2).mean() == pytest.approx(N * A**2 / 3, rel=0.01)
    # semicircle kurtosis is 2 (finite-n Wigner matrices sit slightly below)
    assert 1.9 < kurtosis(lam) < 2.05


# law -> (kurtosis about the mean, or None; symmetric about 0; non-negative)
SHAPES = {
    "semicircle": (2.0, True, False),
    "positive": (None, False, True),
    "uniform": (1.8, True, False),
    "gaussian": (3.0, True, False),
    "laplace": (6.0, True, False),
    "positive2": (None, False, True),
    "marchenko": (None, False, True),
}


@pytest.mark.parametrize("law", SPECTRUM_LAWS)
def test_spectrum_law_moments_and_shape(law, wigner_eigenvalues):
    lam = spectrum(law, COUNT, N, A, np.random.default_rng(1), wigner_eigenvalues)
    assert lam.shape == (COUNT, N)
    lam = lam.ravel()
    # every law has the Wigner second moment n A^2 / 3
    assert (lam**2).mean() == pytest.approx(N * A**2 / 3, rel=0.02)
    kurt, symmetric, positive = SHAPES[law]
    scale = np.sqrt(N * A**2 / 3)
    if symmetric:
        assert abs(lam.mean()) < 0.02 * scale
    if positive:
        assert lam.min() >= -1e-9 and lam.mean() > 0.5 * scale
    if kurt is not None:
        assert kurtosis(lam) == pytest.approx(kurt, abs=0.1 * kurt)


def test_positive_laws_are_absolute_values(wigner_eigenvalues):
    np.testing.assert_array_equal(
        spectrum("positive", COUNT, N, A, np.random.default_rng(0), wigner_eigenvalues),
        np.abs(wigner_eigenvalues),
    )
    lap = spectrum("laplace", 100, N, A, np.random.default_rng(5))
    np.testing.assert_array_equal(
        spectrum("positive2", 100, N, A, np.random.default_rng(5)), np.abs(lap)
    )


def test_built_matrices_have_exactly_the_drawn_eigenvalues():
    laws = SPECTRUM_LAWS
    rng = np.random.default_rng(2)
    law_index = np.arange(700) % len(laws)
    m, lam = symmetric_matrices(laws, law_index, 6, A, rng)
    np.testing.assert_array_equal(m, np.swapaxes(m, 1, 2))
    np.testing.assert_allclose(np.linalg.eigvalsh(m), np.sort(lam, axis=1), atol=1e-9)
    # plain Wigner rows are the Wigner matrix itself: iid uniform entries in [-A, A]
    plain = m[law_index == 0]
    assert np.abs(plain).max() <= A
    # rebuilt matrices keep the Wigner eigenvectors: same draws, other law, same Q
    m2, lam2 = symmetric_matrices(("uniform",), np.zeros(5, int), 4, A, np.random.default_rng(3))
    w = wigner(5, 4, A, np.random.default_rng(3))
    _, q = np.linalg.eigh(w)
    np.testing.assert_allclose(m2, (q * lam2[:, None, :]) @ np.swapaxes(q, 1, 2), atol=1e-9)


def test_all_wigner_skips_diagonalisation():
    m, lam = symmetric_matrices(("semicircle",), np.zeros(4, int), 3, A, np.random.default_rng(0))
    assert lam is None
    np.testing.assert_array_equal(m, wigner(4, 3, A, np.random.default_rng(0)))


@pytest.mark.parametrize("law", ["laplace", "marchenko", "positive"])
def test_task_eigenvalues_follow_the_law(law):
    task = make_task("linalg", {"op": "eigenvalues", "dim": N, "dist": law})
    raw = task.sample(3000, np.random.default_rng(0))
    lam = raw["answer_eigenvalues"][:, :, 0].ravel()
    assert (lam**2).mean() == pytest.approx(N * A**2 / 3, rel=0.05)
    if law != "laplace":
        assert lam.min() > -0.1  # non-negative up to the 3-digit rounding of the input
    assert set(raw["spectrum"]) == {law}


def test_mixture_draws_each_law_per_example():
    task = make_task("linalg", {"op": "eigenvalues", "dist": "laplace, positive2,uniform"})
    raw = task.sample(3000, np.random.default_rng(0))
    laws, counts = np.unique(raw["spectrum"], return_counts=True)
    assert list(laws) == ["laplace", "positive2", "uniform"]
    assert np.all(np.abs(counts - 1000) < 120)
    lam = raw["answer_eigenvalues"][:, :, 0]
    assert lam[raw["spectrum"] == "positive2"].min() > -0.1
    assert lam[raw["spectrum"] == "laplace"].min() < -1


def test_coefficient_laws_have_equal_variance():
    variances = {}
    for law in ("uniform", "gaussian"):
        task = make_task("linalg", {"op": "transpose", "dim": 5, "dist": law})
        a = task.sample(4000, np.random.default_rng(0))["a"].ravel()
        assert abs(a.mean()) < 0.05
        variances[law] = a.var()
        if law == "uniform":
            assert np.abs(a).max() <= A
            assert kurtosis(a) == pytest.approx(1.8, abs=0.05)
        else:
            assert kurtosis(a) == pytest.approx(3.0, abs=0.15)
    for v in variances.values():
        assert v == pytest.approx(A**2 / 3, rel=0.02)
    task = make_task("linalg", {"op": "matmul", "dist": "auto", "coeff_range": 2})
    assert np.abs(task.sample(100, np.random.default_rng(0))["b"]).max() <= 2
