"""Truncated Taylor series in t: the fast path of ``control_t`` (differential.md allows it if
it matches SymPy on a test sample; tests/tasks/differential/test_timevarying.py checks that).

Each equation's program is evaluated on power series in s = t - t_k truncated at order m, for
every time t_k at once, with complex coefficients: a state or control perturbed by the
complex step i h gives, in the imaginary parts / h, the Taylor coefficients of its partial
derivative A_ij(t) or B_ij(t) around t_k (every operation is analytic). The released
recursion D_(i+1) = dD_i/dt - A D_i then runs on matrix series (each derivative loses one
order, so m = floor(2n/p) steps leave the constant terms D_i(t_k) exact to rounding).

Real mode, as the autonomous problems: at a time where a subexpression leaves its real
domain (ln or sqrt of a number <= 0, asin/acos beyond +-1, a zero divisor) or is not finite,
that time is unusable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmath.expressions import numeric
from synthmath.expressions.operators import Tree
from synthmath.tasks.differential.labels import RANK_TOL
from synthmath.tasks.differential.systems import control_names, state_names

H = 1e-20
TIMES = (0.19, 0.39, 0.59, 0.79, 0.99)


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a * b[:1])
    for k in range(len(a)):
        out[k] = (a[: k + 1] * b[k::-1]).sum(axis=0)
    return out


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a * b[:1])
    for k in range(len(a)):
        out[k] = (a[k] - (b[1 : k + 1] * out[k - 1 :: -1][:k]).sum(axis=0)) / b[0]
    return out


def _exp(a: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a)
    out[0] = np.exp(a[0])
    j = np.arange(len(a)).reshape(-1, *([1] * (a.ndim - 1)))
    for k in range(1, len(a)):
        out[k] = (j[1 : k + 1] * a[1 : k + 1] * out[k - 1 :: -1][:k]).sum(axis=0) / k
    return out


def _ln(a: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a)
    out[0] = np.log(a[0])
    j = np.arange(len(a)).reshape(-1, *([1] * (a.ndim - 1)))
    for k in range(1, len(a)):
        acc = (j[1:k] * out[1:k] * a[k - 1 : 0 : -1]).sum(axis=0) if k > 1 else 0
        out[k] = (a[k] - acc / k) / a[0]
    return out


def _sqrt(a: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a)
    out[0] = np.sqrt(a[0])
    for k in range(1, len(a)):
        acc = (out[1:k] * out[k - 1 : 0 : -1]).sum(axis=0) if k > 1 else 0
        out[k] = (a[k] - acc) / (2 * out[0])
    return out


def _sincos(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, c = np.zeros_like(a), np.zeros_like(a)
    s[0], c[0] = np.sin(a[0]), np.cos(a[0])
    j = np.arange(len(a)).reshape(-1, *([1] * (a.ndim - 1)))
    for k in range(1, len(a)):
        ja = j[1 : k + 1] * a[1 : k + 1]
        s[k] = (ja * c[k - 1 :: -1][:k]).sum(axis=0) / k
        c[k] = -(ja * s[k - 1 :: -1][:k]).sum(axis=0) / k
    return s, c


def _derivative(a: np.ndarray) -> np.ndarray:
    """d/ds, the top coefficient unknown (set to 0: one order of validity lost)."""
    out = np.zeros_like(a)
    j = np.arange(1, len(a)).reshape(-1, *([1] * (a.ndim - 1)))
    out[:-1] = j * a[1:]
    return out


def _integral(q: np.ndarray, a0: np.ndarray) -> np.ndarray:
    out = np.zeros_like(q)
    out[0] = a0
    j = np.arange(1, len(q)).reshape(-1, *([1] * (q.ndim - 1)))
    out[1:] = q[:-1] / j
    return out


def _one(a: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a)
    out[0] = 1.0
    return out


def _unary(name: str, a: np.ndarray, ok: np.ndarray) -> np.ndarray:
    x = a[0].real
    if name == "exp":
        return _exp(a)
    if name == "ln":
        ok &= x > 0
        return _ln(a)
    if name == "sqrt":
        ok &= x > 0
        return _sqrt(a)
    if name in ("sin", "cos", "tan"):
        s, c = _sincos(a)
        if name == "tan":
            ok &= c[0].real != 0
            return _div(s, c)
        return s if name == "sin" else c
    if name == "atan":
        return _integral(_div(_derivative(a), _one(a) + _mul(a, a)), np.arctan(a[0]))
    if name in ("asin", "acos"):
        ok &= np.abs(x) < 1
        q = _div(_derivative(a), _sqrt(_one(a) - _mul(a, a)))
        if name == "asin":
            return _integral(q, np.arcsin(a[0]))
        return _integral(-q, np.arccos(a[0]))
    raise ValueError(f"taylor: operator {name!r} is not supported")


def _pow(a: np.ndarray, b: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """a^b: repeated products for a constant integer exponent, else exp(b ln a) (a > 0)."""
    e = b[0].real.ravel()[0] if b.size else 0.0
    if not b[1:].any() and (b[0] == e).all() and float(e).is_integer() and abs(e) <= 64:
        out = _one(a)
        for _ in range(int(abs(e))):
            out = _mul(out, a)
        if e < 0:
            ok &= a[0].real != 0
            out = _div(_one(a), out)
        return out
    ok &= a[0].real > 0
    return _exp(_mul(b, _ln(a)))


def evaluate(program: numeric.Program, env: dict[str, np.ndarray], order: int) -> tuple:
    """``(series (order + 1, *batch) complex, ok (*batch) bool)`` of the program on the
    series of ``env`` (each ``(order + 1, *batch)``)."""
    shape = next(iter(env.values())).shape if env else (order + 1,)
    ok = np.ones(shape[1:], dtype=bool)
    stack: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for kind, value in program.steps:
            if kind == "const":
                series = np.zeros(shape, dtype=np.complex128)
                series[0] = value
                stack.append(series)
            elif kind == "var":
                stack.append(env[value])
            elif value == "pow":
                b, a = stack.pop(), stack.pop()
                stack.append(_pow(a, b, ok))
            elif value in ("add", "sub", "mul", "div"):
                b, a = stack.pop(), stack.pop()
                if value == "div":
                    ok &= b[0].real != 0
                fn = {"add": np.add, "sub": np.subtract, "mul": _mul, "div": _div}[value]
                stack.append(fn(a, b))
            else:
                stack.append(_unary(value, stack.pop(), ok))
            ok &= np.isfinite(stack[-1]).all(axis=0)
    return stack[-1], ok


def time_varying_rank_taylor(
    equations: Sequence[Tree], n: int, p: int, point: float = 0.5, times: Sequence[float] = TIMES
) -> int | None:
    """The largest rank of [D_0 .. D_k] over ``times`` (None: undefined at every time)."""
    stacked, usable = krylov_values(equations, n, p, point, times)
    best = None
    for i in np.flatnonzero(usable):
        rank = int(np.count_nonzero(np.linalg.svd(stacked[i], compute_uv=False) > RANK_TOL))
        best = rank if best is None else max(best, rank)
    return best


def krylov_values(
    equations: Sequence[Tree], n: int, p: int, point: float = 0.5, times: Sequence[float] = TIMES
) -> tuple[np.ndarray, np.ndarray]:
    """``([D_0 .. D_k] at each time (times, n, p (k + 1)), usable (times,))``."""
    steps = (2 * n) // p
    m = steps + 1
    variables = state_names(n) + control_names(p)
    k = len(variables)
    # batch (time, perturbed variable)
    env = {}
    for j, v in enumerate(variables):
        series = np.zeros((m, len(times), k), dtype=np.complex128)
        series[0] = point
        series[0, :, j] += 1j * H
        env[v] = series
    t = np.zeros((m, len(times), k), dtype=np.complex128)
    t[0] = np.asarray(times)[:, None]
    t[1] = 1.0
    env["t"] = t
    jac = np.zeros((m, len(times), n, k))
    usable = np.ones(len(times), dtype=bool)
    for i, tree in enumerate(equations):
        series, ok = evaluate(numeric.compile(tree), env, m - 1)
        jac[:, :, i, :] = series.imag / H
        usable &= ok.all(axis=1)
    a, d = jac[..., :n], jac[..., n:]
    blocks = [d]
    for _ in range(steps):
        prod = np.zeros_like(d)
        for order in range(m):
            prod[order] = sum(a[j] @ d[order - j] for j in range(order + 1))
        d = _derivative(d) - prod
        blocks.append(d)
    stacked = np.concatenate([b[0] for b in blocks], axis=-1)  # (times, n, p (steps + 1))
    return stacked, usable & np.isfinite(stacked).all(axis=(1, 2))
