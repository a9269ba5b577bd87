"""Equivalence verdicts: the spec's traps, the numeric fallback (tolerances, seeds, too few
points), primitives up to a constant and ODE solutions by substitution (paper examples)."""

import time

import numpy as np
import pytest
import sympy as sp

from synthmath.expressions import equivalence as eq
from synthmath.expressions import sympy_bridge as sb

x = sp.Symbol("x")
c, c1, c2 = sp.symbols("c c1 c2")
Y = sp.Function("Y")(x)
DY, D2Y = sp.Derivative(Y, x), sp.Derivative(Y, (x, 2))


def tree(text: str) -> tuple[str, ...]:
    return tuple(text.split())


@pytest.fixture
def no_simplify(monkeypatch):
    """SymPy's simplify always times out: only the numeric step can decide."""

    def slow(e):
        time.sleep(5)
        return e

    monkeypatch.setattr(sb.sp, "simplify", slow)


def test_verdict_values():
    assert eq.Verdict("equal", "").symbolic and eq.Verdict("equal", "").correct
    assert eq.Verdict("numeric_equal", "").correct and not eq.Verdict("numeric_equal", "").symbolic
    assert not eq.Verdict("different", "").correct and not eq.Verdict("unknown", "").correct
    with pytest.raises(ValueError, match="verdict must be one of"):
        eq.Verdict("same", "")


# ---- the known traps --------------------------------------------------------------------------
def test_identical_trees_are_equal():
    v = eq.equivalent(x * sp.log(c / x), x * sp.log(c / x))
    assert v.verdict == "equal" and "identical" in v.evidence


def test_pythagoras_is_equal_by_simplify():
    v = eq.equivalent(sp.sin(x) ** 2 + sp.cos(x) ** 2, sp.Integer(1))
    assert v.verdict == "equal" and "simplifies to 0" in v.evidence


def test_sqrt_of_square_is_not_x():
    v = eq.equivalent(sp.sqrt(x**2), x)
    assert v.verdict == "different" and "x=-" in v.evidence


def test_log_of_square_agrees_where_both_are_real():
    # without assumptions SymPy keeps log(x**2) - 2*log(x); for x < 0, 2*log(x) is not real
    # (NaN in float64) and those points are skipped: the verdict is numeric_equal
    v = eq.equivalent(sp.log(x**2), 2 * sp.log(x))
    assert v.verdict == "numeric_equal", v.evidence


def test_constant_difference_is_different():
    v = eq.equivalent(x**2 + sp.sin(x) ** 2, x**2 - sp.cos(x) ** 2)
    assert v.verdict == "different" and "constant 1" in v.evidence
    assert eq.equivalent(sp.exp(x) + 1, sp.exp(x)).verdict == "different"


def test_huge_cancellation_needs_the_relative_tolerance(no_simplify):
    big = sp.Integer(10) ** 12
    a = big * sp.sin(x) ** 2 + big * sp.cos(x) ** 2 + x
    b = big + x
    assert eq.equivalent(a, b, timeout_s=0.05).verdict == "numeric_equal"
    ta, tb = sb.from_sympy(a), sb.from_sympy(b)
    assert eq.numeric_compare(ta, tb).verdict == "numeric_equal"
    # rounding of 1e12 * (sin^2 + cos^2) is ~1e-4 in absolute terms: atol alone fails
    assert eq.numeric_compare(ta, tb, rtol=0.0).verdict == "different"


def test_huge_cancellation_symbolically():
    a = sp.expand((x + 1) ** 12)
    assert eq.equivalent(a, (x + 1) ** 12).verdict == "equal"
    # a perturbation far below the tolerances: not equal symbolically, equal numerically
    assert eq.equivalent(a + x**13 * 1e-30, (x + 1) ** 12).verdict == "numeric_equal"


def test_ill_conditioned_float_misses_are_rechecked_precisely(monkeypatch):
    # tan of a degree-7 polynomial near 1e8: float64 rounding of the expanded form moves tan
    a = sb.from_sympy(sp.tan((x - 15) ** 7))
    b = sb.from_sympy(sp.tan(sp.expand((x - 15) ** 7)))
    v = eq.numeric_compare(a, b)
    assert v.verdict == "numeric_equal" and "refuted at 30 digits" in v.evidence
    wrong = sb.from_sympy(sp.tan(sp.expand((x - 15) ** 7) + sp.Rational(1, 1000)))
    assert eq.numeric_compare(a, wrong).verdict == "different"
    monkeypatch.setattr(eq, "MAX_RECHECKS", 0)
    assert eq.numeric_compare(a, b).verdict == "different"


def test_numeric_fallback_decides_when_simplify_times_out(no_simplify):
    start = time.monotonic()
    assert eq.equivalent(
        sp.sin(x) ** 2 + sp.cos(x) ** 2, sp.Integer(1), timeout_s=0.05
    ).verdict == ("numeric_equal")
    assert eq.equivalent(sp.sin(2 * x), 2 * sp.sin(x), timeout_s=0.05).verdict == "different"
    assert time.monotonic() - start < 2


def test_too_few_finite_points_is_unknown(no_simplify):
    v = eq.equivalent(sp.asin(x + 5), sp.acos(x + 5), timeout_s=0.05)
    assert v.verdict == "unknown" and "finite points" in v.evidence


def test_unknown_function_is_unknown_numerically(no_simplify):
    v = eq.equivalent(x * DY + Y, DY * x, timeout_s=0.05)
    assert v.verdict == "unknown" and "Y" in v.evidence


def test_unsupported_heads_cannot_be_checked_numerically(no_simplify):
    v = eq.equivalent(sp.erf(x), sp.erf(x) + sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1, timeout_s=0.05)
    assert v.verdict == "unknown"


def test_constants_are_sampled_like_variables():
    assert eq.equivalent(c * sp.exp(x) * 2, 2 * c * sp.exp(x)).verdict == "equal"
    ta, tb = sb.from_sympy(c * sp.exp(x)), sb.from_sympy(c1 * sp.exp(x))
    assert eq.numeric_compare(ta, tb).verdict == "different"


def test_points_are_seeded_by_the_pair():
    ta, tb = sb.from_sympy(sp.sqrt(x**2)), sb.from_sympy(x)
    first, again = eq.numeric_compare(ta, tb), eq.numeric_compare(ta, tb)
    assert first == again
    assert eq.stable_seed(ta, tb) != eq.stable_seed(tb, ta)
    other = [eq.numeric_compare(ta, tb, seed=s).evidence for s in range(3)]
    assert len(set(other)) > 1


def test_sample_points_range():
    env = eq.sample_points(["x", "c"], 1000, np.random.default_rng(0))
    for values in env.values():
        assert np.all((np.abs(values) >= 0.1) & (np.abs(values) <= 3.1))
        assert 0.4 < np.mean(values > 0) < 0.6


def test_min_points_and_tolerances_are_parameters():
    ta, tb = sb.from_sympy(x), sb.from_sympy(x * (1 + sp.Float(1e-8)))
    assert eq.numeric_compare(ta, tb).verdict == "numeric_equal"
    assert eq.numeric_compare(ta, tb, rtol=1e-10).verdict == "different"
    t_log = sb.from_sympy(sp.log(x))
    assert eq.numeric_compare(t_log, t_log, min_points=21).verdict == "unknown"


# ---- primitives ------------------------------------------------------------------------------
def test_primitive_up_to_a_constant():
    assert eq.verify_primitive(sp.sin(x) + 5, sp.cos(x)).verdict == "equal"
    assert eq.verify_primitive(x * sp.exp(x) - sp.exp(x) + 3, x * sp.exp(x)).verdict == "equal"
    assert eq.verify_primitive(sp.log(x**2) / 2, 1 / x).verdict == "equal"


def test_wrong_primitive_is_different():
    assert eq.verify_primitive(x**2, x).verdict == "different"
    assert eq.verify_primitive(x * sp.exp(x), x * sp.exp(x)).verdict == "different"


def test_primitive_numeric_fallback(no_simplify):
    F = sp.atan(x) + sp.log(sp.sin(2 * x) / (sp.sin(x) * sp.cos(x)))  # log 2
    v = eq.verify_primitive(F, 1 / (1 + x**2), timeout_s=2.0)
    assert v.verdict == "numeric_equal", v.evidence


def test_primitives_with_abs_and_sign_use_real_forms():
    # SymPy differentiates Abs(x) through re(x) and im(x): evaluated as real numbers
    derivative = sp.diff(x * sp.Abs(x), x)
    assert derivative.has(sp.re) and eq.real_forms(derivative) == x * sp.sign(x) + sp.Abs(x)
    assert eq.verify_primitive(x * sp.Abs(x), 2 * sp.Abs(x)).correct
    assert eq.verify_primitive(x * sp.Abs(x), 2 * x).verdict == "different"
    assert eq.real_forms(sp.Heaviside(x)) == (1 + sp.sign(x)) / 2
    assert eq.real_forms(sp.diff(sp.sign(x) * x, x)) == sp.sign(x)


# ---- ODE solutions ---------------------------------------------------------------------------
def test_paper_ode1_example():
    equation = x * DY - Y + x
    assert eq.verify_ode(x * sp.log(c / x), equation).verdict == "equal"
    assert eq.verify_ode(x * sp.log(c * x), equation).verdict == "different"


def test_paper_ode2_example():
    equation = D2Y - Y
    assert eq.verify_ode(c1 * sp.exp(x) + c2 * sp.exp(-x), equation).verdict == "equal"
    assert eq.verify_ode(c1 * sp.sinh(x) + c2 * sp.cosh(x), equation).verdict == "equal"
    assert eq.verify_ode(c1 * sp.exp(x) + c2 * sp.exp(-2 * x), equation).verdict == "different"


def test_ode_numeric_fallback(no_simplify):
    # the limit also bounds the substitution (diff, doit): 0.05 s failed once on a cold CI run
    v = eq.verify_ode(x * sp.log(c / x), x * DY - Y + x, timeout_s=0.5)
    assert v.verdict == "numeric_equal", v.evidence  # points with c/x < 0 are skipped
    v = eq.verify_ode(c1 * sp.exp(x) + c2 * sp.exp(-x), D2Y - Y, timeout_s=0.5)
    assert v.verdict == "numeric_equal", v.evidence
    v = eq.verify_ode(c1 * sp.exp(x) + c2 * sp.exp(-x) + x, D2Y - Y, timeout_s=0.5)
    assert v.verdict == "different" and "x=" in v.evidence  # the residual is -x


def test_ode_with_abs_in_the_solution():
    # y = c*Abs(x) solves x y' - y = 0 (for x != 0)
    assert eq.verify_ode(c * sp.Abs(x), x * DY - Y).correct


def test_substitute_solution_replaces_derivatives_first():
    residual = eq.substitute_solution(x**3, D2Y + DY + Y)
    assert sp.expand(residual) == 6 * x + 3 * x**2 + x**3


def test_grid_residual_fraction():
    ok = eq.substitute_solution(x * sp.log(c / x), x * DY - Y + x)
    assert eq.grid_residual_fraction(ok) == 0.5  # log(c/x) is NaN where c/x < 0
    residual = sp.log(c * x) - sp.log(c) - sp.log(x)  # 0 where c > 0 and x > 0
    assert eq.grid_residual_fraction(residual) == pytest.approx(0.25)
    assert eq.grid_residual_fraction(sp.log(x) - 1) == 0.0
    assert eq.grid_residual_fraction(sp.Integer(0)) == 1.0
    assert eq.grid_residual_fraction(x + c + c1 + c2) is None  # more than 3 symbols
    assert eq.grid_residual_fraction(sp.erf(x)) is None
