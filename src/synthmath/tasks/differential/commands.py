"""``synthmath solve differential FILE``: the labels of a user-written system.

The file is JSON::

    {"system": ["-x0 + x1", "-x0 - 0.5*x1"],        one equation x_k' = f_k per state
     "point": 0.01,                                  optional: a number, or one per variable
     "controls": 1}                                  optional: the number of controls u0..

An equation is infix text (read by :mod:`synthmath.tasks.differential.parsing`, never by
SymPy or Python) or a list of the model's prefix tokens (``["add", "x_0", "INT+", "1"]``).
Without ``controls``, the controls are the ``u<k>`` the equations use. The point defaults to
the generators' (0.01 without controls, 0.9 with). Printed: the Jacobian(s) at the point, the
eigenvalues, ``stable`` and ``speed``; with controls also ``controllable``, ``rank_deficit``
and ``feedback`` (K of the Gramian method, rounded to 3 digits, or null when A + B K is not
stable or the system is not controllable). Bad input is a one-line :class:`DataError` that
names the file and the field.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from synthmath.codecs.numbers import round_sig
from synthmath.core.errors import DataError
from synthmath.core.files import dumps_json
from synthmath.expressions.errors import ExprParseError
from synthmath.expressions.infix import InfixError
from synthmath.expressions.operators import Tree, is_variable
from synthmath.expressions.prefix import PrefixCodec
from synthmath.tasks.differential import generation as gen
from synthmath.tasks.differential import labels
from synthmath.tasks.differential.parsing import parse_infix
from synthmath.tasks.differential.systems import control_names, gradient, state_names

MAX_EQUATIONS = 50
_KEYS = ("system", "point", "controls")


def _equation(path: str, i: int, item: Any) -> Tree:
    where = f"{path}: system[{i}]"
    if isinstance(item, str):
        try:
            return parse_infix(item)
        except InfixError as err:
            raise DataError(f"{where}: {err}") from None
    if isinstance(item, list) and item and all(isinstance(t, str) for t in item):
        try:
            return PrefixCodec(float_encoding="P10").parse(item)
        except ExprParseError as err:
            raise DataError(f"{where}: {err}") from None
    raise DataError(f"{where}: expected infix text or a non-empty list of prefix tokens")


def load_system(path: str | os.PathLike) -> tuple[list[Tree], int, np.ndarray | None]:
    """(equations, controls, point or None) of a system file; DataError naming the field."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object with a 'system' list")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise DataError(f"{path}: {unknown[0]}: unknown field; allowed: {', '.join(_KEYS)}")
    system = data.get("system")
    if not isinstance(system, list) or not 1 <= len(system) <= MAX_EQUATIONS:
        raise DataError(f"{path}: system: expected a list of 1..{MAX_EQUATIONS} equations")
    equations = [_equation(path, i, item) for i, item in enumerate(system)]
    n = len(equations)
    used = {t for tree in equations for t in tree if is_variable(t)}
    for i, tree in enumerate(equations):
        for t in tree:
            if t == "t":
                raise DataError(
                    f"{path}: system[{i}]: time-varying systems (t) are not solved here"
                )
            if is_variable(t) and not (t.startswith(("x_", "u_")) and t[2:].isdigit()):
                raise DataError(f"{path}: system[{i}]: {t!r} is not a variable x<k> or u<k>")
            if t.startswith("x_") and int(t[2:]) >= n:
                raise DataError(
                    f"{path}: system[{i}]: variable x{t[2:]} but the system has {n} equations "
                    f"(x0..x{n - 1})"
                )
    p = max((int(t[2:]) + 1 for t in used if t.startswith("u_")), default=0)
    if "controls" in data:
        given = data["controls"]
        if isinstance(given, bool) or not isinstance(given, int) or not 0 <= given <= n:
            raise DataError(f"{path}: controls: expected an integer in 0..{n}")
        if given < p:
            raise DataError(f"{path}: controls: {given}, but the equations use u{p - 1}")
        p = given
    point = None
    if "point" in data:
        value = data["point"]
        arr = np.asarray(value, dtype=object)
        ok = arr.ndim in (0, 1) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in np.ravel(arr)
        )
        if not ok or (arr.ndim == 1 and len(arr) != n + p):
            raise DataError(f"{path}: point: expected a number or a list of {n + p} numbers")
        point = np.asarray(value, dtype=float)
        if not np.isfinite(point).all():
            raise DataError(f"{path}: point: must be finite")
    return equations, p, point


def solve_system(
    equations: list[Tree], p: int, point: np.ndarray | None, config: gen.GenConfig | None = None
) -> dict[str, Any]:
    """The labels of a system as plain values (ValueError naming an undefined equation)."""
    n = len(equations)
    if point is None:
        point = np.asarray(gen.POINTS["control" if p else "stability"])
    variables = state_names(n) + control_names(p)
    full = np.broadcast_to(point, (n + p,)).astype(float)
    rows = []
    for i, tree in enumerate(equations):
        row = gradient(tree, variables, full)
        if not np.isfinite(row).all():
            raise ValueError(f"system[{i}]: not differentiable (or not real) at the point")
        rows.append(row)
    jac = np.array(rows)
    a, b = jac[:, :n], jac[:, n:]
    eig = np.linalg.eigvals(a)
    lam = float(eig.real.max())
    out: dict[str, Any] = {
        "n_equations": n,
        "controls": p,
        "point": full.tolist(),
        "jacobian": a.tolist(),
        "eigenvalues": [[float(z.real), float(z.imag)] for z in eig],
        "stable": lam < 0,
        "speed": -lam,
    }
    if p:
        deficit = labels.rank_deficit(a, b)  # ValueError on overflow: a DataError
        method = config.gramian if config else "exact"
        normalize_b = config.normalize_b if config else False
        k = None
        if deficit == 0:
            with np.errstate(all="ignore"):
                gain = round_sig(labels.feedback_gain(a, b, method, normalize_b), gen.K_DIGITS)
            if np.isfinite(gain).all() and labels.closed_loop_max_real(a, b, gain, normalize_b) < 0:
                k = gain.tolist()
        out |= {"b": b.tolist(), "controllable": deficit == 0, "rank_deficit": deficit,
                "feedback": k}  # fmt: skip
    return out


def format_result(result: dict[str, Any]) -> str:
    """Human-readable lines, one field each."""
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in result.items())


def solve_file(
    path: str | os.PathLike, as_json: bool = False, config: gen.GenConfig | None = None
) -> str:
    """What ``synthmath solve differential FILE [--json]`` prints."""
    equations, p, point = load_system(path)
    try:
        result = solve_system(equations, p, point, config)
    except ValueError as err:
        raise DataError(f"{path}: {err}") from None
    return dumps_json(result, indent=None) + "\n" if as_json else format_result(result)
