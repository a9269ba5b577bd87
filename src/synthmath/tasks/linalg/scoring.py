"""Scoring of decoded predictions: relative L1 errors, and reconstruction checks.

``||X||_1`` is the entrywise L1 norm (sum of absolute values). A prediction is correct at
tolerance tau when its error is below tau:

- transpose, add, matvec, matmul, eigenvalues, singular_values: ``||P - S||_1 / ||S||_1``
  against the stored answer S;
- eigenvectors (lambda, Q): ``||Q^T M Q - diag(lambda)||_1 / ||lambda||_1`` with the
  *predicted* lambda;
- svd (s, U, V): ``||U^T M V - diag(s)||_1 / ||s||_1``;
- inverse P: ``||M P - I||_1 / n`` (n = ||I||_1).

M is the clean input (``a_clean`` when noise was added). The reconstruction checks accept a
non-orthogonal diagonalisation (scale Q by c and lambda by c^2), so eigenvectors and svd also
report ``orth_error``, ``||Q^T Q - I||_1 / k`` (svd: the larger of the U and V errors), and
``strict_acc_tol*``, correct at tau only when the error *and* ``orth_error`` are below tau.
A prediction that does not decode, or has a wrong shape, has error inf (wrong at every tau);
so has a zero denominator or a non-finite result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmath.core.metrics import Metric
from synthmath.core.task import RawBatch
from synthmath.tasks.linalg.ops import OpSpec

#: tolerances in percent, as they appear in metric names (``acc_tol5`` ... ``acc_tol0.5``)
TOLERANCES = (5, 2, 1, 0.5)
INF = float("inf")


def _ratio(num: float, den: float) -> float:
    if not (den > 0 and np.isfinite(num) and np.isfinite(den)):
        return INF
    return float(num / den)


def relative_l1_error(pred: np.ndarray, target: np.ndarray) -> float:
    """``||pred - target||_1 / ||target||_1``."""
    return _ratio(np.abs(pred - target).sum(), np.abs(target).sum())


def orthonormality_error(q: np.ndarray) -> float:
    """``||Q^T Q - I||_1 / k`` for a matrix with k columns."""
    k = q.shape[1]
    return _ratio(np.abs(q.T @ q - np.eye(k)).sum(), k)


def eigen_reconstruction_error(m: np.ndarray, lam: np.ndarray, q: np.ndarray) -> float:
    """``||Q^T M Q - diag(lambda)||_1 / ||lambda||_1``."""
    return _ratio(np.abs(q.T @ m @ q - np.diag(lam)).sum(), np.abs(lam).sum())


def svd_reconstruction_error(m: np.ndarray, s: np.ndarray, u: np.ndarray, v: np.ndarray):
    """``||U^T M V - diag(s)||_1 / ||s||_1``."""
    return _ratio(np.abs(u.T @ m @ v - np.diag(s)).sum(), np.abs(s).sum())


def inverse_error(m: np.ndarray, p: np.ndarray) -> float:
    """``||M P - I||_1 / n``."""
    n = m.shape[0]
    return _ratio(np.abs(m @ p - np.eye(n)).sum(), n)


def _errors(spec: OpSpec, raw: RawBatch, i: int, got: dict[str, np.ndarray]):
    """(error, orthonormality error or None) of example i's decoded prediction."""
    want = {}
    for name, kind in spec.outputs:
        r, c = (int(x) for x in raw[f"answer_{name}_shape"][i])
        shape = (r,) if kind == "vector" else (r, c)
        if got[name].shape != shape:
            return INF, INF
        want[name] = raw[f"answer_{name}"][i, :r, :c]
        if kind == "vector":
            want[name] = want[name][:, 0]
    if spec.name in ("eigenvectors", "svd", "inverse"):
        r, c = (int(x) for x in raw["a_shape"][i])
        m = raw.get("a_clean", raw["a"])[i, :r, :c]
        if spec.name == "inverse":
            return inverse_error(m, got["inverse"]), None
        if spec.name == "eigenvectors":
            q = got["eigenvectors"]
            err = eigen_reconstruction_error(m, got["eigenvalues"], q)
            return err, orthonormality_error(q)
        u, v = got["U"], got["V"]
        err = svd_reconstruction_error(m, got["s"], u, v)
        return err, max(orthonormality_error(u), orthonormality_error(v))
    ((name, _),) = spec.outputs
    return relative_l1_error(got[name], want[name]), None


def declared_metrics(spec: OpSpec) -> tuple[Metric, ...]:
    """The metrics :func:`score_decoded` returns for ``spec``, in the same order."""
    out = [Metric.acc(f"acc_tol{tol:g}", f"error below {tol:g}%") for tol in TOLERANCES]
    out.append(Metric.error("rel_error", "relative L1 error (or reconstruction error)"))
    if spec.name in ("eigenvectors", "svd"):
        out += [
            Metric.acc(f"strict_acc_tol{tol:g}", f"error and orth_error below {tol:g}%")
            for tol in TOLERANCES
        ]
        out.append(Metric.error("orth_error", "||Q^T Q - I||_1 / k of the predicted vectors"))
    return tuple(out)


def score_decoded(
    spec: OpSpec, raw: RawBatch, decoded: Sequence[dict[str, np.ndarray] | None]
) -> dict[str, np.ndarray]:
    """Per-example metrics; ``decoded[i]`` is None when prediction i did not decode."""
    n = len(decoded)
    err = np.full(n, INF)
    strict = spec.name in ("eigenvectors", "svd")
    orth = np.full(n, INF)
    with np.errstate(all="ignore"):
        for i, got in enumerate(decoded):
            if got is not None:
                e, o = _errors(spec, raw, i, got)
                err[i] = e
                if o is not None:
                    orth[i] = o
    out: dict[str, np.ndarray] = {}
    for tol in TOLERANCES:
        out[f"acc_tol{tol:g}"] = err < tol / 100
    out["rel_error"] = err
    if strict:
        for tol in TOLERANCES:
            out[f"strict_acc_tol{tol:g}"] = (err < tol / 100) & (orth < tol / 100)
        out["orth_error"] = orth
    return out
