"""Token layouts of the arithmetic task: inputs and position-aligned targets.

Every example has three written widths (stored per example in the raw batch): ``a_width``,
``b_width`` (operands, zero-padded) and ``answer_width`` (the answer, zero-padded to the
largest value the operands allow, so that the answer positions follow from the input alone).
The input is ``a op b`` (``W = a_width + 1 + b_width`` tokens), followed with
``layout="slots"`` by ``=`` and ``answer_width`` slot tokens ``_``. The target has one token
per input position: the answer digits on the answer positions, PAD everywhere else.

``layout="aligned"`` (default): the answer sits on the input itself, its units digit on an
operand's units digit: digits most significant first, the answer ends on the last input
position (``b``'s units digit); with ``reversed=True`` (every number least significant
first) the answer starts on the first input position (``a``'s units digit). Either way the
answer digit of place ``10**k`` sits on the digit of place ``10**k`` of one operand (``b``,
or ``a`` when reversed), whatever the length. Example 57 + 68 = 125 (``.`` is PAD)::

    aligned            src  5 7 + 6 8            tgt  . . 1 2 5
    aligned, reversed  src  7 5 + 8 6            tgt  5 2 1 . .
    slots              src  5 7 + 6 8 = _ _ _    tgt  . . . . . . 1 2 5

Multiplication writes ``*`` (``12 * 034`` with the second operand padded to 3 digits);
modular addition writes ``+`` and its answer has the digits of ``modulus - 1``.
"""

from __future__ import annotations

import numpy as np

from synthmath.core.vocab import PAD, Vocab

DIGITS = tuple(str(d) for d in range(10))
OP_TOKENS = {"add": "+", "modadd": "+", "mul": "*"}
EQUALS, SLOT = "=", "_"
LAYOUTS = ("aligned", "slots")


def make_src_vocab() -> Vocab:
    """Digits first (ids 3..12, as in the target vocabulary), then ``+ * = _``."""
    return Vocab([*DIGITS, "+", "*", EQUALS, SLOT])


def make_tgt_vocab() -> Vocab:
    """Digits only (ids 3..12)."""
    return Vocab(DIGITS)


DIGIT0 = make_src_vocab().offset("0")  # same id in both vocabularies


def _widths(raw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        raw["a_width"].astype(np.int64),
        raw["b_width"].astype(np.int64),
        raw["answer_width"].astype(np.int64),
    )


def _gather(digits: np.ndarray, place: np.ndarray) -> np.ndarray:
    """``digits[i, place[i, j]]`` (place clipped to the array; callers mask the outside)."""
    index = np.clip(place, 0, digits.shape[1] - 1)
    return np.take_along_axis(digits, index, axis=1).astype(np.int64)


def src_lengths(raw: dict[str, np.ndarray], layout: str) -> np.ndarray:
    """Input length of each example."""
    wa, wb, wc = _widths(raw)
    return wa + 1 + wb + ((1 + wc) if layout == "slots" else 0)


def answer_start(raw: dict[str, np.ndarray], layout: str, reverse: bool) -> np.ndarray:
    """First input position of each example's answer."""
    wa, wb, wc = _widths(raw)
    body = wa + 1 + wb
    if layout == "slots":
        return body + 1
    return np.zeros_like(body) if reverse else body - wc


def encode_src(
    raw: dict[str, np.ndarray], op: str, layout: str, reverse: bool, vocab: Vocab
) -> tuple[np.ndarray, np.ndarray]:
    """Input token ids ``(n, L)`` padded with PAD, and lengths ``(n,)``."""
    wa, wb, wc = (w[:, None] for w in _widths(raw))
    lengths = src_lengths(raw, layout)
    j = np.arange(int(lengths.max()) if len(lengths) else 0)[None, :]
    body = wa + 1 + wb
    place_a = j if reverse else wa - 1 - j
    place_b = j - wa - 1 if reverse else body - 1 - j
    conditions = [j < wa, j == wa, (j > wa) & (j < body)]
    choices = [
        DIGIT0 + _gather(raw["a"], place_a),
        np.full(j.shape, vocab.offset(OP_TOKENS[op])),
        DIGIT0 + _gather(raw["b"], place_b),
    ]
    if layout == "slots":
        conditions += [j == body, (j > body) & (j <= body + wc)]
        choices += [np.full(j.shape, vocab.offset(EQUALS)), np.full(j.shape, vocab.offset(SLOT))]
    ids = np.select(conditions, choices, default=PAD)
    return ids.astype(np.int64), lengths


def encode_tgt(
    raw: dict[str, np.ndarray], layout: str, reverse: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Target ids aligned with :func:`encode_src` (same shape, PAD off the answer positions)."""
    lengths = src_lengths(raw, layout)
    start = answer_start(raw, layout, reverse)[:, None]
    wc = raw["answer_width"].astype(np.int64)[:, None]
    j = np.arange(int(lengths.max()) if len(lengths) else 0)[None, :]
    place = j - start if reverse else start + wc - 1 - j
    inside = (j >= start) & (j < start + wc)
    ids = np.where(inside, DIGIT0 + _gather(raw["answer"], place), PAD)
    return ids.astype(np.int64), lengths


def answer_strings(raw: dict[str, np.ndarray], reverse: bool) -> list[list[str]]:
    """The answer tokens of each example in position order (what a correct model predicts)."""
    out = []
    for digits, width in zip(raw["answer"], raw["answer_width"].tolist()):
        order = digits[:width] if reverse else digits[:width][::-1]
        out.append([DIGITS[d] for d in order.tolist()])
    return out
