"""Numeric evaluation of raw trees over numpy arrays of points.

:func:`compile` turns a tree into a :class:`Program` (the nodes in postfix order); calling it
with an environment ``{variable: array}`` evaluates the expression at every point at once,
under ``np.errstate(all="ignore")``: domain errors give NaN (ln of a negative number, asin
outside [-1, 1], a negative base to a non-integer power), poles give +-inf, overflow inf.
Batch evaluation groups points, not expressions: one program per expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from synthmath.expressions.operators import (
    CONSTANTS,
    OPERATORS,
    Tree,
    is_float,
    is_int,
    is_variable,
)


@dataclass(frozen=True)
class Program:
    """A compiled expression: ``steps`` in postfix order, each ``("op", name)``,
    ``("var", name)`` or ``("const", value)``."""

    steps: tuple[tuple[str, object], ...]
    variables: frozenset[str]

    def __call__(self, env: Mapping[str, np.ndarray], dtype=np.float64) -> np.ndarray:
        """The values at the points of ``env`` (arrays broadcast together)."""
        missing = self.variables - set(env)
        if missing:
            raise KeyError(f"no values for the variables {', '.join(sorted(missing))}")
        arrays = {k: np.asarray(v, dtype=dtype) for k, v in env.items() if k in self.variables}
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values())) if arrays else ()
        stack: list[np.ndarray] = []
        with np.errstate(all="ignore"):
            for kind, value in self.steps:
                if kind == "const":
                    stack.append(np.full(shape, value, dtype=dtype))
                elif kind == "var":
                    stack.append(np.broadcast_to(arrays[value], shape))
                else:
                    op = OPERATORS[value]
                    if op.arity == 1:
                        stack.append(np.asarray(op.numpy(stack.pop()), dtype=dtype))
                    else:
                        right = stack.pop()
                        left = stack.pop()
                        stack.append(np.asarray(op.numpy(left, right), dtype=dtype))
        return stack[0]


def leaf_value(token: str) -> float | None:
    """The number a numeric leaf stands for (None for a variable)."""
    if is_int(token):
        return float(int(token[1:]))
    if is_float(token):
        return float(token[1:])
    if token in CONSTANTS:
        return CONSTANTS[token][1]
    return None


def compile(tree: Tree) -> Program:  # noqa: A001 - the engine's verb
    """The postfix program of ``tree``; raises ValueError naming an unknown token."""
    steps: list[tuple[str, object]] = []
    variables: set[str] = set()
    depth = 0
    for token in reversed(tree):
        op = OPERATORS.get(token)
        if op is not None:
            if depth < op.arity:
                raise ValueError(f"compile: operator {token!r} lacks operands")
            depth -= op.arity - 1
            steps.append(("op", token))
            continue
        value = leaf_value(token)
        if value is not None:
            steps.append(("const", value))
        elif is_variable(token):
            steps.append(("var", token))
            variables.add(token)
        else:
            raise ValueError(f"compile: unknown token {token!r}")
        depth += 1
    if depth != 1:
        raise ValueError(f"compile: {depth} expressions, expected 1")
    # the reversed walk builds the program right to left: binary operators pop (left, right)
    # in postfix order, so emit the operands of each node left to right
    return Program(tuple(_postfix(tree)), frozenset(variables))


def _postfix(tree: Tree) -> list[tuple[str, object]]:
    """Postfix steps of a prefix tree (iterative)."""
    out: list[tuple[str, object]] = []
    # each frame: [token, children left to emit]
    pending: list[list] = []
    for token in tree:
        op = OPERATORS.get(token)
        if op is not None:
            pending.append([token, op.arity])
            continue
        value = leaf_value(token)
        out.append(("const", value) if value is not None else ("var", token))
        while pending:
            pending[-1][1] -= 1
            if pending[-1][1]:
                break
            out.append(("op", pending.pop()[0]))
    return out
