"""Errors of the symbolic engine."""

from __future__ import annotations

from synthmath.core.errors import DecodeError


class ExprParseError(DecodeError):
    """A token sequence that is not one well-formed prefix expression (scoring counts it wrong).

    The message names the position and the cause (unknown token, sequence ends inside an
    operand, trailing tokens, a number block cut short, ...).
    """


class UnsupportedExpression(ValueError):
    """A SymPy expression the engine does not represent (zoo, oo, nan, I, Integral, ...);
    generators count it as a rejection."""


class TimeoutExpired(Exception):
    """A computation ran past its time limit (:func:`synthmath.expressions.workers.time_limit`)."""
