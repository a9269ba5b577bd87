"""Linear PDEs d_t u + P(d) u = 0 with an initial condition u_0 (``pde``, differential.md).

Operator: a polynomial in d_0..d_(n-1) with n..2n+2 terms, each a product of 1-4 factors
from {d_i, d_i^2, d_i^4} and an integer coefficient +-[1, 10]; its symbol f(xi) = P(2 pi i xi)
has the real part Re f(xi) = sum over the terms of even total degree K of
c (-1)^(K/2) (2 pi)^K prod xi_i^(k_i) (odd degrees are imaginary). u_0 = prod_j g_j(a_j x_j)
with g in {1, sinc, delta, Gaussian} and a in [-100, 99] \\ {0}, times up to 2n modulations
exp(i b x_k). Frequency support per coordinate: 1 -> {0}, sinc(a x) -> [-|a|/2pi, |a|/2pi],
delta and Gaussian -> R, each modulation shifts coordinate k by b/2pi (CONFIRMED, released).

m = inf of Re f over the support box: m = -inf -> no solution (exists 0, vanishes 0); finite
m < 0 -> (1, 0); m >= 0 -> (1, 1). The released labeller is one SciPy TNC run from 0.5
(m < -1e14 read as -inf); ours adds seeded starts and rays along the unbounded coordinates,
and reads -inf only where the values keep falling going outwards (x10, x100): a finite
minimum can be deeper than -1e14 (-8e36 occurs), which the released rule calls -inf. These
are numbers, not proofs; both labels are kept (their disagreement is spec study 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

FUNCTIONS = ("one", "sinc", "delta0", "gauss")
POWERS = (1, 2, 4)
MINUS_INF = -1e14
#: m above -NEGATIVE_TOL counts as >= 0 (rounding of a minimum that is exactly 0)
NEGATIVE_TOL = 1e-9
STARTS = 8
RAY = 1e5


@dataclass(frozen=True)
class Pde:
    n: int
    terms: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]  # (coefficient, ((i, power)..))
    functions: tuple[tuple[str, int], ...]  # per coordinate (g, a)
    modulations: tuple[tuple[int, int], ...]  # (coordinate, b)

    def real_symbol(self) -> tuple[np.ndarray, np.ndarray]:
        """(coefficients (T,), exponents (T, n)) of the polynomial Re f."""
        coefs, exps = [], []
        for c, factors in self.terms:
            e = np.zeros(self.n, dtype=np.int64)
            for i, k in factors:
                e[i] += k
            total = int(e.sum())
            if total % 2 == 0:
                coefs.append(c * (-1) ** (total // 2) * (2 * np.pi) ** total)
                exps.append(e)
        if not coefs:
            return np.zeros(1), np.zeros((1, self.n), dtype=np.int64)
        return np.array(coefs, dtype=float), np.array(exps)

    def support(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) bounds of the frequency support per coordinate (+-inf allowed)."""
        lo, hi = np.zeros(self.n), np.zeros(self.n)
        for j, (g, a) in enumerate(self.functions):
            if g == "sinc":
                lo[j], hi[j] = -abs(a) / (2 * np.pi), abs(a) / (2 * np.pi)
            elif g in ("delta0", "gauss"):
                lo[j], hi[j] = -np.inf, np.inf
        for k, b in self.modulations:
            lo[k] += b / (2 * np.pi)
            hi[k] += b / (2 * np.pi)
        return lo, hi


def sample_pde(n: int, rng: np.random.Generator) -> Pde:
    """A random operator and initial condition in n space dimensions (module docstring)."""
    terms = []
    for _ in range(int(rng.integers(n, 2 * n + 3))):
        c = int(rng.integers(1, 11)) * int(rng.choice([-1, 1]))
        factors = tuple(
            (int(rng.integers(n)), int(rng.choice(POWERS))) for _ in range(int(rng.integers(1, 5)))
        )
        terms.append((c, factors))
    functions = []
    for _ in range(n):
        a = int(rng.integers(1, 101)) * int(rng.choice([-1, 1]))
        functions.append((str(rng.choice(FUNCTIONS)), min(a, 99)))
    modulations = tuple(
        (int(rng.integers(n)), int(rng.integers(-100, 100)))
        for _ in range(int(rng.integers(0, 2 * n + 1)))
    )
    return Pde(n, tuple(terms), tuple(functions), modulations)


def _polynomial(coefs: np.ndarray, exps: np.ndarray):
    def value(x: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            return float(coefs @ np.prod(x[None, :] ** exps, axis=1))

    def grad(x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x))
        with np.errstate(all="ignore"):
            for i in range(len(x)):
                e = exps.copy()
                mask = e[:, i] > 0
                e[mask, i] -= 1
                out[i] = (coefs[mask] * exps[mask, i]) @ np.prod(x[None, :] ** e[mask], axis=1)
        return out

    return value, grad


def _run(value, grad, start: np.ndarray, bounds) -> tuple[float, np.ndarray] | None:
    with np.errstate(all="ignore"):
        res = minimize(value, start, jac=grad, method="TNC", bounds=bounds)
    return (float(res.fun), res.x) if res.success and np.isfinite(res.fun) else None


def _diverges(value, centre: np.ndarray, x: np.ndarray, lo, hi) -> bool:
    """Whether the values keep falling below -1e14 going out along centre -> x (x10, x100):
    a deep finite minimum (-8e36 occurs) is not -inf."""
    points = [np.clip(centre + s * (x - centre), lo, hi) for s in (1.0, 10.0, 100.0)]
    values = [value(p) for p in points]
    return values[2] < MINUS_INF and values[1] < values[0] and values[2] < values[1]


def minimum(pde: Pde, rng: np.random.Generator | None = None) -> tuple[float | None, float | None]:
    """(m of the released single-start labeller, m of ours); None where the run failed;
    -inf below -1e14."""
    coefs, exps = pde.real_symbol()
    lo, hi = pde.support()
    fixed = lo == hi
    free = ~fixed
    base = np.where(fixed, lo, 0.0)
    if not free.any():
        m = float(_polynomial(coefs, exps)[0](base))
        return m, m
    full_value, full_grad = _polynomial(coefs, exps)

    def value(y):
        x = base.copy()
        x[free] = y
        return full_value(x)

    def grad(y):
        x = base.copy()
        x[free] = y
        return full_grad(x)[free]

    bounds = [(None if np.isinf(a) else a, None if np.isinf(b) else b)
              for a, b in zip(lo[free], hi[free])]  # fmt: skip
    flo, fhi = lo[free], hi[free]
    start = np.clip(np.full(int(free.sum()), 0.5), flo, fhi)
    first = _run(value, grad, start, bounds)
    single = None if first is None else (-np.inf if first[0] < MINUS_INF else first[0])
    rng = rng or np.random.default_rng(0)
    centre = np.clip(np.zeros(int(free.sum())), flo, fhi)
    runs = [] if first is None else [first]
    box_lo, box_hi = np.maximum(flo, -3.0), np.minimum(fhi, 3.0)
    box_lo, box_hi = np.minimum(box_lo, box_hi), np.maximum(box_lo, box_hi)
    for _ in range(STARTS - 1):
        got = _run(value, grad, rng.uniform(box_lo, box_hi), bounds)
        if got is not None:
            runs.append(got)
    found = [-np.inf if _diverges(value, centre, x, flo, fhi) else fun for fun, x in runs]
    unbounded = np.isinf(flo) | np.isinf(fhi)
    if unbounded.any():
        axes = np.eye(len(centre))
        directions = [axes[i] * s for i in np.flatnonzero(unbounded) for s in (1, -1)]
        directions += list(rng.normal(size=(4, len(centre))) * unbounded)
        for d in directions:
            x = np.clip(centre + RAY * d, flo, fhi)
            found.append(-np.inf if _diverges(value, centre, x, flo, fhi) else value(x))
    found = [v for v in found if not np.isnan(v)]
    return single, (min(found) if found else None)


def labels_of(m: float) -> tuple[bool, bool]:
    """(exists, vanishes) of the infimum m."""
    if m == -np.inf:
        return False, False
    return True, m >= -NEGATIVE_TOL


def pde_tokens(pde: Pde) -> list[str]:
    """Model tokens: ``<OP>``, the operator in prefix (``x_i`` standing for d_i), ``<U0>``,
    the initial condition (``mul`` of ``g INT a x_j`` and ``exp I INT b x_k`` factors)."""
    out = ["<OP>"]
    for t, (c, factors) in enumerate(pde.terms):
        if t < len(pde.terms) - 1:
            out.append("add")
        out += ["mul", *_int(c)]
        for f, (i, k) in enumerate(factors):
            if f < len(factors) - 1:
                out.append("mul")
            out += ([] if k == 1 else [f"pow{k}"]) + [f"x_{i}"]
    out.append("<U0>")
    factors = [[g, *_int(a), f"x_{j}"] for j, (g, a) in enumerate(pde.functions)]
    factors += [["exp", "I", *_int(b), f"x_{k}"] for k, b in pde.modulations]
    for f, tokens in enumerate(factors):
        if f < len(factors) - 1:
            out.append("mul")
        out += tokens
    return out


#: source tokens of the PDE inputs beyond the expression vocabulary
PDE_TOKENS = ("<OP>", "<U0>", "one", "sinc", "delta0", "gauss", "I")


def pde_json(raw: dict, i: int) -> dict:
    """Example i of a pde batch as plain values (infinities as null)."""
    tokens = str(raw["system"][i]).split()
    m = float(raw["minimum"][i])
    agrees = int(raw["released_agrees"][i])
    return {
        "problem": {
            "tokens": [f"V{int(raw['n_eq'][i])}", *tokens],
            "dimension": int(raw["n_eq"][i]),
        },
        "answer": {
            "exists": bool(raw["exists"][i]),
            "vanishes": bool(raw["vanishes"][i]),
            "minimum": None if np.isinf(m) else m,
            "released_labeller": None if agrees < 0 else bool(agrees),
        },
    }


def _int(value: int) -> list[str]:
    return ["INT-" if value < 0 else "INT+", *str(abs(value))]
