"""Steps shared by the generators: drawing operator counts and expressions, converting to
trees, the released rejections (forbidden heads, too long, collapsed by simplification)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from synthmath.expressions.errors import UnsupportedExpression
from synthmath.expressions.numeric import is_valid_released
from synthmath.expressions.operators import Preset, Tree, is_float, n_operators
from synthmath.expressions.prefix import PrefixCodec
from synthmath.expressions.sampling import sample_trees
from synthmath.expressions.sympy_bridge import (
    from_sympy,
    has_forbidden,
    simplify,
    to_sympy,
)

#: what SymPy raises on corner cases (e.g. solve of a transcendental equation): a rejection
SYMPY_ERRORS = (
    RecursionError, ZeroDivisionError, ValueError, TypeError, NotImplementedError,
    AttributeError, KeyError, IndexError, OverflowError, sp.PolynomialError,
)  # fmt: skip

X = sp.Symbol("x")
Y0, Y1, Y2 = sp.Symbol("Y"), sp.Symbol("Y'"), sp.Symbol("Y''")
C, C1, C2 = sp.Symbol("c"), sp.Symbol("c1"), sp.Symbol("c2")


@dataclass(frozen=True)
class GenConfig:
    """What the generators need from the task parameters."""

    preset: Preset
    max_ops: int
    min_ops: int = 0  # operator counts are drawn as the paper's, then clipped to >= min_ops
    sampler: str = "uniform"
    max_len: int = 512  # raw-token bound on input and output (+2 for BOS/EOS)
    max_ops_g: int = 4  # IBP's G
    simplify_prob: float = 0.5  # BWD: simplify f w.p. 1/2; ODEs: the equation w.p. 1/2
    ibp_warm: int = 0  # IBP: BWD pairs known before the first attempt (integration.py)
    validity: str = "released"  # numeric check of a drawn tree: numeric.VALIDITY_CHECKS


@dataclass(frozen=True)
class Example:
    src: Tree  # the integrand, or the equation that vanishes
    tgt: Tree  # the primitive, or the solution
    n_ops: int  # the sampled operator count (of F, f or the solution)


# ---- shared steps ----------------------------------------------------------------------------
def draw_n_ops(rng: np.random.Generator, small: int, low: int, cfg: GenConfig) -> int:
    """With probability 1/40 a count in 0..small, else uniform in low..max_ops (the released
    draws), clipped to cfg.min_ops..cfg.max_ops."""
    if small >= 0 and rng.random() < 1 / 40:
        n = int(rng.integers(0, small + 1))
    else:
        n = int(rng.integers(min(low, cfg.max_ops), cfg.max_ops + 1))
    return int(np.clip(n, cfg.min_ops, cfg.max_ops))


def random_expr(
    rng: np.random.Generator,
    n_ops: int,
    cfg: GenConfig,
    at_least_once: tuple[str, ...] = (),
    exactly_once: tuple[str, ...] = (),
) -> sp.Expr | str:
    """A random SymPy expression with ``n_ops`` operators, or a rejection reason."""
    tree = sample_trees(
        cfg.preset,
        np.array([n_ops]),
        rng,
        sampler=cfg.sampler,
        at_least_once=at_least_once,
        exactly_once=exactly_once,
    )[0]
    if tree is None:
        return "too_few_leaves"
    # the constants count as 1 in the numeric check (it evaluates x only)
    constants_as_one = tuple("i1" if t in exactly_once else t for t in tree)
    if not is_valid_released(constants_as_one, check=cfg.validity):
        return "not_finite"
    try:
        expr = to_sympy(tree)
    except (UnsupportedExpression, ValueError, ZeroDivisionError):
        return "sympy"
    return forbidden(expr) or expr


def forbidden(expr: sp.Expr) -> str | None:
    head = has_forbidden(expr)
    return f"forbidden_{head}" if head else None


def to_tree(expr: sp.Expr) -> Tree | str:
    """The raw tree of ``expr``, or a rejection reason (a head the vocabulary lacks, or a
    float, which SymPy may leave after an evalf: the symbolic vocabulary has no floats)."""
    try:
        tree = from_sympy(expr)
    except UnsupportedExpression as err:
        return f"unsupported_{_head(err)}"
    return "unsupported_float" if any(map(is_float, tree)) else tree


def _head(err: Exception) -> str:
    head = getattr(err, "head", None)  # the SymPy head from_sympy names (erf, zoo, ...)
    if head:
        return str(head).lower()
    words = str(err).split()
    return words[0].strip(":'\"").lower() if words else "expr"


def check_sizes(src: Tree, tgt: Tree, n_ops: int, cfg: GenConfig, answer: Tree) -> str | None:
    """The released rejections: too long (with BOS/EOS) or collapsed by simplification."""
    if _token_len(src) + 2 > cfg.max_len or _token_len(tgt) + 2 > cfg.max_len:
        return "too_long"
    if n_operators(answer) < n_ops / 2:
        return "collapsed"
    return None


def answer_tree(expr: sp.Expr, n_ops: int, cfg: GenConfig) -> Tree | str:
    """The tree of an answer fixed before the expensive steps (BWD's primitive, an ODE's
    solution), or the rejection :func:`check_sizes` would give it at the end (unsupported,
    too long, collapsed): checking it first skips the derivative, the simplification or the
    solves of an attempt that is rejected anyway, with the same accept/reject decisions."""
    tree = to_tree(expr)
    if isinstance(tree, str):
        return tree
    if _token_len(tree) + 2 > cfg.max_len:
        return "too_long"
    if n_operators(tree) < n_ops / 2:
        return "collapsed"
    return tree


#: the released length bound counts model tokens with base-10 integers (whatever int_base the
#: model then uses); integers of any length (trees with floats were rejected by to_tree)
_LENGTH_CODEC = PrefixCodec(int_base=10, float_encoding=None, max_int_digits=None)


def _token_len(tree: Tree) -> int:
    """Model tokens in base 10 (an integer is a sign and its digits)."""
    return _LENGTH_CODEC.n_tokens(tree)


def maybe_simplify(expr: sp.Expr, rng: np.random.Generator, p: float, timeout_s: float):
    if rng.random() < p:
        return simplify(expr, timeout_s)[1]
    return expr


def pair(f: sp.Expr, F: sp.Expr, n: int, cfg: GenConfig, tgt: Tree | None = None) -> Example | str:
    """The example (f, F) after the released rejections; ``tgt``: F's tree if known."""
    src, tgt = to_tree(f), to_tree(F) if tgt is None else tgt
    for t in (src, tgt):
        if isinstance(t, str):
            return t
    return check_sizes(src, tgt, n, cfg, tgt) or Example(src, tgt, n)
