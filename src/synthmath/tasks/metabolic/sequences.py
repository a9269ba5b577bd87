"""Metabolic networks and their answers as token sequences (vectorised), and scoring.

Layout of the input (``k`` numbers per flux: ``rate``, or ``vmax km`` for Michaelis-Menten)::

    V<n>                                   node count
    x<i> x<j> <k numbers>                  each internal edge i -> j, in stored order
    IN x<i> <rate>                         each inflow into node i
    OUT x<i> <k numbers>                   each sink edge from node i to the outside

Outputs: ``YES`` / ``NO`` (existence); the n concentrations ``x1..xn`` (concentrations); the
flux of every edge in input order, then the flux of every sink edge (flows). Each number is
written in one :class:`~synthmath.codecs.numbers.NumberEncoding` (3 significant digits).

Everything is built on the padded arrays of a raw batch: every list segment is laid out at
full padded width with a validity mask (from the counts ``n_edges``, ``n_in``, ``n_out``,
``n_nodes``, never from the padding values), and one masked compaction packs each row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmath.codecs.numbers import NumberEncoding
from synthmath.core.errors import DecodeError
from synthmath.core.task import RawBatch
from synthmath.core.vocab import PAD, Vocab

#: tolerances in percent, as they appear in metric names (``acc_tol5`` ...)
TOLERANCES = (5, 2, 1)
#: relative errors use ``max(|truth|, FLOOR_FRACTION * max |truth|)`` as denominator
FLOOR_FRACTION = 1e-3


def src_vocab(max_nodes: int, encoding: NumberEncoding) -> Vocab:
    """``V1..V<max_nodes>`` (node counts), ``x1..x<max_nodes>`` (nodes), ``IN OUT``, numbers."""
    counts = [f"V{k}" for k in range(1, max_nodes + 1)]
    nodes = [f"x{k}" for k in range(1, max_nodes + 1)]
    return Vocab([*counts, *nodes, "IN", "OUT", *encoding.vocabulary()])


def tgt_vocab(answer: str, encoding: NumberEncoding) -> Vocab:
    return Vocab(["YES", "NO"] if answer == "existence" else encoding.vocabulary())


def _compact(pieces: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate (ids (n, w), valid (n, w)) pieces and pack each row's valid ids to the left."""
    ids = np.concatenate([p for p, _ in pieces], axis=1)
    valid = np.concatenate([v for _, v in pieces], axis=1)
    lengths = valid.sum(axis=1)
    out = np.full((len(ids), int(lengths.max(initial=0))), PAD, dtype=np.int32)
    rows, _ = np.nonzero(valid)
    cols = (np.cumsum(valid, axis=1) - 1)[valid]
    out[rows, cols] = ids[valid]
    return out, lengths.astype(np.int64)


def _count_mask(counts: np.ndarray, width: int) -> np.ndarray:
    return np.arange(width)[None, :] < np.asarray(counts)[:, None]


def _segment(columns: Sequence[np.ndarray], valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot token columns (each (n, S) or (n, S, t)) -> ids (n, S * width), mask alike."""
    cols = [c[..., None] if c.ndim == 2 else c for c in columns]
    block = np.concatenate(cols, axis=2)  # (n, S, width)
    n, slots, width = block.shape
    mask = np.repeat(valid, width, axis=1)
    return block.reshape(n, slots * width), mask


def encode_network(
    raw: RawBatch, fields: Sequence[str], encoding: NumberEncoding, vocab: Vocab
) -> tuple[np.ndarray, np.ndarray]:
    """Input token ids ``(ids (n, L) int32 PAD-padded, lengths (n,))`` of a raw batch."""
    n = len(raw["n_nodes"])
    num_base = vocab.offset(encoding.vocabulary()[0])
    node_base = vocab.offset("x1")

    def node_ids(key: str) -> np.ndarray:
        return node_base + np.clip(raw[key], 0, None)

    def numbers(key: str) -> np.ndarray:
        return encoding.encode_ids(raw[key]) + num_base  # (n, S, tpn)

    count = vocab.offset("V1") - 1 + raw["n_nodes"][:, None].astype(np.int64)
    e_valid = _count_mask(raw["n_edges"], raw["edge_src"].shape[1])
    i_valid = _count_mask(raw["n_in"], raw["in_node"].shape[1])
    o_valid = _count_mask(raw["n_out"], raw["out_node"].shape[1])
    tag_in = np.full(i_valid.shape, vocab.offset("IN"))
    tag_out = np.full(o_valid.shape, vocab.offset("OUT"))
    pieces = [
        (count, np.ones((n, 1), dtype=bool)),
        _segment(
            [node_ids("edge_src"), node_ids("edge_dst"), *(numbers(f"edge_{f}") for f in fields)],
            e_valid,
        ),
        _segment([tag_in, node_ids("in_node"), numbers("in_rate")], i_valid),
        _segment([tag_out, node_ids("out_node"), *(numbers(f"out_{f}") for f in fields)], o_valid),
    ]
    return _compact(pieces)


def encode_answer(
    raw: RawBatch, answer: str, encoding: NumberEncoding, vocab: Vocab
) -> tuple[np.ndarray, np.ndarray]:
    """Output token ids of the raw batch's answers (see the module docstring)."""
    n = len(raw["n_nodes"])
    if answer == "existence":
        ids = np.where(raw["exists"], vocab.offset("YES"), vocab.offset("NO"))
        return ids[:, None].astype(np.int32), np.ones(n, dtype=np.int64)
    num_base = vocab.offset(encoding.vocabulary()[0])
    if answer == "concentrations":
        valid = _count_mask(raw["n_nodes"], raw["conc"].shape[1])
        return _compact([_segment([encoding.encode_ids(raw["conc"]) + num_base], valid)])
    e_valid = _count_mask(raw["n_edges"], raw["flow"].shape[1])
    o_valid = _count_mask(raw["n_out"], raw["out_flow"].shape[1])
    return _compact(
        [
            _segment([encoding.encode_ids(raw["flow"]) + num_base], e_valid),
            _segment([encoding.encode_ids(raw["out_flow"]) + num_base], o_valid),
        ]
    )


def true_values(raw: RawBatch, answer: str, i: int) -> np.ndarray:
    """The numbers of example ``i``'s answer: concentrations, or edge then sink flows."""
    if answer == "concentrations":
        return raw["conc"][i, : int(raw["n_nodes"][i])]
    return np.concatenate(
        [raw["flow"][i, : int(raw["n_edges"][i])], raw["out_flow"][i, : int(raw["n_out"][i])]]
    )


def decode_answer(
    tokens: Sequence[str], answer: str, encoding: NumberEncoding, count: int | None = None
) -> bool | np.ndarray:
    """``True``/``False`` (existence) or the predicted numbers (``count`` of them if given).

    Raises :class:`DecodeError` on anything else.
    """
    if answer == "existence":
        if list(tokens) == ["YES"]:
            return True
        if list(tokens) == ["NO"]:
            return False
        raise DecodeError(f"expected YES or NO, got {' '.join(tokens)!r}")
    tpn = encoding.tokens_per_number
    if count is None:
        if len(tokens) % tpn:
            raise DecodeError(
                f"{len(tokens)} tokens is not a whole number of {encoding.name} numbers"
            )
        count = len(tokens) // tpn
    return encoding.decode(tokens, count)


def relative_errors(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``|p - t| / max(|t|, FLOOR_FRACTION * max|t|)`` per component.

    The floor keeps a tiny true value (or an exact zero, e.g. a node no inflow reaches) from
    demanding more digits than the answer's scale: errors below 0.1% of the largest component
    times tau are accepted there. Non-finite predictions have error inf.
    """
    scale = np.abs(truth)
    floor = max(FLOOR_FRACTION * float(scale.max(initial=0.0)), 1e-300)
    err = np.abs(predicted - truth) / np.maximum(scale, floor)
    return np.where(np.isfinite(err), err, np.inf)


def score_predictions(
    raw: RawBatch, answer: str, encoding: NumberEncoding, predictions: Sequence[Sequence[str]]
) -> dict[str, np.ndarray]:
    """Per-example metrics (see :meth:`MetabolicTask.score`)."""
    n = len(raw["n_nodes"])
    if answer == "existence":
        acc = np.zeros(n, dtype=bool)
        for i, tokens in enumerate(predictions):
            try:
                acc[i] = decode_answer(tokens, answer, encoding) == bool(raw["exists"][i])
            except DecodeError:
                pass
        return {"acc": acc}
    max_err = np.full(n, np.inf)
    fractions = {tol: np.zeros(n) for tol in TOLERANCES}
    for i, tokens in enumerate(predictions):
        truth = true_values(raw, answer, i)
        try:
            predicted = decode_answer(tokens, answer, encoding, len(truth))
        except DecodeError:
            continue
        err = relative_errors(predicted, truth)
        max_err[i] = err.max(initial=0.0)
        for tol in TOLERANCES:
            fractions[tol][i] = float(np.mean(err < tol / 100)) if len(err) else 1.0
    out: dict[str, np.ndarray] = {f"acc_tol{tol}": max_err < tol / 100 for tol in TOLERANCES}
    out.update({f"frac_tol{tol}": fractions[tol] for tol in TOLERANCES})
    out["max_rel_error"] = max_err
    return out
