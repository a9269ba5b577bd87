"""ODEFormer's inference rescaling (specs/regression.md, odeformer; the release's
``utils_wrapper.Scaler``): time mapped affinely onto [1, 10], each variable divided by its
first observed value (a zero by 1), and systems rewritten between the two coordinates.

With tau = a + b t and y_j = x_j / s_j, the system x' = f(x) reads
dy_j/dtau = f_j(s * y) / (s_j b); a system g predicted in the scaled coordinates is
f_j(x) = s_j b g_j(x / s) in the original ones. The rewriting substitutes ``mul s_k x_k``
for each variable and multiplies each component by a constant; the scaled truth (the answer a
model is trained towards) then goes through SymPy's evaluation and the ``P10000`` rounding,
as generated answers do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthmath.expressions.operators import Tree, float_token, is_variable
from synthmath.expressions.prefix import PrefixCodec
from synthmath.tasks.regression import odeformer_gen as gen

T_RANGE = (1.0, 10.0)


@dataclass(frozen=True)
class Scale:
    """tau = a + b t and y_j = x_j / s_j."""

    a: float
    b: float
    s: tuple[float, ...]

    @classmethod
    def of(cls, times: np.ndarray, values: np.ndarray) -> Scale:
        """The scale of an observed trajectory: its time span onto [1, 10], its first values."""
        t0, t1 = float(times[0]), float(times[-1])
        b = (T_RANGE[1] - T_RANGE[0]) / (t1 - t0) if t1 > t0 else 1.0
        first = np.asarray(values[0], dtype=np.float64)
        s = np.where(first == 0.0, 1.0, first)
        return cls(T_RANGE[0] - b * t0, b, tuple(float(v) for v in s))

    def apply(self, times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observations in the scaled coordinates."""
        return self.a + self.b * np.asarray(times), np.asarray(values) / np.array(self.s)

    def to_scaled(self, trees: tuple[Tree, ...], codec: PrefixCodec) -> tuple[Tree, ...]:
        """The system in the scaled coordinates, evaluated by SymPy and rounded like a
        generated answer (the unsimplified rewriting where SymPy fails)."""
        out = []
        for j, tree in enumerate(trees):
            scaled = ("mul", float_token(1.0 / (self.s[j] * self.b)), *_substitute(tree, self.s))
            out.append(gen.simplify(scaled, codec) or codec.round_floats(scaled))
        return tuple(out)

    def from_scaled(self, trees: tuple[Tree, ...]) -> tuple[Tree, ...]:
        """A system predicted in the scaled coordinates, in the original ones."""
        inverse = tuple(1.0 / v for v in self.s)
        return tuple(
            ("mul", float_token(self.s[j] * self.b), *_substitute(tree, inverse))
            for j, tree in enumerate(trees)
        )


def _substitute(tree: Tree, factors: tuple[float, ...]) -> Tree:
    """``tree`` with each variable x_k replaced by ``mul factors[k] x_k``."""
    out: list[str] = []
    for token in tree:
        if is_variable(token) and token.startswith("x_"):
            out += ["mul", float_token(factors[int(token[2:])]), token]
        else:
            out.append(token)
    return tuple(out)
