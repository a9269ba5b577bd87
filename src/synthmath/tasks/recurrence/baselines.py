"""Classical recurrence finders, the offline analogues of Mathematica's FindLinearRecurrence
and FindSequenceFunction (specs/regression.md; INFERRED analogues).

- :func:`sympy_linear`: SymPy's ``find_linear_recurrence`` (constant coefficients) on the given
  terms, rolled forward exactly (``fractions.Fraction``).
- :func:`find_polynomial_recurrence`: sum_{k=0..r} P_k(n) u_(n-k) = 0 with polynomials P_k of
  degree <= p, found exactly: the null space of the linear system of the given terms in
  rational arithmetic, tried by increasing number of unknowns (r + 1)(p + 1) and accepted only
  when the system has at least ``margin`` more equations than unknowns (so the relation is a
  pattern of the data, not a fit of every list). Catalan: (n + 1) C(n) = (4n - 2) C(n - 1).

A baseline solves a sequence when its recurrence, found from the first ``n_given`` terms,
predicts the next ``n_predict`` exactly (:func:`evaluate_baselines`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp


def sympy_linear(terms: Sequence[int]) -> list[Fraction] | None:
    """Coefficients c_1..c_r of u_n = sum c_k u_(n-k) that SymPy finds for ``terms`` (None:
    none; SymPy tries orders up to half the terms, so any list of 2r terms has one)."""
    n = sp.Symbol("n")
    if len(terms) < 2:
        return None
    seq = sp.SeqPer(tuple(sp.Integer(t) for t in terms), (n, 0, len(terms) - 1))
    coeffs = seq.find_linear_recurrence(len(terms))
    if not coeffs:
        return None
    return [Fraction(int(sp.numer(c)), int(sp.denom(c))) for c in coeffs]


def roll_linear(coeffs: Sequence[Fraction], prefix: Sequence[int], count: int) -> list[Fraction]:
    seq = [Fraction(v) for v in prefix]
    for _ in range(count):
        seq.append(sum(c * seq[-k] for k, c in enumerate(coeffs, 1)))
    return seq[len(prefix) :]


@dataclass(frozen=True)
class PolyRecurrence:
    """sum_{k=0..order} P_k(n) u_(n-k) = 0; ``coeffs[k][j]`` is the n**j coefficient of P_k."""

    coeffs: tuple[tuple[Fraction, ...], ...]

    @property
    def order(self) -> int:
        return len(self.coeffs) - 1

    @property
    def degree(self) -> int:
        return len(self.coeffs[0]) - 1

    def poly(self, k: int, n: int) -> Fraction:
        return sum((c * n**j for j, c in enumerate(self.coeffs[k])), Fraction(0))

    def roll(self, prefix: Sequence, count: int) -> list[Fraction] | None:
        """The ``count`` terms after ``prefix`` (term i has n = i); None where P_0(n) = 0."""
        seq = [Fraction(v) for v in prefix]
        for _ in range(count):
            n = len(seq)
            lead = self.poly(0, n)
            if lead == 0:
                return None
            rest = sum(
                (self.poly(k, n) * seq[n - k] for k in range(1, self.order + 1)), Fraction(0)
            )
            seq.append(-rest / lead)
        return seq[len(prefix) :]

    def text(self) -> str:
        """Human-readable: ``(n + 1)*u_0 + (-4*n + 2)*u_1 = 0`` (u_k = u_(n-k))."""
        n = sp.Symbol("n")
        parts = []
        for k, row in enumerate(self.coeffs):
            p = sp.expand(
                sum(sp.Rational(c.numerator, c.denominator) * n**j for j, c in enumerate(row))
            )
            if p != 0:
                parts.append(f"({p})*u_{k}")
        return " + ".join(parts) + " = 0"


def find_polynomial_recurrence(
    terms: Sequence[int], max_order: int = 4, max_degree: int = 3, margin: int = 2
) -> PolyRecurrence | None:
    """The first relation (by number of unknowns, then order) that the terms satisfy with at
    least ``margin`` equations to spare, its leading polynomial P_0 not identically zero."""
    shapes = sorted(
        ((r, p) for r in range(1, max_order + 1) for p in range(max_degree + 1)),
        key=lambda rp: ((rp[0] + 1) * (rp[1] + 1), rp[0]),
    )
    values = [Fraction(t) for t in terms]
    for r, p in shapes:
        unknowns = (r + 1) * (p + 1)
        if len(terms) - r < unknowns + margin:
            continue
        rows = [
            [Fraction(n**j) * values[n - k] for k in range(r + 1) for j in range(p + 1)]
            for n in range(r, len(terms))
        ]
        for vector in _null_space(rows, unknowns):
            coeffs = tuple(tuple(vector[k * (p + 1) : (k + 1) * (p + 1)]) for k in range(r + 1))
            if any(coeffs[0]):
                return PolyRecurrence(_normalise(coeffs))
    return None


def _normalise(coeffs: tuple[tuple[Fraction, ...], ...]) -> tuple[tuple[Fraction, ...], ...]:
    """Scaled so that the leading coefficient of P_0 is 1."""
    lead = next(c for c in reversed(coeffs[0]) if c)
    return tuple(tuple(c / lead for c in row) for row in coeffs)


def _null_space(rows: list[list[Fraction]], width: int) -> list[list[Fraction]]:
    """A basis of {x : rows x = 0} (exact reduced row echelon form)."""
    m = [list(r) for r in rows]
    pivots: list[int] = []
    row = 0
    for col in range(width):
        pick = next((i for i in range(row, len(m)) if m[i][col] != 0), None)
        if pick is None:
            continue
        m[row], m[pick] = m[pick], m[row]
        inv = 1 / m[row][col]
        m[row] = [v * inv for v in m[row]]
        for i in range(len(m)):
            if i != row and m[i][col] != 0:
                f = m[i][col]
                m[i] = [a - f * b for a, b in zip(m[i], m[row])]
        pivots.append(col)
        row += 1
        if row == len(m):
            break
    free = [c for c in range(width) if c not in pivots]
    basis = []
    for f in free:
        x = [Fraction(0)] * width
        x[f] = Fraction(1)
        for i, c in enumerate(pivots):
            x[c] = -m[i][f]
        basis.append(x)
    return basis


def evaluate_baselines(sequences, n_given: int = 20, n_predict: int = 10) -> list[dict]:
    """Per sequence, whether each baseline predicts the next ``n_predict`` terms exactly from
    the first ``n_given``, and the recurrence it found (strict JSON values)."""
    rows = []
    for seq in sequences:
        terms = seq.terms(n_given + n_predict)
        given, target = terms[:n_given], terms[n_given:]
        linear = sympy_linear(given)
        lin_pred = roll_linear(linear, given, n_predict) if linear else None
        poly = find_polynomial_recurrence(given)
        poly_pred = poly.roll(given, n_predict) if poly else None
        rows.append(
            {
                "name": seq.name,
                "oeis": seq.oeis,
                "sympy_linear": lin_pred == target,
                "sympy_linear_order": len(linear) if linear else None,
                "polynomial": poly_pred == target,
                "polynomial_recurrence": poly.text() if poly else None,
            }
        )
    return rows


def score_baselines(task, raw) -> dict[str, list[bool]]:
    """Per example of an integer raw batch (e.g. ``family: classic``), whether each baseline
    predicts all the target terms exactly from the same given terms the model reads."""
    out: dict[str, list[bool]] = {"sympy_linear": [], "polynomial": []}
    for i in range(len(raw["terms"])):
        terms = task.terms(raw, i)
        n_input = int(raw["n_input"][i])
        given, target = terms[:n_input], terms[n_input:]
        linear = sympy_linear(given)
        out["sympy_linear"].append(
            bool(linear) and roll_linear(linear, given, len(target)) == target
        )
        poly = find_polynomial_recurrence(given)
        out["polynomial"].append(poly is not None and poly.roll(given, len(target)) == target)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m synthmath.tasks.recurrence.baselines [N_GIVEN]``: the classic sequences'
    table (N_GIVEN terms given, default 20; the next 10 predicted)."""
    import sys

    from synthmath.tasks.recurrence.known import classic_sequences

    args = list(sys.argv[1:] if argv is None else argv)
    n_given = int(args[0]) if args else 20
    print(f"| sequence | OEIS | SymPy linear | polynomial coefficients | found ({n_given} terms) |")
    print("|---|---|---|---|---|")
    for r in evaluate_baselines(classic_sequences(), n_given):
        found = r["polynomial_recurrence"] or "-"
        mark = {True: "yes", False: "no"}
        print(
            f"| {r['name']} | {r['oeis']} | {mark[r['sympy_linear']]} | "
            f"{mark[r['polynomial']]} | {found} |"
        )


if __name__ == "__main__":
    main()
