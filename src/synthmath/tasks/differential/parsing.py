"""User-written equations of a differential system: infix text -> raw trees, through the
engine's own parser (:mod:`synthmath.expressions.infix`; nothing hands a string to SymPy or
Python).

Names: state variables ``x0``/``x_0``, controls ``u0``/``u_0`` (up to :data:`MAX_VARIABLES`
of each), time ``t``, the constants ``pi``, ``E`` and ``EulerGamma``; functions: the analytic
unary operators by their SymPy names (``sqrt exp log sin cos tan asin acos atan sinh ...``;
``ln`` and numpy's ``arcsin`` ... too), not abs or sign (their Jacobians are not analytic).
"""

from __future__ import annotations

import re

from synthmath.expressions import infix
from synthmath.expressions.operators import Tree
from synthmath.tasks.differential.systems import ANALYTIC

#: most state variables and most controls an equation may name (solve reads <= 50 equations)
MAX_VARIABLES = 50

_VARIABLES = {
    f"{head}{sep}{k}": f"{head}_{k}"
    for head in ("x", "u")
    for k in range(MAX_VARIABLES)
    for sep in ("", "_")
}
NAMES = infix.Names(
    {**_VARIABLES, "t": "t"},
    functions={name: op for name, op in infix.FUNCTIONS.items() if op in ANALYTIC},
)


def parse_infix(text: str) -> Tree:
    """The raw prefix tree of one equation; :class:`~synthmath.expressions.infix.InfixError`
    naming the cause."""
    return infix.parse_infix(text, NAMES)


def display_infix(infix_text: str) -> str:
    """The engine's infix (variables ``x_3``, ``u_1``) with the CLI's names ``x3``, ``u1``."""
    return re.sub(r"\b([xu])_(\d+)\b", r"\1\2", infix_text)
