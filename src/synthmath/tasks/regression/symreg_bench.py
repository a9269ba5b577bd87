"""Benchmark test sets of ``symreg`` (``benchmark: strogatz | feynman``; specs/regression.md,
"Benchmarks"): public formulas, points made here (nothing downloaded).

- ``strogatz``: the 14 component regressions of PMLB's ODE-Strogatz (``strogatz_<key><k>``,
  k = 1, 2 for x_0', x_1'), from ``known/strogatz.json``
  (:func:`~synthmath.tasks.regression.benchmarks.load_benchmark`): per system its 4
  trajectories, integrated with the benchmark's solver (LSODA, rtol 1e-5, atol 1e-7) on
  linspace(0, 10, 100) from the file's 4 seeded initial conditions = 400 state rows, as
  PMLB's 400-row files (whose initial conditions are not known offline: INFERRED protocol);
  y = the component's right-hand side at those states.
- ``feynman``: the AI Feynman equations of ``known/feynman.json`` (made by
  ``tools/make_known_benchmarks.py`` from ``tools/known_benchmarks/feynman.md``), each input
  drawn uniformly in its range (the AI Feynman data's protocol).

An example of problem p shows ``n`` of its points: Strogatz a seeded subset of ``min(n, 400)``
of the 400 rows (E2E feeds at most 200 points), Feynman ``n`` fresh seeded draws; then the
task's output noise if any. As E2E's regressor rescales its inputs, the points are
standardised per column, z_j = (x_j - mu_j) / s_j (mu_j, s_j: the sample's mean and standard
deviation rounded to the ``P10000`` precision), and the truth is written in z (x_j -> s_j z_j
+ mu_j), so the model sees what it was trained on and symbolic recovery compares like with
like. The truth uses the ``symreg`` vocabulary (:func:`to_symreg`: ``div`` -> ``mul . inv``,
integer powers -> ``pow2``/``pow3``/``inv``, ``cot`` -> ``inv tan``, constant subtrees folded
into one float, products by 1 dropped), so it encodes as a target.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthmath.core.errors import DataError
from synthmath.expressions.operators import (
    CONSTANTS,
    OPERATORS,
    PRESETS,
    Tree,
    arity,
    float_token,
    is_float,
    is_int,
    is_variable,
    subtree_end,
)
from synthmath.tasks.regression import symreg_gen as gen
from synthmath.tasks.regression.benchmarks import KNOWN_DIR, integrate, load_benchmark

#: the benchmark test sets of ``symreg`` (``none``: the generator's examples)
SYMREG_BENCHMARKS = ("none", "strogatz", "feynman")
FEYNMAN_FILE = KNOWN_DIR / "feynman.json"
_E2E = PRESETS["e2e"]
SYMREG_OPS = frozenset({*_E2E.binary, *_E2E.unary})
#: rounds are drawn again this many times when a Feynman point is not finite
_REDRAWS = 100


class BenchmarkError(DataError):
    """A benchmark file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Problem:
    """One regression problem: ``tree`` (``symreg`` vocabulary, variables x_0..x_{dim-1})
    gives y; the points are the fixed ``states`` rows (Strogatz) or uniform draws in
    ``ranges`` (Feynman)."""

    name: str
    tree: Tree
    dim: int
    states: np.ndarray | None = None
    ranges: tuple[tuple[float, float], ...] = ()


# ---- the symreg vocabulary ------------------------------------------------------------------
def _children(tree: Tree, i: int) -> list[int]:
    out, j = [], i + 1
    for _ in range(arity(tree[i])):
        out.append(j)
        j = subtree_end(tree, j)
    return out


def _leaf_value(token: str) -> float | None:
    if is_int(token) or is_float(token):
        return float(token[1:])
    if token in CONSTANTS:
        return CONSTANTS[token][1]
    return None


def _rewrite(tree: Tree, i: int) -> Tree:
    """The subtree at ``i`` in the symreg vocabulary (see :func:`to_symreg`)."""
    token = tree[i]
    if arity(token) == 0:
        value = _leaf_value(token)
        if value is not None:
            return (float_token(value),)
        if is_variable(token):
            return (token,)
        raise ValueError(f"leaf {token!r} is not a number or a variable")
    args = [_rewrite(tree, j) for j in _children(tree, i)]
    if token == "div":
        out: Tree = ("mul", *args[0], *_folded(("inv", *args[1])))
    elif token == "pow":
        out = _power(args[0], args[1])
    elif token in ("cot", "sec", "csc"):
        out = ("inv", {"cot": "tan", "sec": "cos", "csc": "sin"}[token], *args[0])
    elif token == "mul" and ("f1.0",) in args:  # 1 * a: a
        out = args[1] if args[0] == ("f1.0",) else args[0]
    elif token in SYMREG_OPS:
        out = (token, *(t for a in args for t in a))
    else:
        raise ValueError(f"operator {token!r} is not in the symreg vocabulary")
    return _folded(out)


def _folded(tree: Tree) -> Tree:
    """A tree without variables as one float leaf; else ``tree``."""
    if len(tree) > 1 and not any(is_variable(t) for t in tree):
        return (float_token(_value(tree)),)
    return tree


def _power(base: Tree, exponent: Tree) -> Tree:
    value = _leaf_value(exponent[0]) if len(exponent) == 1 else None
    powers: dict[float, tuple[str, ...]] = {
        1.0: (), 2.0: ("pow2",), 3.0: ("pow3",), 4.0: ("pow2", "pow2"), 0.5: ("sqrt",),
    }  # fmt: skip
    if value is not None and abs(value) in powers:
        ops = powers[abs(value)]
        return (*(("inv",) if value < 0 else ()), *ops, *base)
    raise ValueError(f"power {exponent!r} has no symreg form (exponents +-1, 2, 3, 4, 1/2)")


def _value(tree: Tree) -> float:
    """The value of a tree without variables."""
    stack: list[float] = []
    with np.errstate(all="ignore"):
        for token in reversed(tree):
            n = arity(token)
            if n == 0:
                stack.append(float(token[1:]))
            else:
                args = [stack.pop() for _ in range(n)]
                stack.append(float(OPERATORS[token].numpy(*args)))
    return stack[0]


def to_symreg(tree: Tree) -> Tree:
    """``tree`` written with the ``symreg`` (E2E) operators and float leaves only: ``div a b``
        -> ``mul a inv b``, ``pow a k`` -> ``pow2``/``pow3``/``pow2 pow2``/``sqrt`` (``inv`` for a
        negative k), ``cot``/``sec``/``csc`` -> ``inv`` of ``tan``/``cos``/``sin``, integers and
        named constants -> floats, every subtree without variables -> its float value, ``1 * a``
    -> ``a``.
        ValueError for anything else (another operator or exponent)."""
    out = _rewrite(tuple(tree), 0)
    if subtree_end(tree, 0) != len(tree):
        raise ValueError("tokens after a complete expression")
    return out


def in_standard_units(tree: Tree, mu: np.ndarray, sigma: np.ndarray) -> Tree:
    """``tree`` in z_j = (x_j - mu_j) / sigma_j: every x_j becomes ``sigma_j z_j + mu_j``."""
    out: list[str] = []
    for token in tree:
        if is_variable(token) and token.startswith("x_"):
            j = int(token[2:])
            out += ["add", "mul", token, float_token(sigma[j]), float_token(mu[j])]
        else:
            out.append(token)
    return tuple(out)


# ---- the problems ---------------------------------------------------------------------------
@functools.cache
def strogatz_problems() -> tuple[Problem, ...]:
    """The 14 Strogatz component regressions, in file order (x_0' then x_1' per system)."""
    bench = load_benchmark("strogatz")
    out = []
    for system in bench.systems:
        parts = []
        for y0 in system.initial_conditions:
            traj = integrate(system, y0, bench.solver)
            if not (traj.success and np.isfinite(traj.states).all()):
                raise DataError(f"strogatz {system.key}: no trajectory from {y0} ({traj.message})")
            parts.append(traj.states)
        states = np.concatenate(parts)
        states.setflags(write=False)
        for k, tree in enumerate(system.trees):
            out.append(
                Problem(f"strogatz_{system.key}{k + 1}", to_symreg(tree), system.dim, states)
            )
    return tuple(out)


@functools.cache
def feynman_problems(path: str = str(FEYNMAN_FILE)) -> tuple[Problem, ...]:
    """The Feynman equations of ``known/feynman.json``, in file order."""
    where = Path(path).name
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such benchmark file") from None
    except ValueError as err:
        raise BenchmarkError(f"{path}: not valid JSON ({err})") from None
    return parse_feynman(data, where)


def parse_feynman(data: Any, where: str = "<feynman>") -> tuple[Problem, ...]:
    """Validate the Feynman file's content (``equations``: id, output, infix, prefix in
    x_0..x_{D-1}, variables [{name, low, high}]) and build its problems."""
    if not isinstance(data, dict) or not isinstance(data.get("equations"), list):
        raise BenchmarkError(f"{where}: equations: expected a list")
    out, seen = [], set()
    for k, item in enumerate(data["equations"]):
        at = f"equations[{k}]"
        if not isinstance(item, dict):
            raise BenchmarkError(f"{where}: {at}: expected an object")
        for key in ("id", "prefix", "variables"):
            if key not in item:
                raise BenchmarkError(f'{where}: missing field "{key}" in {at}')
        name = item["id"]
        if not isinstance(name, str) or not name or name in seen:
            raise BenchmarkError(f"{where}: {at}.id: expected a new non-empty string")
        seen.add(name)
        ranges = _ranges(item["variables"], where, f"{at}.variables")
        dim = len(ranges)
        prefix = item["prefix"]
        if not isinstance(prefix, str) or not prefix.split():
            raise BenchmarkError(f"{where}: {at}.prefix: expected prefix tokens")
        tree = tuple(prefix.split())
        for token in tree:
            if is_variable(token) and not (
                token.startswith("x_") and token[2:].isdigit() and int(token[2:]) < dim
            ):
                raise BenchmarkError(
                    f"{where}: {at}.prefix: variable {token!r} outside x_0..x_{dim - 1}"
                )
            if not (is_variable(token) or token in OPERATORS or _leaf_value(token) is not None):
                raise BenchmarkError(f"{where}: {at}.prefix: unknown token {token!r}")
        try:
            out.append(Problem(name, to_symreg(tree), dim, ranges=ranges))
        except (ValueError, IndexError) as err:
            raise BenchmarkError(f"{where}: {at}.prefix: {err}") from None
    if not out:
        raise BenchmarkError(f"{where}: equations: expected at least one")
    return tuple(out)


def _ranges(value: Any, where: str, at: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= 10:
        raise BenchmarkError(f"{where}: {at}: expected a list of 1 to 10 variables")
    out = []
    for j, var in enumerate(value):
        if not isinstance(var, dict) or not isinstance(var.get("name"), str):
            raise BenchmarkError(f"{where}: {at}[{j}]: expected {{name, low, high}}")
        bounds = [var.get("low"), var.get("high")]
        if not all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds):
            raise BenchmarkError(f"{where}: {at}[{j}]: low and high must be numbers")
        low, high = float(bounds[0]), float(bounds[1])
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise BenchmarkError(f"{where}: {at}[{j}]: expected finite low < high")
        out.append((low, high))
    return tuple(out)


def problems(benchmark: str) -> tuple[Problem, ...]:
    """The problems of a benchmark test set (:data:`SYMREG_BENCHMARKS` but ``none``)."""
    if benchmark == "strogatz":
        return strogatz_problems()
    if benchmark == "feynman":
        return feynman_problems()
    raise KeyError(f"unknown benchmark {benchmark!r}; allowed: strogatz, feynman")


# ---- examples -------------------------------------------------------------------------------
def raw_points(problem: Problem, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of ``problem`` in its own units (fewer for Strogatz: at most its rows)
    and the truth's values there."""
    if problem.states is not None:
        rows = problem.states
        pick = np.sort(rng.choice(len(rows), size=min(n, len(rows)), replace=False))
        x = np.array(rows[pick])
        return x, gen.evaluate(problem.tree, x)
    low, high = np.array(problem.ranges).T
    x = rng.uniform(low, high, (n, problem.dim))
    y = gen.evaluate(problem.tree, x)
    for _ in range(_REDRAWS):
        bad = ~(np.isfinite(y) & (np.abs(y) < gen.MAX_ABS_Y))
        if not bad.any():
            return x, y
        x[bad] = rng.uniform(low, high, (int(bad.sum()), problem.dim))
        y[bad] = gen.evaluate(problem.tree, x[bad])
    raise DataError(f"feynman {problem.name}: the formula is not finite in its ranges")


def example(
    problem: Problem,
    n: int,
    noise: float,
    rng: np.random.Generator,
    round_values: Callable[[np.ndarray], np.ndarray],
) -> gen.Example:
    """One example of ``problem`` (module docstring): standardised points, y (with output
    noise ``noise`` x rms(y) x N(0, 1) when > 0), the truth in the standardised variables.
    ``round_values`` rounds mu and sigma as the number encoding does."""
    x, y = raw_points(problem, n, rng)
    mu = round_values(x.mean(axis=0))
    spread = x.std(axis=0)
    sigma = round_values(np.where(spread > 0, spread, 1.0))
    z = (x - mu) / sigma
    if noise > 0:
        y = y + noise * np.sqrt(np.mean(y**2)) * rng.standard_normal(len(y))
    n_binary = sum(arity(t) == 2 for t in problem.tree)
    n_unary = sum(arity(t) == 1 for t in problem.tree)
    tree = in_standard_units(problem.tree, mu, sigma)
    return gen.Example(tree, z, y, problem.dim, n_binary, n_unary)
