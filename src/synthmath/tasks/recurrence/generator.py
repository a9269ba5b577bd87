"""Random recurrences and their sequences (d'Ascoli et al. 2022; specs/regression.md "recurrence").

A recurrence is a raw prefix tree (:mod:`synthmath.expressions.operators`) in the index ``n``
and the previous terms ``u_k`` = u_(n-k), k = 1..6: ``add u_1 u_2`` is Fibonacci. Term ``i`` of
a sequence has index n = i (the first term is u_0); the first ``degree`` terms are the
initial terms, every later one is the recurrence of the terms before it.

One example (every draw from the example's own generator, never numpy's global one):
degree d ~ U{1..max_degree}; o ~ U{min_ops..max_ops} operators in a tree whose shape is
uniform over unary-binary shapes and whose operators are uniform over the mode's set;
leaves w.p. 1/3 each a constant (integers -10..10 but 0; float mode also e, pi and Euler's
gamma), ``n``, or u_(n-k) with k ~ U{1..d}; d initial terms U{-10..10} (float U(-10, 10));
input length L ~ U{max(min_len, d)..max_len} (the release drew one length per batch from the
global RNG, and a length below d would hide an initial term from the input); then 10 more
terms as targets. Rejected: a term beyond 1e100 in absolute value, NaN or inf, an undefined
operation (division by zero), and sequences whose last 5 terms have equal absolute gaps
(constant, arithmetic or +- alternating tails).

:func:`roll` is also the scoring's rollout: a hypothesis is run from the observed prefix with
the same arithmetic, so the true recurrence reproduces its targets bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synthmath.expressions.numeric import MAX_ABS_INT, Program, compile, evaluate_int
from synthmath.expressions.operators import OPERATORS, Preset, Tree, is_variable
from synthmath.expressions.sampling import sample_trees

MODES = ("int", "float")
#: the largest shift k of a u_k leaf (the release's max_degree)
MAX_DEGREE = 6
MAX_ABS = 1e100
#: the release's operator sets, in the engine's names (log -> ln, arcsin -> asin, ...)
INT_UNARY = ("abs", "sqr", "relu", "sign")
INT_BINARY = ("add", "sub", "mul", "idiv", "mod")
FLOAT_UNARY = (
    "abs",
    "inv",
    "sqr",
    "sqrt",
    "ln",
    "exp",
    "sin",
    "asin",
    "cos",
    "acos",
    "tan",
    "atan",
)
FLOAT_BINARY = ("add", "sub", "mul", "div")
FLOAT_CONSTANTS = ("E", "pi", "euler_gamma")
INTS = tuple(v for v in range(-10, 11) if v)
#: the leaf the sampler writes for "a previous term"; each is then shifted to u_k, k ~ U{1..d}
_U = "u_1"


def preset(mode: str, max_ops: int) -> Preset:
    """The tree preset of ``mode``: leaves 1/3 constant, 1/3 ``n``, 1/3 a previous term."""
    if mode == "int":
        return Preset(
            "recur_int",
            "d'Ascoli et al. 2022 (facebookresearch/recur): integer operators",
            max_ops=max_ops,
            unary=dict.fromkeys(INT_UNARY, 1.0),
            binary=dict.fromkeys(INT_BINARY, 1.0),
            variables=("n", _U),
            ints=INTS,
            p_variable=2 / 3,
            p_int=1 / 3,
        )
    n_const = len(INTS) + len(FLOAT_CONSTANTS)  # constants uniform over all 23 values
    return Preset(
        "recur_float",
        "d'Ascoli et al. 2022 (facebookresearch/recur): float operators and constants",
        max_ops=max_ops,
        unary=dict.fromkeys(FLOAT_UNARY, 1.0),
        binary=dict.fromkeys(FLOAT_BINARY, 1.0),
        variables=("n", _U),
        ints=INTS,
        constants=FLOAT_CONSTANTS,
        p_variable=2 / 3,
        p_int=len(INTS) / n_const / 3,
        p_constant=1 - 2 / 3 - len(INTS) / n_const / 3,
    )


@dataclass(frozen=True)
class GenConfig:
    mode: str = "int"
    min_degree: int = 1
    max_degree: int = MAX_DEGREE
    min_ops: int = 1
    max_ops: int = 10
    min_len: int = 5
    max_len: int = 30
    n_predict: int = 10


@dataclass(frozen=True)
class Example:
    tree: Tree
    terms: tuple  # ints or floats: the n_input given terms, then n_predict targets
    n_input: int
    degree: int
    n_ops: int


def shift(tree: Tree) -> int:
    """The largest k of the ``u_k`` leaves of ``tree`` (0 when it reads no previous term);
    ValueError for a variable other than ``n`` and ``u_k``."""
    top = 0
    for token in tree:
        if is_variable(token):
            if token == "n":
                continue
            if not token.startswith("u_"):
                raise ValueError(f"recurrence: unknown variable {token!r} (use n and u_k)")
            top = max(top, int(token[2:]))
    return top


def roll(
    tree: Tree, prefix: Sequence, steps: int, mode: str, program: Program | None = None
) -> list | str:
    """The ``steps`` terms after ``prefix`` (term i has n = i), each the recurrence of the
        terms before it (its own earlier outputs included); or the reason it fails: ``"shift"``
        (a u_k before the first term), ``"undefined"`` (division by zero, NaN, inf, an integer
        operation on a non-integer; in integer mode also a value beyond 10**100 anywhere in the
    tree), ``"overflow"`` (a float term beyond 1e100)."""
    seq = list(prefix)
    k_max = shift(tree)
    if k_max > len(seq):
        return "shift"
    names = [f"u_{k}" for k in range(1, k_max + 1)]
    if mode == "float":
        return _roll_float(program or compile(tree), seq, steps, len(prefix))
    for _ in range(steps):
        i = len(seq)
        env = {name: seq[i - k] for k, name in enumerate(names, 1)}
        env["n"] = i
        try:
            value = evaluate_int(tree, env, MAX_ABS_INT)
        except ValueError:
            return "undefined"
        if value is None:
            return "undefined"
        seq.append(value)
    return seq[len(prefix) :]


def _roll_float(program: Program, seq: list, steps: int, start: int) -> list | str:
    """The float rollout: the program's postfix steps on float64 scalars (numpy's functions,
    NaN/inf for domain errors and poles, as :class:`Program` on arrays)."""
    code = []
    for kind, value in program.steps:
        if kind == "const":
            code.append((0, np.float64(value)))
        elif kind == "var":
            code.append((-1, 0 if value == "n" else int(str(value)[2:])))
        else:
            op = OPERATORS[value]
            code.append((op.arity, op.numpy))
    with np.errstate(all="ignore"):
        for _ in range(steps):
            i = len(seq)
            stack: list = []
            for arity, item in code:
                if arity == 0:
                    stack.append(item)
                elif arity == -1:
                    stack.append(np.float64(i if item == 0 else seq[i - item]))
                elif arity == 1:
                    stack.append(item(stack.pop()))
                else:
                    right = stack.pop()
                    stack.append(item(stack.pop(), right))
            value = float(stack[0])
            if not math.isfinite(value):
                return "undefined"
            if abs(value) > MAX_ABS:
                return "overflow"
            seq.append(value)
    return seq[start:]


def equal_gaps(terms: Sequence, mode: str, count: int = 5) -> bool:
    """Whether the last ``count`` terms have equal absolute gaps (floats: to 1e-12 relative)."""
    tail = terms[-count:]
    gaps = [abs(b - a) for a, b in zip(tail, tail[1:])]
    if mode == "int":
        return len(set(gaps)) == 1
    top = max(gaps)
    return max(gaps) - min(gaps) <= 1e-12 * max(top, 1e-300)


def attempt(rng: np.random.Generator, cfg: GenConfig, tree_preset: Preset) -> Example | str:
    """One attempt: an example, or the reason it was rejected."""
    d = int(rng.integers(cfg.min_degree, cfg.max_degree + 1))
    n_ops = int(rng.integers(cfg.min_ops, cfg.max_ops + 1))
    n_input = int(rng.integers(max(cfg.min_len, d), cfg.max_len + 1))
    raw = sample_trees(tree_preset, np.array([n_ops]), rng)[0]
    shifts = iter(rng.integers(1, d + 1, size=raw.count(_U)).tolist())
    tree = tuple(f"u_{next(shifts)}" if t == _U else t for t in raw)
    if cfg.mode == "int":
        init: list = rng.integers(-10, 11, size=d).tolist()
    else:
        init = rng.uniform(-10.0, 10.0, size=d).tolist()
    rest = roll(tree, init, n_input + cfg.n_predict - d, cfg.mode)
    if isinstance(rest, str):
        return rest
    terms = tuple(init + rest)
    if equal_gaps(terms, cfg.mode):
        return "equal_gaps"
    return Example(tree, terms, n_input, d, n_ops)


def format_term(value, mode: str) -> str:
    """A term as stored in raw arrays (exact: decimal integers, ``repr`` of floats)."""
    return str(int(value)) if mode == "int" else repr(float(value))


def parse_terms(text: str, mode: str) -> list:
    return [int(t) for t in text.split()] if mode == "int" else [float(t) for t in text.split()]
