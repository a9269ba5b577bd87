"""Reachability in batches of small directed graphs: which nodes an input feeds, and whether
every fed node can drain to an output (the structural test of the metabolic solvers, run on
every random draw).

:func:`closure_bits` computes the transitive closure with one bit mask per node (Warshall's
algorithm, V steps of (N, V) integer operations); :func:`reachable` is the plain frontier
search over (N, V, V) boolean arrays, used beyond 64 nodes.
"""

from __future__ import annotations

import numpy as np


def reachable(adj: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Nodes reachable from ``seeds`` (N, V) along the edges of ``adj`` (N, V, V), seeds included."""
    reached = seeds.copy()
    frontier = seeds
    while True:
        new = np.any(frontier[:, :, None] & adj, axis=1) & ~reached
        if not new.any():
            return reached
        reached |= new
        frontier = new


def closure_bits(adj: np.ndarray) -> np.ndarray:
    """Reachability as bit masks: ``(N, V)`` unsigned integers (8 to 64 bits, the fewest that
    hold V), bit j of row i set iff j is reachable from i along the edges of ``adj``
    (N, V, V), i itself included. Needs V <= 64.

    Warshall's algorithm on bit masks: V steps of (N, V) integer operations, much cheaper than
    boolean frontier expansion over (N, V, V) arrays (the structural test of every draw).
    """
    width = adj.shape[1]
    if width > 64:
        raise ValueError(f"closure_bits: at most 64 nodes, got {width}")
    n_bytes = next(b for b in (1, 2, 4, 8) if 8 * b >= width)
    dtype = np.dtype(f"<u{n_bytes}")
    packed = np.packbits(adj, axis=2, bitorder="little")  # (N, V, ceil(V / 8)) bytes
    padded = np.zeros((*adj.shape[:2], n_bytes), dtype=np.uint8)
    padded[:, :, : packed.shape[2]] = packed
    rows = padded.view(dtype)[:, :, 0].astype(dtype.newbyteorder("="))
    bit = dtype.type(1) << np.arange(width, dtype=rows.dtype)
    rows |= bit
    zero, one = rows.dtype.type(0), rows.dtype.type(1)
    for k in range(width):
        # rows that reach k also reach everything k reaches
        has_k = (rows >> rows.dtype.type(k)) & one
        rows |= (zero - has_k) & rows[:, k : k + 1]
    return rows


def bits_to_flags(bits: np.ndarray, width: int) -> np.ndarray:
    """(N,) bit masks -> (N, width) bool."""
    shifts = np.arange(width, dtype=bits.dtype)
    return ((bits[:, None] >> shifts) & bits.dtype.type(1)).astype(bool)


def flags_to_bits(flags: np.ndarray, dtype=np.uint64) -> np.ndarray:
    """(N, V) bool, V <= 64 -> (N,) bit masks of ``dtype`` (bit j = column j)."""
    weights = np.dtype(dtype).type(1) << np.arange(flags.shape[1], dtype=dtype)
    return np.bitwise_or.reduce(np.where(flags, weights, weights.dtype.type(0)), axis=1)


def fed_and_drained(
    adj: np.ndarray, inputs: np.ndarray, outputs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(fed (N, V), drained (N,))`` from the adjacency and the input / output flags (N, V).

    ``fed``: nodes reachable from an input; ``drained``: every fed node reaches an output.
    """
    width = adj.shape[1]
    if width > 64:
        fed = reachable(adj, inputs)
        drains = reachable(np.swapaxes(adj, 1, 2), outputs)
        return fed, ~np.any(fed & ~drains, axis=1)
    rows = closure_bits(adj)
    zero = rows.dtype.type(0)
    fed = bits_to_flags(np.bitwise_or.reduce(np.where(inputs, rows, zero), axis=1), width)
    drains = (rows & flags_to_bits(outputs, rows.dtype)[:, None]) != 0
    return fed, ~np.any(fed & ~drains, axis=1)
