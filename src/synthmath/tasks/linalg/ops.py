"""The nine operations: their operands and outputs, and the vectorised generator of raw batches.

Raw batch layout (every array has the leading dimension n; matrices are zero-padded to
``max_dim`` x ``max_dim`` so that shards of one dataset concatenate; a vector is an
``k x 1`` matrix, stored ``(n, max_dim, 1)``; every block ``X`` has ``X_shape`` (n, 2) int64
with its true (rows, cols)):

- ``a``, ``a_shape``: the input matrix (the first operand);
- ``b``, ``b_shape``: the second operand of add (matrix), matvec (vector), matmul (matrix);
- ``answer_<name>``, ``answer_<name>_shape``: the outputs, in sequence order (see ``OPS``):
  transpose ``transpose``; add ``sum``; matvec and matmul ``product``; inverse ``inverse``;
  eigenvalues ``eigenvalues``; eigenvectors ``eigenvalues`` then ``eigenvectors``;
  singular_values ``s``; svd ``s``, ``U``, ``V``;
- ``spectrum`` (eigen ops only): the spectrum law of each example (unicode strings);
- ``a_clean`` (and ``b_clean``): the inputs before noise, only when ``noise > 0``.

Inputs are rounded to 3 significant digits (:func:`synthmath.codecs.numbers.round_sig3`, the
rounding shared by every encoding) *before* the answers are computed, so the answer is exact
for the matrix the model reads. Answers are stored at full precision (the output encoding
rounds them). Noise, when asked for, is added to the rounded inputs after the answers are
computed (then rounded again); for the symmetric inputs of eigen ops the noise is symmetric.

Canonical forms: eigenvalues and singular values are sorted in descending order; eigenvectors
are the columns of Q; svd is the reduced one, M = U diag(s) V^T with k = min(rows, cols),
U (rows x k), V (cols x k); the sign of each eigenvector (each (u, v) pair) is chosen so that
the largest-magnitude entry of the eigenvector (of u) is positive.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from synthmath.codecs.numbers import round_sig3
from synthmath.core.errors import ConfigError
from synthmath.core.task import RawBatch
from synthmath.tasks.linalg.distributions import coefficients, symmetric_matrices


@dataclass(frozen=True)
class OpSpec:
    """What an operation reads and writes; kinds are "matrix" or "vector"."""

    name: str
    operands: tuple[str, ...]  # kinds of a (and b)
    outputs: tuple[tuple[str, str], ...]  # (name, kind) in sequence order
    rectangular: bool  # may be rectangular
    eigen: bool = False  # symmetric input whose ``dist`` is a spectrum law


OPS: dict[str, OpSpec] = {
    s.name: s
    for s in (
        OpSpec("transpose", ("matrix",), (("transpose", "matrix"),), True),
        OpSpec("add", ("matrix", "matrix"), (("sum", "matrix"),), True),
        OpSpec("matvec", ("matrix", "vector"), (("product", "vector"),), True),
        OpSpec("matmul", ("matrix", "matrix"), (("product", "matrix"),), True),
        OpSpec("eigenvalues", ("matrix",), (("eigenvalues", "vector"),), False, True),
        OpSpec(
            "eigenvectors",
            ("matrix",),
            (("eigenvalues", "vector"), ("eigenvectors", "matrix")),
            False,
            True,
        ),
        OpSpec("singular_values", ("matrix",), (("s", "vector"),), True),
        OpSpec("svd", ("matrix",), (("s", "vector"), ("U", "matrix"), ("V", "matrix")), True),
        OpSpec("inverse", ("matrix",), (("inverse", "matrix"),), False),
    )
}
OP_NAMES = tuple(OPS)
#: at most this many rounds of rejection sampling for ``inverse``
MAX_REJECTION_ROUNDS = 30


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator parameters of one task, resolved (see ``LinalgTask.PARAMS``)."""

    op: str
    lo: int  # sizes are drawn uniformly in [lo, hi]; lo == hi means fixed
    hi: int
    rectangular: bool
    laws: tuple[str, ...]  # spectrum laws (eigen ops) or the one coefficient law
    scale: float  # A
    noise: float
    max_cond: float


def _draw_sizes(cfg: GeneratorConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    if cfg.lo == cfg.hi:
        return np.full(n, cfg.lo, dtype=np.int64)
    return rng.integers(cfg.lo, cfg.hi + 1, n)


def _shape(rows: np.ndarray, cols: np.ndarray | int) -> np.ndarray:
    return np.stack(np.broadcast_arrays(rows, cols), axis=1).astype(np.int64)


def _mask(shape: np.ndarray, pad_rows: int, pad_cols: int) -> np.ndarray:
    """(n, pad_rows, pad_cols) bool, True inside each example's (rows, cols)."""
    r = np.arange(pad_rows)[None, :, None] < shape[:, 0, None, None]
    c = np.arange(pad_cols)[None, None, :] < shape[:, 1, None, None]
    return r & c


def _padded_coefficients(cfg, shape, pad_rows, pad_cols, rng) -> np.ndarray:
    """Rounded coefficients in (n, pad_rows, pad_cols), zero outside each example's shape."""
    x = round_sig3(coefficients(cfg.laws[0], (len(shape), pad_rows, pad_cols), cfg.scale, rng))
    if not (np.all(shape[:, 0] == pad_rows) and np.all(shape[:, 1] == pad_cols)):
        x *= _mask(shape, pad_rows, pad_cols)
    return x


def _groups(shape: np.ndarray) -> Iterator[tuple[tuple[int, int], np.ndarray | slice]]:
    """(rows, cols) and the examples of that shape, in sorted order (one slice if fixed)."""
    if len(shape) == 0:
        return
    first = shape[0]
    if np.all(shape == first):
        yield (int(first[0]), int(first[1])), slice(None)
        return
    keys, inverse = np.unique(shape, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for g, (r, c) in enumerate(keys):
        yield (int(r), int(c)), np.flatnonzero(inverse == g)


def _sign_fix(q: np.ndarray) -> np.ndarray:
    """(count, 1, k) signs making the largest-magnitude entry of each column of q positive."""
    idx = np.argmax(np.abs(q), axis=1)[:, None, :]
    s = np.sign(np.take_along_axis(q, idx, axis=1))
    s[s == 0] = 1.0
    return s


def sample_batch(cfg: GeneratorConfig, n: int, rng: np.random.Generator) -> RawBatch:
    """Draw ``n`` problems of ``cfg.op`` with their answers (layout in the module docstring)."""
    spec = OPS[cfg.op]
    d = cfg.hi
    if spec.rectangular and cfg.rectangular:
        rows, cols = _draw_sizes(cfg, n, rng), _draw_sizes(cfg, n, rng)
    else:
        rows = cols = _draw_sizes(cfg, n, rng)
    raw: RawBatch = {}
    if cfg.op in ("transpose", "add", "matvec", "matmul"):
        a_shape = _shape(rows, cols)
        a = _padded_coefficients(cfg, a_shape, d, d, rng)
        raw.update(a=a, a_shape=a_shape)
        if cfg.op == "transpose":
            _put(raw, "transpose", np.swapaxes(a, 1, 2).copy(), a_shape[:, ::-1].copy())
        elif cfg.op == "add":
            b = _padded_coefficients(cfg, a_shape, d, d, rng)
            raw.update(b=b, b_shape=a_shape.copy())
            _put(raw, "sum", a + b, a_shape.copy())
        elif cfg.op == "matvec":
            b_shape = _shape(cols, 1)
            b = _padded_coefficients(cfg, b_shape, d, 1, rng)
            raw.update(b=b, b_shape=b_shape)
            _put(raw, "product", a @ b, _shape(rows, 1))
        else:
            p = _draw_sizes(cfg, n, rng) if cfg.rectangular else cols
            b_shape = _shape(cols, p)
            b = _padded_coefficients(cfg, b_shape, d, d, rng)
            raw.update(b=b, b_shape=b_shape)
            _put(raw, "product", a @ b, _shape(rows, p))
    elif spec.eigen:
        _sample_symmetric(cfg, raw, _shape(rows, cols), rng)
    elif cfg.op in ("singular_values", "svd"):
        _sample_svd(cfg, raw, _shape(rows, cols), rng)
    else:
        _sample_inverse(cfg, raw, _shape(rows, cols), rng)
    if cfg.noise > 0:
        _add_noise(cfg, spec, raw, rng)
    return raw


def _put(raw: RawBatch, name: str, value: np.ndarray, shape: np.ndarray) -> None:
    raw[f"answer_{name}"] = value
    raw[f"answer_{name}_shape"] = shape


def _sample_symmetric(cfg: GeneratorConfig, raw: RawBatch, shape, rng) -> None:
    n, d = len(shape), cfg.hi
    law_index = (
        rng.integers(0, len(cfg.laws), n) if len(cfg.laws) > 1 else np.zeros(n, dtype=np.int64)
    )
    a = np.zeros((n, d, d))
    lam = np.zeros((n, d, 1))
    vecs = np.zeros((n, d, d)) if cfg.op == "eigenvectors" else None
    for (k, _), idx in _groups(shape):
        m, _ = symmetric_matrices(cfg.laws, law_index[idx], k, cfg.scale, rng)
        m = round_sig3(m)
        a[idx, :k, :k] = m
        if vecs is None:
            lam[idx, :k, 0] = np.linalg.eigvalsh(m)[:, ::-1]
        else:
            w, q = np.linalg.eigh(m)
            q = q[:, :, ::-1]
            lam[idx, :k, 0] = w[:, ::-1]
            vecs[idx, :k, :k] = q * _sign_fix(q)
    raw.update(a=a, a_shape=shape)
    _put(raw, "eigenvalues", lam, _shape(shape[:, 0], 1))
    if vecs is not None:
        _put(raw, "eigenvectors", vecs, shape.copy())
    raw["spectrum"] = np.asarray(cfg.laws)[law_index]


def _sample_svd(cfg: GeneratorConfig, raw: RawBatch, shape, rng) -> None:
    n, d = len(shape), cfg.hi
    a = np.zeros((n, d, d))
    s = np.zeros((n, d, 1))
    full = cfg.op == "svd"
    u = np.zeros((n, d, d)) if full else None
    v = np.zeros((n, d, d)) if full else None
    for (r, c), idx in _groups(shape):
        k = min(r, c)
        count = n if isinstance(idx, slice) else len(idx)
        m = round_sig3(coefficients(cfg.laws[0], (count, r, c), cfg.scale, rng))
        a[idx, :r, :c] = m
        if not full:
            s[idx, :k, 0] = np.linalg.svd(m, compute_uv=False)
            continue
        uu, ss, vh = np.linalg.svd(m, full_matrices=False)
        vv = np.swapaxes(vh, 1, 2)
        sign = _sign_fix(uu)
        s[idx, :k, 0] = ss
        u[idx, :r, :k] = uu * sign
        v[idx, :c, :k] = vv * sign
    raw.update(a=a, a_shape=shape)
    k = np.minimum(shape[:, 0], shape[:, 1])
    _put(raw, "s", s, _shape(k, 1))
    if full:
        _put(raw, "U", u, _shape(shape[:, 0], k))
        _put(raw, "V", v, _shape(shape[:, 1], k))


def _well_conditioned(cfg: GeneratorConfig, count: int, k: int, rng) -> np.ndarray:
    """``count`` rounded k x k matrices with condition number <= max_cond (rejection)."""
    out = np.empty((count, k, k))
    filled, drawn, accepted = 0, 0, 0
    for _ in range(MAX_REJECTION_ROUNDS):
        need = count - filled
        rate = max(accepted / drawn, 1e-3) if drawn else 1.0
        size = min(int(need / rate * 1.1) + 8, 100 * need + 1000)
        m = round_sig3(coefficients(cfg.laws[0], (size, k, k), cfg.scale, rng))
        sv = np.linalg.svd(m, compute_uv=False)
        ok = np.flatnonzero(sv[:, 0] <= cfg.max_cond * sv[:, -1])
        drawn, accepted = drawn + size, accepted + len(ok)
        take = ok[:need]
        out[filled : filled + len(take)] = m[take]
        filled += len(take)
        if filled == count:
            return out
    raise ConfigError(
        f"max_cond: only {accepted} of {drawn} random {k}x{k} matrices have a condition number "
        f"<= {cfg.max_cond:g}, too few to fill a batch of {count}; raise max_cond"
    )


def _sample_inverse(cfg: GeneratorConfig, raw: RawBatch, shape, rng) -> None:
    n, d = len(shape), cfg.hi
    a = np.zeros((n, d, d))
    inv = np.zeros((n, d, d))
    for (k, _), idx in _groups(shape):
        count = n if isinstance(idx, slice) else len(idx)
        m = _well_conditioned(cfg, count, k, rng)
        a[idx, :k, :k] = m
        inv[idx, :k, :k] = np.linalg.inv(m)
    raw.update(a=a, a_shape=shape)
    _put(raw, "inverse", inv, shape.copy())


def _add_noise(cfg: GeneratorConfig, spec: OpSpec, raw: RawBatch, rng) -> None:
    std = cfg.noise * cfg.scale / np.sqrt(3.0)
    for key in ("a", "b")[: len(spec.operands)]:
        clean = raw[key]
        noise = rng.normal(0.0, std, clean.shape)
        if spec.eigen:
            noise = np.tril(noise) + np.swapaxes(np.tril(noise, -1), 1, 2)
        noise *= _mask(raw[f"{key}_shape"], clean.shape[1], clean.shape[2])
        raw[f"{key}_clean"] = clean
        raw[key] = round_sig3(clean + noise)
