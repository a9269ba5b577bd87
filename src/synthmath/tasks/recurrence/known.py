"""Classic sequences shipped as definitions (``known/sequences.json``), terms computed here;
and the float model's out-of-vocabulary probes (:data:`PROBES`).

OEIS is not available offline: each sequence is a recurrence in the engine's raw prefix form
(``add u_1 u_2``; n is the index of the term, the first term has n = 0) with its initial
terms, or a named generator (``primes``, the non-recurrent control). The file is read as data
only: its trees are checked token by token against the integer operators and leaves and
evaluated by :func:`~synthmath.expressions.numeric.evaluate_int` (nothing is ``eval``-ed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from scipy import special

from synthmath.core.errors import ConfigError
from synthmath.expressions.numeric import INT_OPERATORS
from synthmath.expressions.operators import Tree, is_int, is_variable, subtree_end
from synthmath.tasks.recurrence.generator import roll, shift

KNOWN_FILE = Path(__file__).parent / "known" / "sequences.json"
GENERATORS = ("primes",)


@dataclass(frozen=True)
class KnownSequence:
    name: str
    oeis: str
    recurrence: Tree | None  # None: a generator
    initial: tuple[int, ...] = ()
    generator: str | None = None

    def terms(self, count: int) -> list[int]:
        """The first ``count`` terms (u_0, u_1, ...)."""
        if self.generator == "primes":
            return primes(count)
        out = list(self.initial[:count])
        rest = roll(self.recurrence, out, count - len(out), "int") if count > len(out) else []
        if isinstance(rest, str):
            raise ValueError(f"known sequence {self.name}: the recurrence fails ({rest})")
        return out + rest


def primes(count: int) -> list[int]:
    """The first ``count`` primes (trial division by the primes found so far)."""
    found: list[int] = []
    k = 2
    while len(found) < count:
        if all(k % p for p in found if p * p <= k):
            found.append(k)
        k += 1
    return found


def load_sequences(path: str | Path = KNOWN_FILE) -> list[KnownSequence]:
    """The sequences of ``path``; a :class:`ConfigError` naming the file, entry and field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read known sequences ({err})") from None
    entries = data.get("sequences") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected an object with a list 'sequences'")
    return [_entry(path, i, e) for i, e in enumerate(entries)]


@cache
def classic_sequences() -> tuple[KnownSequence, ...]:
    """The shipped classic sequences."""
    return tuple(load_sequences())


def _entry(path: Path, i: int, entry: object) -> KnownSequence:
    where = f"{path}: sequences[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ConfigError(f"{where}.name: expected an object with a string name")
    where = f"{path}: sequence {entry['name']!r}"
    oeis = str(entry.get("oeis", ""))
    if "generator" in entry:
        if entry["generator"] not in GENERATORS:
            raise ConfigError(f"{where}.generator: unknown; allowed: {', '.join(GENERATORS)}")
        return KnownSequence(entry["name"], oeis, None, generator=entry["generator"])
    text, initial = entry.get("recurrence"), entry.get("initial", [])
    if not isinstance(text, str) or not text.split():
        raise ConfigError(f"{where}.recurrence: expected a raw prefix tree such as 'add u_1 u_2'")
    tree = tuple(text.split())
    for token in tree:
        if not (token in INT_OPERATORS or is_int(token) or _is_term_variable(token)):
            raise ConfigError(f"{where}.recurrence: token {token!r} is not allowed")
    try:
        if subtree_end(tree, 0) != len(tree):
            raise ValueError("tokens after a complete tree")
    except ValueError as err:
        raise ConfigError(f"{where}.recurrence: not one tree ({err})") from None
    if not isinstance(initial, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in initial
    ):
        raise ConfigError(f"{where}.initial: expected a list of integers")
    if len(initial) < shift(tree):
        raise ConfigError(f"{where}.initial: needs {shift(tree)} terms (the recurrence reads u_k)")
    return KnownSequence(entry["name"], oeis, tree, tuple(initial))


def _is_term_variable(token: str) -> bool:
    return token == "n" or (is_variable(token) and token.startswith("u_"))


@dataclass(frozen=True)
class Probe:
    """An out-of-vocabulary float sequence u_n = f(n) (d'Ascoli et al. 2022, abstract: the
    float model approximates bessel0 and 1.644934 by pi^2/6). ``recurrence`` is the reference
    approximation in the model's vocabulary (the paper's), scored like any hypothesis: its
    error is what an exact answer cannot beat."""

    name: str
    about: str
    function: Callable[[np.ndarray], np.ndarray]
    recurrence: Tree
    initial: tuple[float, ...] = ()

    @property
    def oeis(self) -> str:
        return ""

    def terms(self, count: int) -> list[float]:
        """The first ``count`` terms (u_0, u_1, ...) as Python floats."""
        return [float(v) for v in self.function(np.arange(count, dtype=np.float64))]


#: pi^2 / 6 = zeta(2), written as a number so that the model must recognise it
ZETA2 = 1.6449340668482264

PROBES: tuple[Probe, ...] = (
    Probe(
        "bessel_j0",
        "J0(n); reference (sin n + cos n) / sqrt(pi n), its large-n form (the paper's answer)",
        special.j0,
        tuple("div add sin n cos n sqrt mul pi n".split()),
    ),
    Probe(
        "bessel_j1",
        "J1(n); reference (sin n - cos n) / sqrt(pi n), its large-n form",
        special.j1,
        tuple("div sub sin n cos n sqrt mul pi n".split()),
    ),
    Probe(
        "zeta2_power",
        "1.6449340668482264^n; reference u_n = (pi^2 / 6) u_(n-1)",
        lambda n: ZETA2**n,
        tuple("mul div mul pi pi i6 u_1".split()),
        (1.0,),
    ),
)
