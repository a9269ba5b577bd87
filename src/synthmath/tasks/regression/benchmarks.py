"""Benchmark ODE systems as data: ODEBench (63 systems) and Strogatz (7), read and integrated.

The shipped files ``known/odebench.json`` and ``known/strogatz.json`` (made by
``tools/make_known_benchmarks.py`` from transcriptions of the spec's tables; provenance in
``known/README.md``) hold, per system: ``id``, ``name``, ``dim``, ``equations`` (per
component the source's infix text and the engine's raw prefix tokens, space-separated, with
the constants as placeholders ``c_0``, ``c_1``, ...), ``constants`` (their values, in
order), ``initial_conditions``, ``chaotic``, and text fields (``key``, ``source``,
``variables``, ``state_constraints``, ``constant_constraints``, ``notes``). The top level
carries the solver settings of the benchmark (``solver``: method, rtol, atol, first_step,
t_span, n_points).

Loading reads the prefix tokens with the engine (the placeholders replaced by the constant
values, then :func:`synthmath.expressions.numeric.compile`); the infix text is never parsed
here, and no string goes to SymPy or Python. Every problem found names the file and the
field: ``odebench.json: systems[4].equations[1].prefix: unknown token 'foo'``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from synthmath.core.errors import DataError
from synthmath.expressions.numeric import Program, compile
from synthmath.expressions.operators import (
    CONSTANTS,
    OPERATORS,
    Tree,
    float_token,
    is_float,
    is_int,
    subtree_end,
)

KNOWN_DIR = Path(__file__).resolve().parent / "known"
#: the shipped benchmarks, by name (file ``known/<name>.json``)
BENCHMARKS = ("odebench", "strogatz")

_TOP_FIELDS = ("benchmark", "description", "source", "license", "solver", "systems")
_SOLVER_FIELDS = ("method", "rtol", "atol", "first_step", "t_span", "n_points")
_SYSTEM_FIELDS = (
    "id", "key", "name", "dim", "equations", "constants", "initial_conditions", "chaotic",
    "source", "variables", "state_constraints", "constant_constraints", "notes",
)  # fmt: skip
_TEXT_FIELDS = (
    "key", "source", "variables", "state_constraints", "constant_constraints", "notes"
)  # fmt: skip


class BenchmarkFileError(DataError):
    """A benchmark file is malformed; the message names the file, the field and the problem."""


@dataclass(frozen=True)
class Solver:
    """``scipy.integrate.solve_ivp`` settings: the benchmark's protocol."""

    method: str = "LSODA"
    rtol: float = 1e-5
    atol: float = 1e-7
    first_step: float = 1e-6
    t_span: tuple[float, float] = (0.0, 10.0)
    n_points: int = 512

    def times(self, n_points: int | None = None) -> np.ndarray:
        """The evaluation grid: ``n_points`` (default the benchmark's) evenly spaced times."""
        return np.linspace(*self.t_span, n_points or self.n_points)


@dataclass(frozen=True)
class OdeSystem:
    """One system x' = f(x) of a benchmark (variables ``x_0 .. x_{dim-1}``)."""

    id: int
    name: str
    dim: int
    infix: tuple[str, ...]
    #: per component the raw prefix tree, constants as placeholders ``c_k``
    skeleton: tuple[Tree, ...]
    constants: tuple[float, ...]
    initial_conditions: tuple[tuple[float, ...], ...]
    chaotic: bool = False
    key: str = ""
    source: str = ""
    variables: str = ""
    state_constraints: str = ""
    constant_constraints: str = ""
    notes: str = ""

    @property
    def trees(self) -> tuple[Tree, ...]:
        """Per component the raw tree with the constants as float leaves."""
        return tuple(substitute_constants(tree, self.constants) for tree in self.skeleton)

    def rhs(self) -> Callable[[float, np.ndarray], np.ndarray]:
        """f(t, x) for ``solve_ivp``: the components' compiled programs at the state x."""
        return _rhs(tuple(compile(tree) for tree in self.trees), self.dim)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark file: its systems in file order and its solver settings."""

    name: str
    systems: tuple[OdeSystem, ...]
    solver: Solver
    description: str = ""
    source: str = ""
    license: str = ""

    def system(self, system_id: int) -> OdeSystem:
        for system in self.systems:
            if system.id == system_id:
                return system
        ids = [s.id for s in self.systems]
        raise KeyError(f"{self.name}: no system {system_id!r}; ids {min(ids)}..{max(ids)}")


@dataclass(frozen=True)
class Trajectory:
    """A solution on the solver's grid: ``states`` has shape (len(times), dim) when the
    solve succeeded (fewer rows when it stopped early)."""

    times: np.ndarray
    states: np.ndarray
    success: bool
    message: str
    nfev: int


def substitute_constants(tree: Tree, constants: Sequence[float]) -> Tree:
    """``tree`` with each placeholder ``c_k`` replaced by the float leaf of ``constants[k]``."""
    out = []
    for token in tree:
        k = _constant_index(token)
        out.append(token if k is None else float_token(constants[k]))
    return tuple(out)


def _constant_index(token: str) -> int | None:
    if token.startswith("c_") and token[2:].isdigit() and token == f"c_{int(token[2:])}":
        return int(token[2:])
    return None


def _rhs(programs: tuple[Program, ...], dim: int) -> Callable[[float, np.ndarray], np.ndarray]:
    """f(t, x) from the components' programs, run on numpy scalars: the same steps and numpy
    functions as :meth:`Program.__call__` without its per-call array set-up (5x faster at
    one point; a test checks both agree at random states)."""
    names = [f"x_{k}" for k in range(dim)]
    runs = [_scalar_steps(program) for program in programs]

    def f(t: float, x: np.ndarray) -> np.ndarray:
        env = dict(zip(names, np.asarray(x, dtype=np.float64), strict=True))
        with np.errstate(all="ignore"):
            return np.array([_run(steps, env) for steps in runs])

    return f


def _scalar_steps(program: Program) -> list[tuple[int, Any]]:
    """``program.steps`` as (0, constant) / (1, variable) / (arity + 1, numpy function)."""
    out: list[tuple[int, Any]] = []
    for kind, value in program.steps:
        if kind == "const":
            out.append((0, np.float64(value)))
        elif kind == "var":
            out.append((1, value))
        else:
            op = OPERATORS[value]
            out.append((op.arity + 1, op.numpy))
    return out


def _run(steps: list[tuple[int, Any]], env: dict[str, np.float64]) -> float:
    stack: list[Any] = []
    for kind, value in steps:
        if kind == 0:
            stack.append(value)
        elif kind == 1:
            stack.append(env[value])
        elif kind == 2:
            stack[-1] = value(stack[-1])
        else:
            right = stack.pop()
            stack[-1] = value(stack[-1], right)
    return float(stack[0])


def integrate(
    system: OdeSystem,
    initial: Sequence[float],
    solver: Solver | None = None,
    n_points: int | None = None,
) -> Trajectory:
    """Solve ``system`` from ``initial`` with the benchmark's protocol (``solver``, default
    :class:`Solver`: LSODA, rtol 1e-5, atol 1e-7, first_step 1e-6, t in [0, 10], 512 points)."""
    solver = solver or Solver()
    y0 = np.asarray(initial, dtype=np.float64)
    if y0.shape != (system.dim,):
        raise ValueError(
            f"{system.name}: initial state of shape {y0.shape}, expected ({system.dim},)"
        )
    times = solver.times(n_points)
    sol = solve_ivp(
        system.rhs(),
        solver.t_span,
        y0,
        method=solver.method,
        t_eval=times,
        rtol=solver.rtol,
        atol=solver.atol,
        first_step=solver.first_step,
    )
    return Trajectory(sol.t, sol.y.T, bool(sol.success), str(sol.message), int(sol.nfev))


# ---- reading -----------------------------------------------------------------------------
@cache
def load_benchmark(name: str) -> Benchmark:
    """A shipped benchmark by name (:data:`BENCHMARKS`), read once."""
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; allowed: {', '.join(BENCHMARKS)}")
    return read_benchmark(KNOWN_DIR / f"{name}.json")


def read_benchmark(path: str | os.PathLike) -> Benchmark:
    """Read and validate a benchmark file (errors name the file and the field)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such benchmark file") from None
    except ValueError as err:
        raise BenchmarkFileError(f"{path}: not valid JSON ({err})") from None
    return parse_benchmark(data, where=path.name, default_name=path.stem)


def parse_benchmark(data: Any, where: str = "<benchmark>", default_name: str = "") -> Benchmark:
    """Validate a benchmark given as parsed JSON and build its systems."""
    _fields(data, _TOP_FIELDS, where, "the top level")
    if "systems" not in data or not isinstance(data["systems"], list) or not data["systems"]:
        raise BenchmarkFileError(f"{where}: systems: expected a non-empty list")
    systems, seen = [], {}
    for k, item in enumerate(data["systems"]):
        system = _system(item, where, f"systems[{k}]")
        if system.id in seen:
            raise BenchmarkFileError(
                f"{where}: systems[{k}].id: duplicate id {system.id} (also systems[{seen[system.id]}])"
            )
        seen[system.id] = k
        systems.append(system)
    texts = {
        key: _text(data, key, where, "")
        for key in ("benchmark", "description", "source", "license")
    }
    return Benchmark(
        name=texts["benchmark"] or default_name,
        systems=tuple(systems),
        solver=_solver(data.get("solver", {}), where),
        description=texts["description"],
        source=texts["source"],
        license=texts["license"],
    )


def _fields(obj: Any, allowed: tuple[str, ...], where: str, at: str) -> None:
    if not isinstance(obj, dict):
        raise BenchmarkFileError(f"{where}: {at}: expected an object, got {type(obj).__name__}")
    for key in obj:
        if key not in allowed:
            raise BenchmarkFileError(
                f'{where}: unknown field "{key}" in {at}; allowed: {", ".join(allowed)}'
            )


def _text(obj: dict, key: str, where: str, at: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str):
        raise BenchmarkFileError(f"{where}: {at}{key}: expected a string")
    return value


def _number(value: Any, where: str, at: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BenchmarkFileError(f"{where}: {at}: expected a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BenchmarkFileError(f"{where}: {at}: expected a finite number")
    return number


def _numbers(value: Any, where: str, at: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise BenchmarkFileError(f"{where}: {at}: expected a list of numbers")
    return tuple(_number(v, where, f"{at}[{k}]") for k, v in enumerate(value))


def _integer(value: Any, where: str, at: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BenchmarkFileError(f"{where}: {at}: expected an integer >= {minimum}, got {value!r}")
    return value


def _solver(obj: Any, where: str) -> Solver:
    _fields(obj, _SOLVER_FIELDS, where, "solver")
    default = Solver()
    method = obj.get("method", default.method)
    if method not in ("LSODA", "RK45", "RK23", "DOP853", "Radau", "BDF"):
        raise BenchmarkFileError(f"{where}: solver.method: unknown method {method!r}")
    values = {
        key: _number(obj.get(key, getattr(default, key)), where, f"solver.{key}")
        for key in ("rtol", "atol", "first_step")
    }
    t_span = _numbers(obj.get("t_span", list(default.t_span)), where, "solver.t_span")
    if len(t_span) != 2 or not t_span[0] < t_span[1]:
        raise BenchmarkFileError(f"{where}: solver.t_span: expected [t0, t1] with t0 < t1")
    n_points = _integer(obj.get("n_points", default.n_points), where, "solver.n_points", 2)
    return Solver(method, t_span=(t_span[0], t_span[1]), n_points=n_points, **values)


def _system(item: Any, where: str, at: str) -> OdeSystem:
    _fields(item, _SYSTEM_FIELDS, where, at)
    for key in ("id", "name", "dim", "equations", "constants", "initial_conditions"):
        if key not in item:
            raise BenchmarkFileError(f'{where}: missing field "{key}" in {at}')
    system_id = _integer(item["id"], where, f"{at}.id", 1)
    dim = _integer(item["dim"], where, f"{at}.dim", 1)
    name = _text(item, "name", where, f"{at}.")
    constants = _numbers(item["constants"], where, f"{at}.constants")
    equations = item["equations"]
    if not isinstance(equations, list) or len(equations) != dim:
        raise BenchmarkFileError(f"{where}: {at}.equations: expected a list of {dim} components")
    infix, skeleton, used = [], [], set()
    for k, equation in enumerate(equations):
        eq_at = f"{at}.equations[{k}]"
        _fields(equation, ("infix", "prefix"), where, eq_at)
        infix.append(_text(equation, "infix", where, f"{eq_at}."))
        tree = _prefix(equation.get("prefix"), dim, len(constants), where, f"{eq_at}.prefix")
        used.update(i for t in tree if (i := _constant_index(t)) is not None)
        skeleton.append(tree)
    unused = sorted(set(range(len(constants))) - used)
    if unused:
        raise BenchmarkFileError(
            f"{where}: {at}.constants: c_{unused[0]} has a value but no equation uses it"
        )
    ics = item["initial_conditions"]
    if not isinstance(ics, list) or not ics:
        raise BenchmarkFileError(f"{where}: {at}.initial_conditions: expected a non-empty list")
    initial = []
    for k, state in enumerate(ics):
        values = _numbers(state, where, f"{at}.initial_conditions[{k}]")
        if len(values) != dim:
            raise BenchmarkFileError(
                f"{where}: {at}.initial_conditions[{k}]: {len(values)} values, expected {dim}"
            )
        initial.append(values)
    chaotic = item.get("chaotic", False)
    if not isinstance(chaotic, bool):
        raise BenchmarkFileError(f"{where}: {at}.chaotic: expected true or false")
    return OdeSystem(
        id=system_id,
        name=name,
        dim=dim,
        infix=tuple(infix),
        skeleton=tuple(skeleton),
        constants=constants,
        initial_conditions=tuple(initial),
        chaotic=chaotic,
        **{key: _text(item, key, where, f"{at}.") for key in _TEXT_FIELDS},
    )


def _prefix(value: Any, dim: int, n_constants: int, where: str, at: str) -> Tree:
    """The raw tree of a space-separated prefix string: operators, numbers (``i3``,
    ``f0.5``, ``pi``), the variables x_0 .. x_{dim-1} and placeholders c_0 .. c_{n_constants-1}."""
    if not isinstance(value, str) or not value.split():
        raise BenchmarkFileError(f"{where}: {at}: expected a non-empty string of prefix tokens")
    tree = tuple(value.split())
    for token in tree:
        k = _constant_index(token)
        if k is not None:
            if k >= n_constants:
                raise BenchmarkFileError(
                    f"{where}: {at}: {token} but only {n_constants} constants are given"
                )
        elif token.startswith("x_"):
            if not (
                token[2:].isdigit() and token == f"x_{int(token[2:])}" and int(token[2:]) < dim
            ):
                raise BenchmarkFileError(
                    f"{where}: {at}: variable {token!r} outside x_0..x_{dim - 1}"
                )
        elif not (token in OPERATORS or token in CONSTANTS or is_int(token) or is_float(token)):
            raise BenchmarkFileError(f"{where}: {at}: unknown token {token!r}")
    try:
        end = subtree_end(tree, 0)
    except ValueError:
        raise BenchmarkFileError(f"{where}: {at}: the tokens end inside an operand") from None
    if end != len(tree):
        raise BenchmarkFileError(f"{where}: {at}: tokens after a complete expression")
    return tree
