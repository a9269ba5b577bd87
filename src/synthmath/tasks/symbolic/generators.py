"""The generators by problem name, and one attempt under its time limit.

The five generators of Lample & Charton (2019): integration (FWD, BWD, IBP) and ODEs.

Each generator makes *one attempt* from a seeded rng and returns an :class:`Example` or the
reason it rejected the attempt (a short string, counted by the caller). The caller runs each
attempt under its time limit (:data:`TIMEOUTS`, the released values) and retries; inner
simplifications have their own 1-2 s caps and fall back to the unsimplified form.

Conventions (specs/symbolic.md): integration pairs are (integrand f, primitive F) with no
integration constant; ODE pairs are (the expression that vanishes, in ``x``, ``Y``, ``Y'``,
``Y''``; the solution, with the constants ``c`` or ``c1``/``c2``). While solving for the
constants, y, y' and y'' are plain symbols named ``Y``, ``Y'``, ``Y''`` and derivatives are
taken with the chain rule, so the equation converts to raw leaves directly.
"""

from __future__ import annotations

import numpy as np

from synthmath.expressions.errors import TimeoutExpired
from synthmath.expressions.workers import time_limit
from synthmath.tasks.symbolic.integration import gen_prim_bwd, gen_prim_fwd, gen_prim_ibp
from synthmath.tasks.symbolic.odes import gen_ode1, gen_ode2
from synthmath.tasks.symbolic.robustness import gen_robust_coeff, gen_robust_exp, gen_robust_poly
from synthmath.tasks.symbolic.steps import SYMPY_ERRORS, Example, GenConfig

#: the paper's problems, then the robustness test sets after Welleck et al. (2022)
PROBLEMS = (
    "prim_fwd", "prim_bwd", "prim_ibp", "ode1", "ode2",
    "robust_poly", "robust_exp", "robust_coeff",
)  # fmt: skip
#: per-attempt time limits of the released code (seconds)
TIMEOUTS = {
    "prim_fwd": 3.0, "prim_bwd": 5.0, "prim_ibp": 8.0, "ode1": 8.0, "ode2": 8.0,
    "robust_poly": 5.0, "robust_exp": 5.0, "robust_coeff": 5.0,
}  # fmt: skip


GENERATORS = {
    "prim_fwd": gen_prim_fwd,
    "prim_bwd": gen_prim_bwd,
    "prim_ibp": gen_prim_ibp,
    "ode1": gen_ode1,
    "ode2": gen_ode2,
    "robust_poly": gen_robust_poly,
    "robust_exp": gen_robust_exp,
    "robust_coeff": gen_robust_coeff,
}


def attempt(problem: str, rng: np.random.Generator, cfg: GenConfig) -> tuple[Example | str, bool]:
    """One attempt under the problem's time limit: (example or rejection reason, timed out)."""
    try:
        with time_limit(TIMEOUTS[problem]):
            return attempt_unlimited(problem, rng, cfg), False
    except TimeoutExpired:
        return "timeout", True


def attempt_unlimited(problem: str, rng: np.random.Generator, cfg: GenConfig) -> Example | str:
    """One attempt without a time limit of its own (the caller's limit raises through):
    the example, or the reason it was rejected (SymPy's errors on corner cases included)."""
    try:
        return GENERATORS[problem](rng, cfg)
    except TimeoutExpired:
        raise
    except SYMPY_ERRORS as err:
        return f"sympy_{type(err).__name__}"
