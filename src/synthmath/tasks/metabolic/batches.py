"""Raw batches of networks: take, concatenate, re-pad and shuffle them (vectorised).

Lists (edges, inflows, sinks) are padded to the batch's widest; the counts ``n_edges``,
``n_in``, ``n_out`` and ``n_nodes`` say which slots are real. These helpers keep the padding
convention of :mod:`synthmath.tasks.metabolic.graphs` (node indices -1, values 0.0), which
:func:`synthmath.core.raw.concat_raw` (zero padding) does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmath.core.task import RawBatch

NODE_KEYS = ("edge_src", "edge_dst", "in_node", "out_node")


def shuffle_lists(raw: RawBatch, rng: np.random.Generator) -> None:
    """Permute, per network and in place, the order of its edges, inflows and sinks.

    Answers stored per edge / sink (``flow``, ``out_flow``) move with them; padding stays last.
    """
    lists = {
        "n_edges": ["edge_src", "edge_dst", "edge_rate", "edge_vmax", "edge_km", "flow"],
        "n_in": ["in_node", "in_rate"],
        "n_out": ["out_node", "out_rate", "out_vmax", "out_km", "out_flow"],
    }
    for count_key, keys in lists.items():
        keys = [k for k in keys if k in raw]
        width = raw[keys[0]].shape[1]
        keyed = np.where(
            np.arange(width)[None, :] < raw[count_key][:, None],
            rng.random((len(raw[count_key]), width)),
            2.0,
        )
        order = np.argsort(keyed, axis=1, kind="stable")
        for key in keys:
            raw[key] = np.take_along_axis(raw[key], order, axis=1)


def take(raw: RawBatch, index) -> RawBatch:
    """The examples ``index`` (an index array, slice or boolean mask) of every array."""
    return {k: v[index] for k, v in raw.items()}


def concat(parts: Sequence[RawBatch]) -> RawBatch:
    """Concatenate raw batches, padding list widths (node indices with -1, values with 0)."""
    out = {}
    for key in parts[0]:
        arrays = [p[key] for p in parts]
        if arrays[0].ndim > 1:
            width = max(a.shape[1] for a in arrays)
            fill = -1 if key in NODE_KEYS else 0
            arrays = [
                np.pad(a, [(0, 0), (0, width - a.shape[1])], constant_values=fill) for a in arrays
            ]
        out[key] = np.concatenate(arrays)
    return out


def mark_padding(raw: RawBatch) -> RawBatch:
    """Set every slot beyond the counts to the contract's padding (-1 nodes, 0.0 values)."""
    counts = {"edge": "n_edges", "in": "n_in", "out": "n_out", "flow": "n_edges"}
    for key, values in raw.items():
        if values.ndim != 2:
            continue
        prefix = "conc" if key == "conc" else key.split("_")[0]
        count_key = "n_nodes" if prefix == "conc" else counts.get(prefix)
        if count_key is None:
            continue
        pad = np.arange(values.shape[1])[None, :] >= raw[count_key][:, None]
        values[pad] = -1 if key in NODE_KEYS else 0
    return raw
