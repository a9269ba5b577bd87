"""Model tokens of raw trees: integers in a base, floats in a number encoding (expressions.md).

A raw tree (:mod:`synthmath.expressions.operators`) keeps its operators, variables and named
constants as one token each; the codec rewrites only the numeric leaves:

- an integer ``i-34`` becomes a sign token and its digits in ``int_base``, most significant
  first: ``INT- 3 4`` (base 10), ``INT+ 0`` for zero; digits are decimal strings ``0`` ..
  ``str(int_base - 1)`` (base 100: ``i1234`` -> ``INT+ 12 34``); any size. A rational stays
  ``div INT+ p INT+ q`` (raw writes ``div i<p> i<q>``);
- a float ``f<repr>`` becomes one block of the :class:`~synthmath.codecs.numbers.NumberEncoding`
  ``float_encoding`` (P1000: ``f0.3142`` -> ``+ 314 E-3``), rounded to its precision.

Examples (base 10): 2 + 3(5 + 2) -> ``add INT+ 2 mul INT+ 3 add INT+ 5 INT+ 2``;
(x - 1) e^x -> ``mul add INT- 1 x exp x``; -x/2 -> ``mul div INT- 1 INT+ 2 x``.

Parsing is one left-to-right pass with an operand counter (no recursion) and is unambiguous:
digits are bare numbers, every float block starts with a token no operand starts with
(``+``/``-`` for P10, P1000, P10000; ``N...`` for B1999 and FP15) and operators are words. A
malformed sequence raises :class:`ExprParseError` naming the position and the cause, so
scoring counts it wrong. Non-canonical input that is well defined (leading zero digits)
parses; :meth:`PrefixCodec.encode` never writes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from synthmath.codecs.numbers import NAN_TOKEN, get_encoding
from synthmath.core.errors import ConfigError, DecodeError
from synthmath.expressions.errors import ExprParseError
from synthmath.expressions.operators import (
    CONSTANTS,
    OPERATORS,
    Tree,
    float_token,
    int_token,
    is_float,
    is_int,
    is_variable,
)

INT_POS = "INT+"
INT_NEG = "INT-"
_DECIMAL = re.compile(r"^[0-9]+$")


class PrefixCodec:
    """Raw trees <-> model token lists for one integer base and one float encoding.

    ``float_encoding=None`` turns floats off (a float leaf then does not encode).
    ``max_len`` bounds the tokens :meth:`parse` accepts and ``max_int_digits`` the digits of
    one integer (in ``int_base``); :meth:`encode` refuses an integer over ``max_int_digits``
    too, so everything it writes parses (``None``: no digit limit).
    """

    def __init__(
        self,
        int_base: int = 10,
        float_encoding: str | None = "P1000",
        float_precision: int | None = None,
        max_len: int = 512,
        max_int_digits: int | None = 100,
    ) -> None:
        if not isinstance(int_base, int) or isinstance(int_base, bool) or int_base < 2:
            raise ConfigError(f"int_base: expected an integer >= 2, got {int_base!r}")
        if not isinstance(max_len, int) or max_len < 1:
            raise ConfigError(f"max_len: expected a positive integer, got {max_len!r}")
        if max_int_digits is not None and (
            not isinstance(max_int_digits, int) or max_int_digits < 1
        ):
            raise ConfigError(
                f"max_int_digits: expected a positive integer or None, got {max_int_digits!r}"
            )
        self.int_base = int_base
        self.max_len = max_len
        self.max_int_digits = max_int_digits
        self.float_encoding = float_encoding
        self.encoding = (
            None if float_encoding is None else get_encoding(float_encoding, float_precision)
        )
        self._digits = [str(d) for d in range(int_base)]
        self._digit_value = {t: d for d, t in enumerate(self._digits)}
        self._float_vocab = frozenset(self.encoding.vocabulary()) if self.encoding else frozenset()
        self._cache: dict[str, tuple[str, ...]] = {}

    def __repr__(self) -> str:
        return (
            f"PrefixCodec(int_base={self.int_base}, float_encoding={self.float_encoding!r}, "
            f"precision={self.encoding.precision if self.encoding else None}, "
            f"max_len={self.max_len}, max_int_digits={self.max_int_digits})"
        )

    # ---- vocabulary ----------------------------------------------------------------------
    def vocabulary(self, operators: Iterable[str], leaves: Iterable[str]) -> list[str]:
        """Every model token: ``operators``, the variable/constant ``leaves``, ``INT+ INT-``,
        the digits of the base, then the float encoding's tokens (each token once, first
        occurrence kept, so the order is fixed)."""
        operators, leaves = list(operators), list(leaves)
        for name in operators:
            if name not in OPERATORS:
                raise ValueError(f"vocabulary: unknown operator {name!r}")
        for name in leaves:
            if not (is_variable(name) or name in CONSTANTS):
                raise ValueError(f"vocabulary: {name!r} is not a variable or a named constant")
        tokens = [*operators, *leaves, INT_POS, INT_NEG, *self._digits]
        if self.encoding is not None:
            tokens += self.encoding.vocabulary()
        return list(dict.fromkeys(tokens))

    # ---- encoding ------------------------------------------------------------------------
    def encode_token(self, token: str) -> tuple[str, ...]:
        """The model tokens of one raw token (cached); ValueError for an unknown raw token,
        a non-finite or out-of-range float, floats when they are off, or an integer over
        ``max_int_digits``."""
        out = self._cache.get(token)
        if out is None:
            out = self._encode_token(token)
            self._cache[token] = out
        return out

    def _encode_token(self, token: str) -> tuple[str, ...]:
        if token in OPERATORS or token in CONSTANTS or is_variable(token):
            return (token,)
        if is_int(token):
            return self.encode_int(int(token[1:]))
        if is_float(token):
            return self.encode_float(float(token[1:]))
        raise ValueError(f"encode: unknown raw token {token!r}")

    def encode_int(self, value: int) -> tuple[str, ...]:
        """``INT+``/``INT-`` and the digits of ``|value|`` in ``int_base``."""
        sign = INT_NEG if value < 0 else INT_POS
        a = abs(value)
        if self.int_base == 10:
            digits = list(str(a))
        else:
            rev = []
            while True:
                a, d = divmod(a, self.int_base)
                rev.append(self._digits[d])
                if not a:
                    break
            digits = rev[::-1]
        if self.max_int_digits is not None and len(digits) > self.max_int_digits:
            raise ValueError(
                f"encode: integer with {len(digits)} digits in base {self.int_base} "
                f"(max_int_digits={self.max_int_digits})"
            )
        return (sign, *digits)

    def encode_float(self, value: float) -> tuple[str, ...]:
        """One block of the float encoding (the value rounded to its precision)."""
        if self.encoding is None:
            raise ValueError(f"encode: float leaf {value!r} but floats are off")
        if not np.isfinite(value):
            raise ValueError(f"encode: non-finite float {value!r}")
        block = tuple(self.encoding.encode([value]))
        if NAN_TOKEN in block:
            raise ValueError(f"encode: float {value!r} is outside the range of {self.encoding}")
        return block

    def encode(self, tree: Tree) -> list[str]:
        """The model tokens of a raw tree (tokens are not checked to form one tree)."""
        out: list[str] = []
        for token in tree:
            out.extend(self.encode_token(token))
        return out

    def n_tokens(self, tree: Tree) -> int:
        """``len(self.encode(tree))`` without building the list (length bounds in hot loops);
        the same ValueError as :meth:`encode` for a token it cannot encode."""
        return sum(len(self.encode_token(token)) for token in tree)

    def encode_many(self, raw: np.ndarray | Iterable[str]) -> list[list[str]]:
        """Model tokens of many space-joined raw trees (a shard's ``<U`` array); each distinct
        raw token is encoded once."""
        cache = self._cache
        result = []
        for text in np.asarray(raw).ravel().tolist():
            out: list[str] = []
            for token in text.split():
                block = cache.get(token)
                if block is None:
                    block = self.encode_token(token)
                out.extend(block)
            result.append(out)
        return result

    def round_floats(self, tree: Tree) -> Tree:
        """``tree`` with every float leaf rounded as the encoding rounds it: what
        ``parse(encode(tree))`` gives back (integers written canonically)."""
        return tuple(self._canonical(t) for t in tree)

    def _canonical(self, token: str) -> str:
        if is_int(token):
            return int_token(int(token[1:]))
        if is_float(token) and self.encoding is not None:
            return float_token(float(self.encoding.round(np.array([float(token[1:])]))[0]))
        return token

    # ---- parsing -------------------------------------------------------------------------
    def parse(self, tokens: Sequence[str]) -> Tree:
        """The raw tree of a model token sequence (iterative); :class:`ExprParseError` naming
        the position (0-based token index) and the cause for a malformed sequence."""
        n = len(tokens)
        if n == 0:
            raise ExprParseError("parse: empty token sequence")
        if n > self.max_len:
            raise ExprParseError(f"parse: {n} tokens, more than max_len={self.max_len}")
        out: list[str] = []
        need = 1  # operands still to read
        i = 0
        while i < n:
            if need == 0:
                raise ExprParseError(
                    f"parse: trailing tokens from position {i} ({tokens[i]!r}) after a "
                    "complete expression"
                )
            token = tokens[i]
            op = OPERATORS.get(token)
            if op is not None:
                out.append(token)
                need += op.arity - 1
                i += 1
            elif token == INT_POS or token == INT_NEG:
                value, i = self._parse_int(tokens, i)
                out.append(int_token(value))
                need -= 1
            elif token in CONSTANTS or is_variable(token):
                out.append(token)
                need -= 1
                i += 1
            elif _DECIMAL.match(token):
                raise ExprParseError(f"parse: digit {token!r} at position {i} outside a number")
            elif token in self._float_vocab:
                value, i = self._parse_float(tokens, i)
                out.append(float_token(value))
                need -= 1
            else:
                raise ExprParseError(f"parse: unknown token {token!r} at position {i}")
        if need:
            raise ExprParseError(
                f"parse: sequence ends inside an operand ({need} operand(s) missing after "
                f"{n} tokens)"
            )
        return tuple(out)

    def _parse_int(self, tokens: Sequence[str], start: int) -> tuple[int, int]:
        """(value, next position) of the integer whose sign token is at ``start``."""
        base, digit_value, limit = self.int_base, self._digit_value, self.max_int_digits
        i = start + 1
        value = 0
        while i < len(tokens):
            token = tokens[i]
            d = digit_value.get(token)
            if d is None:
                if _DECIMAL.match(token):
                    raise ExprParseError(
                        f"parse: digit {token!r} at position {i} outside base {base}"
                    )
                break
            value = value * base + d
            i += 1
            if limit is not None and i - start - 1 > limit:
                raise ExprParseError(
                    f"parse: integer at position {start} has more than max_int_digits={limit} "
                    "digits"
                )
        if i == start + 1:
            raise ExprParseError(f"parse: {tokens[start]} without digits at position {start}")
        return (-value if tokens[start] == INT_NEG else value), i

    def _parse_float(self, tokens: Sequence[str], start: int) -> tuple[float, int]:
        """(value, next position) of the float block that starts at ``start``."""
        k = self.encoding.tokens_per_number
        block = tokens[start : start + k]
        if len(block) < k:
            raise ExprParseError(
                f"parse: float block at position {start} cut short ({len(block)} of {k} tokens)"
            )
        if NAN_TOKEN in block:
            raise ExprParseError(f"parse: float block at position {start} holds {NAN_TOKEN}")
        try:
            value = float(self.encoding.decode(list(block), 1)[0])
        except DecodeError as err:
            raise ExprParseError(f"parse: float block at position {start}: {err}") from None
        return value, start + k
