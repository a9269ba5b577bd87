"""The logic-circuit zoo (specs/boolean.md "Benchmarks"): truth tables defined in Python.

Each circuit ``<kind>_<k>`` has n inputs and one or more outputs; its table lists the 2**n
rows in the task's order (row r has ``x_j = (r >> j) & 1``). Multi-output circuits give one
problem per output bit (``adder_2[1]`` is bit 1 of the sum, 0 the least significant). Numbers
on several inputs are read as the release reads them: ``comparator``, ``adder`` and
``multiplier`` take a as x_0..x_(k-1) and b as x_k..x_(2k-1), the first input of each the most
significant bit; ``multiplexer`` and ``decoder`` read their select inputs x_0 first as the
least significant bit.

- ``multiplexer_k`` (n = k + 2**k): the data input x_(k + s), s the select value of x_0..x_(k-1)
- ``majority_n``: at least n/2 inputs are 1 (ties count as 1, as released)
- ``parity_n``: an odd number of 1s; ``xnor_n``: its complement (the release's "parity")
- ``all_n``, ``any_n``
- ``comparator_k`` (n = 2k): a > b
- ``adder_k`` (n = 2k, k + 1 outputs): the bits of a + b
- ``multiadder_n`` (floor(log2 n) + 1 outputs): the bits of the number of 1 inputs
- ``multiplier_k`` (n = 2k, 2k outputs): the bits of a * b
- ``decoder_n`` (2**n outputs): output i is 1 iff the inputs (x_0 least significant) read i
- ``random_n``: a fixed random table (seeded by n)

None of the xor-like ones (parity, xnor, adders) is in the training distribution (no xor is
sampled): they are out-of-distribution probes. Each output also gets a reference formula
(structural where it is short, else SymPy's two-level form, else its minterms), used for the
equivalence and complexity comparisons of the scoring.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from synthmath.core.errors import ConfigError
from synthmath.tasks.boolean import formulas as F
from synthmath.tasks.boolean.generator import Example, shortest, two_level

KINDS = (
    "multiplexer",
    "majority",
    "parity",
    "xnor",
    "all",
    "any",
    "comparator",
    "adder",
    "multiadder",
    "multiplier",
    "decoder",
    "random",
)
#: the zoo a ``source=circuits`` test set cycles through (in this order)
ZOO = (
    "multiplexer_2", "majority_5", "majority_7", "parity_4", "parity_6", "xnor_6", "all_6",
    "any_6", "comparator_2", "comparator_3", "adder_2", "adder_3", "multiadder_4",
    "multiplier_2", "multiplier_3", "decoder_3", "random_4", "random_6",
)  # fmt: skip
#: largest input count of a circuit (a table of 2**16 rows)
MAX_INPUTS = 16


@dataclass(frozen=True)
class Circuit:
    name: str
    n_vars: int
    outputs: np.ndarray  # (2**n_vars, n_outputs) uint8

    @property
    def n_outputs(self) -> int:
        return self.outputs.shape[1]

    def problems(self) -> list[str]:
        """One problem name per output bit (the circuit's name when it has one output)."""
        if self.n_outputs == 1:
            return [self.name]
        return [f"{self.name}[{i}]" for i in range(self.n_outputs)]


def _bits(value: np.ndarray, count: int) -> np.ndarray:
    value = np.asarray(value, dtype=np.int64)
    return ((value[:, None] >> np.arange(count)[None, :]) & 1).astype(np.uint8)


def _number_msb_first(x: np.ndarray) -> np.ndarray:
    k = x.shape[1]
    return (x.astype(np.int64) << np.arange(k - 1, -1, -1)[None, :]).sum(axis=1)


def parse_name(name: str) -> tuple[str, int]:
    kind, _, size = name.rpartition("_")
    if kind not in KINDS or not size.isdigit() or int(size) < 1:
        raise ConfigError(
            f"circuit {name!r}: expected <kind>_<size>, kind one of {', '.join(KINDS)}"
        )
    return kind, int(size)


@functools.lru_cache(maxsize=64)
def circuit(name: str) -> Circuit:
    """The circuit ``name`` (e.g. ``multiplexer_2``); ConfigError for an unknown or too large one."""
    kind, k = parse_name(name)
    n = {"multiplexer": k + 2**k, "comparator": 2 * k, "adder": 2 * k, "multiplier": 2 * k}.get(
        kind, k
    )
    if n > MAX_INPUTS:
        raise ConfigError(f"circuit {name!r}: {n} inputs, at most {MAX_INPUTS}")
    r = np.arange(2**n, dtype=np.int64)
    x = _bits(r, n)
    ones = x.sum(axis=1)
    if kind == "multiplexer":
        select = (x[:, :k].astype(np.int64) << np.arange(k)[None, :]).sum(axis=1)
        out = x[np.arange(len(r)), k + select][:, None]
    elif kind == "majority":
        out = (2 * ones >= n)[:, None]
    elif kind == "parity":
        out = (ones % 2 == 1)[:, None]
    elif kind == "xnor":
        out = (ones % 2 == 0)[:, None]
    elif kind == "all":
        out = (ones == n)[:, None]
    elif kind == "any":
        out = (ones > 0)[:, None]
    elif kind == "multiadder":
        out = _bits(ones, int(np.log2(n)) + 1)
    elif kind == "decoder":
        out = r[:, None] == np.arange(2**n)[None, :]
    elif kind == "random":
        out = np.random.default_rng(n).integers(0, 2, (len(r), 1))
    else:
        a, b = _number_msb_first(x[:, :k]), _number_msb_first(x[:, k:])
        if kind == "comparator":
            out = (a > b)[:, None]
        elif kind == "adder":
            out = _bits(a + b, k + 1)
        else:
            out = _bits(a * b, 2 * k)
    return Circuit(name, n, np.asarray(out, dtype=np.uint8))


# ---- reference formulas ----------------------------------------------------------------------
def _var(j: int) -> F.Tree:
    return ("var", j)


def _gate(kind: str, children: list[F.Tree]) -> F.Tree:
    return children[0] if len(children) == 1 else F._join(kind, children)


def _literal(j: int, value: int) -> F.Tree:
    return _var(j) if value else ("not", _var(j))


def _structural(kind: str, k: int, n: int, output: int) -> F.Tree | None:
    """A short formula for the circuits that have one; None for the others."""
    xs = [_var(j) for j in range(n)]
    if kind == "multiplexer":
        terms = [
            _gate("and", [_literal(j, (s >> j) & 1) for j in range(k)] + [xs[k + s]])
            for s in range(2**k)
        ]
        return _gate("or", terms)
    if kind == "majority" and n <= 9:
        need = -(-n // 2)
        subsets = itertools.combinations(range(n), need)
        return _gate("or", [_gate("and", [xs[j] for j in s]) for s in subsets])
    if kind in ("parity", "xnor"):
        chain = _gate("xor", xs)
        return chain if kind == "parity" else ("not", chain)
    if kind in ("all", "any"):
        return _gate("and" if kind == "all" else "or", xs)
    if kind == "decoder":
        return _gate("and", [_literal(j, (output >> j) & 1) for j in range(n)])
    if kind in ("comparator", "adder"):
        a = [xs[k - 1 - s] for s in range(k)]  # a[s]: the input of significance s
        b = [xs[2 * k - 1 - s] for s in range(k)]
        if kind == "comparator":  # a > b: at the highest differing bit, a has the 1
            terms = []
            for s in range(k):
                equal_above = [("not", _gate("xor", [a[t], b[t]])) for t in range(s + 1, k)]
                terms.append(_gate("and", [a[s], ("not", b[s]), *equal_above]))
            return _gate("or", terms)
        carry: F.Tree = F.FALSE
        for s in range(k):  # ripple carry
            if s == output:
                return F.simplify_rules(_gate("xor", [a[s], b[s], carry]))
            both = _gate("and", [a[s], b[s]])
            carry = _gate("or", [both, _gate("and", [carry, _gate("xor", [a[s], b[s]])])])
        return F.simplify_rules(carry)
    return None


def reference_formula(name: str, output: int = 0) -> F.Tree:
    """A formula of output bit ``output`` of circuit ``name`` (see module docstring)."""
    c = circuit(name)
    kind, k = parse_name(name)
    tree = _structural(kind, k, c.n_vars, output)
    if tree is not None:
        return tree
    bits = c.outputs[:, output]
    if c.n_vars <= 6:
        return shortest(two_level(bits, c.n_vars))
    rows = np.flatnonzero(bits) if bits.mean() <= 0.5 else np.flatnonzero(bits == 0)
    terms = [_gate("and", [_literal(j, (r >> j) & 1) for j in range(c.n_vars)]) for r in rows]
    dnf = _gate("or", terms) if len(terms) else F.FALSE
    return dnf if bits.mean() <= 0.5 else ("not", dnf)


def zoo_problems(names: tuple[str, ...], max_vars: int, max_rows: int) -> list[tuple[str, int]]:
    """``(circuit, output)`` of every output of ``names`` with at most ``max_vars`` inputs and
    ``max_rows`` rows, in order."""
    out = []
    for name in names:
        c = circuit(name)
        if c.n_vars <= max_vars and 2**c.n_vars <= max_rows:
            out += [(name, i) for i in range(c.n_outputs)]
    return out


@functools.lru_cache(maxsize=256)
def zoo_example(name: str, output: int) -> tuple[str, Example]:
    """(problem name, example) of one circuit output: its full table, clean, and its
    reference formula as the answer."""
    c = circuit(name)
    r = np.arange(2**c.n_vars)
    x = _bits(r, c.n_vars)
    tree = reference_formula(name, output)
    problem = c.problems()[output]
    example = Example(F.to_prefix(tree), x, c.outputs[:, output].copy(), len(r), c.n_vars,
                      F.complexity(tree), 0.0, 0.0)  # fmt: skip
    return problem, example
