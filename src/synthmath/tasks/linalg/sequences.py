"""Matrices as token sequences, vectorised, and back.

A matrix is ``V<rows> V<cols>`` followed by its coefficients in row-major order, each number
written by a :class:`~synthmath.codecs.numbers.NumberEncoding`; a vector is a ``k x 1`` matrix.
Several matrices (two operands; several outputs) are blocks one after the other. Example,
``add`` of two 2 x 2 matrices in P1000::

    V2 V2 + 314 E-2 - 100 E-2 + 0 E0 + 250 E-1    V2 V2 + 100 E-2 + 200 E-2 + 300 E-2 + 400 E-2
    |------- A = [[3.14, -1], [0, 25]] -------|    |------------ B = [[1, 2], [3, 4]] ----------|

Vocabularies are ``<pad> <s> </s>``, then ``V1 .. V<max_dim>``, then the encoding's
vocabulary, so that the ids of a block are the encoding's local ids plus one offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from synthmath.codecs.numbers import NumberEncoding
from synthmath.core.errors import DecodeError
from synthmath.core.vocab import PAD, Vocab

Block = tuple[np.ndarray, np.ndarray]  # values (n, R, C) zero-padded, shape (n, 2)


def make_vocab(max_dim: int, encoding: NumberEncoding) -> Vocab:
    return Vocab([*(f"V{k}" for k in range(1, max_dim + 1)), *encoding.vocabulary()])


def encode_blocks(
    blocks: Sequence[Block], encoding: NumberEncoding, vocab: Vocab
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of consecutive matrix blocks: ``(ids (n, L) int32 PAD-padded, lengths (n,))``.

    When every example has the padded shape, blocks are concatenated as they are; otherwise
    only the coefficients inside each example's shape are encoded, and scattered to their
    positions (still vectorised).
    """
    dim_base = vocab.offset("V1") - 1  # id of V<k> is dim_base + k
    num_base = vocab.offset(encoding.vocabulary()[0])
    n = len(blocks[0][0])
    fixed = all(
        np.all(shape[:, 0] == values.shape[1]) and np.all(shape[:, 1] == values.shape[2])
        for values, shape in blocks
    )
    if fixed:
        parts = []
        for values, shape in blocks:
            parts.append(shape + dim_base)
            width = values.shape[1] * values.shape[2] * encoding.tokens_per_number
            parts.append(encoding.encode_ids(values).reshape(n, width) + num_base)
        tokens = np.concatenate(parts, axis=1).astype(np.int32)
        return tokens, np.full(n, tokens.shape[1], dtype=np.int64)
    return _encode_ragged(blocks, encoding, dim_base, num_base)


def _encode_ragged(blocks, encoding, dim_base, num_base):
    tpn = encoding.tokens_per_number
    n = len(blocks[0][0])
    sizes = [2 + shape[:, 0] * shape[:, 1] * tpn for _, shape in blocks]
    starts = np.cumsum([np.zeros(n, dtype=np.int64), *sizes], axis=0)  # (blocks + 1, n)
    lengths = starts[-1]
    out = np.full((n, int(lengths.max(initial=0))), PAD, dtype=np.int32)
    examples = np.arange(n)
    for j, (values, shape) in enumerate(blocks):
        out[examples, starts[j]] = shape[:, 0] + dim_base
        out[examples, starts[j] + 1] = shape[:, 1] + dim_base
        inside = (np.arange(values.shape[1])[None, :, None] < shape[:, 0, None, None]) & (
            np.arange(values.shape[2])[None, None, :] < shape[:, 1, None, None]
        )
        ex, row, col = np.nonzero(inside)
        ids = encoding.encode_ids(values[ex, row, col]) + num_base  # (count, tpn)
        first = starts[j][ex] + 2 + (row * shape[ex, 1] + col) * tpn
        out[ex[:, None], first[:, None] + np.arange(tpn)] = ids
    return out, lengths


def decode_blocks(
    tokens: Sequence[str], kinds: Sequence[str], encoding: NumberEncoding, max_dim: int
) -> list[np.ndarray]:
    """The matrices (2-D) and vectors (1-D) of ``kinds`` written one after the other.

    Raises :class:`DecodeError` unless the tokens are exactly those blocks: dimension tokens
    ``V1..V<max_dim>``, vectors with one column, the right number of well-formed numbers.
    """
    tpn = encoding.tokens_per_number
    out, pos = [], 0
    for kind in kinds:
        rows, cols = (_dim(tokens, pos + i, max_dim) for i in (0, 1))
        if kind == "vector" and cols != 1:
            raise DecodeError(f"a vector must have 1 column, got V{cols}")
        pos += 2
        count = rows * cols
        if pos + count * tpn > len(tokens):
            raise DecodeError(f"sequence ends inside a {rows}x{cols} block")
        values = encoding.decode(tokens[pos : pos + count * tpn], count)
        pos += count * tpn
        out.append(values if kind == "vector" else values.reshape(rows, cols))
    if pos != len(tokens):
        raise DecodeError(f"{len(tokens) - pos} extra tokens after the last block")
    return out


@cache
def _dim_tokens(max_dim: int) -> dict[str, int]:
    return {f"V{k}": k for k in range(1, max_dim + 1)}


def _dim(tokens: Sequence[str], pos: int, max_dim: int) -> int:
    if pos >= len(tokens):
        raise DecodeError("sequence ends where a dimension token was expected")
    k = _dim_tokens(max_dim).get(tokens[pos])
    if k is None:
        raise DecodeError(f"expected a dimension token V1..V{max_dim}, got {tokens[pos]!r}")
    return k
