"""Random metabolic networks, vectorised over a batch, in the raw-batch layout of the task.

A network has nodes ``0..n-1``, directed internal edges ``i -> j`` (no self loops, no
duplicate pairs), input nodes with a constant inflow and output nodes with a sink edge to the
outside. Raw batch (leading dimension N, every list padded to the batch's longest, at least
one slot; node padding ``-1``, float padding ``0.0``)::

    n_nodes (N,) int32           edge_src, edge_dst (N, E) int32, n_edges (N,) int32
    in_node (N, I) int32         in_rate (N, I) float64, n_in (N,) int32
    out_node (N, O) int32        n_out (N,) int32
    linear:            edge_rate (N, E), out_rate (N, O)          flux = rate * x_src
    michaelis_menten:  edge_vmax, edge_km (N, E), out_vmax, out_km (N, O)
                                                                  flux = vmax x / (km + x)
    family (N,) int8             index into FAMILIES (-1: not generated, e.g. read from a file)

Edges are listed in (source, target) order; inputs and outputs in increasing node order. The
nodes of every generated network are relabelled by a uniform random permutation, so a label
says nothing about the structure (the root of a tree, the first layer of a DAG, the start of
a chain are anywhere).

Graph families: :mod:`synthmath.tasks.metabolic.families`.

Inputs and outputs: ``inputs=(lo, hi)`` draws the number of inputs uniformly in lo..hi (capped
by the eligible nodes), then that many distinct nodes uniformly; outputs likewise and
independently, so a node may be both an input and an output (a metabolite that is taken up
and excreted). Inflows, rates and vmax are drawn from ``rate_law`` over ``rate_range``
(``uniform`` or ``log_uniform``); Michaelis constants km from the same law over ``km_range``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmath.core.errors import ConfigError
from synthmath.core.task import RawBatch
from synthmath.tasks.metabolic.families import (
    FAMILIES,
    GENERATORS,
    node_mask,
)

KINETICS = ("linear", "michaelis_menten")
RATE_LAWS = ("uniform", "log_uniform")
#: a good default: mean out-degree 1.5 gives a mix of networks with and without equilibrium
DEFAULT_DENSITY = 1.5
#: raw-batch keys of the flux parameters of edges and sinks, per kinetics
FLUX_FIELDS = {"linear": ("rate",), "michaelis_menten": ("vmax", "km")}


# ---- assembling a batch ----------------------------------------------------------------------
def parse_families(family: str | Sequence[str]) -> list[str]:
    """Family names from ``"dag"``, ``"dag,tree"`` or a list; unknown names are an error."""
    names = family.split(",") if isinstance(family, str) else list(family)
    names = [name.strip() for name in names]
    if not names or any(name not in FAMILIES for name in names):
        bad = next((name for name in names if name not in FAMILIES), "")
        raise ConfigError(f"family: unknown family {bad!r}; allowed: {', '.join(FAMILIES)}")
    return names


def _check_count_range(name: str, value: Sequence[int], least: int) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name}: expected a pair (min, max) of integers, got {value!r}"
        ) from None
    if not least <= lo <= hi:
        raise ConfigError(f"{name}: need {least} <= min <= max, got {value!r}")
    return lo, hi


def _check_positive_range(name: str, value: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a pair (min, max) of numbers, got {value!r}") from None
    if not (0.0 < lo <= hi < np.inf):
        raise ConfigError(f"{name}: need 0 < min <= max < inf, got {value!r}")
    return lo, hi


def draw_values(
    rng: np.random.Generator, law: str, bounds: tuple[float, float], shape: tuple[int, ...]
) -> np.ndarray:
    """Positive values from ``uniform`` or ``log_uniform`` over ``bounds`` (float64)."""
    lo, hi = bounds
    if law == "uniform":
        return rng.uniform(lo, hi, shape)
    if law == "log_uniform":
        return np.exp(rng.uniform(np.log(lo), np.log(hi), shape))
    raise ConfigError(f"rate_law: unknown value {law!r}; allowed: {', '.join(RATE_LAWS)}")


def _relabel(adj, in_ok, out_ok, valid, rng):
    """Apply a uniform random permutation of the nodes of each network (padding stays last)."""
    order = np.argsort(np.where(valid, rng.random(valid.shape), 2.0), axis=1)
    rows = np.arange(len(adj))[:, None, None]
    adj = adj[rows, order[:, :, None], order[:, None, :]]
    return adj, np.take_along_axis(in_ok, order, 1), np.take_along_axis(out_ok, order, 1)


def pick_nodes(
    eligible: np.ndarray, count_range: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct nodes per network, uniformly among ``eligible``: (nodes (N, K) padded -1, counts)."""
    lo, hi = count_range
    count = np.minimum(rng.integers(lo, hi + 1, len(eligible)), eligible.sum(axis=1))
    keys = np.where(eligible, rng.random(eligible.shape), np.inf)
    slots = max(1, int(count.max(initial=0)))
    picked = np.argsort(keys, axis=1)[:, :slots]
    used = np.arange(slots)[None, :] < count[:, None]
    picked = np.sort(np.where(used, picked, np.iinfo(np.int32).max), axis=1)
    return np.where(used, picked, -1).astype(np.int32), count.astype(np.int32)


def edge_lists(adj: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge lists of boolean adjacencies (N, V, V): ``(src, dst (N, E) padded -1, counts)``.

    Edges come in (source, target) order; E = the largest count (at least 1).
    """
    count, width = len(adj), adj.shape[1]
    flat = adj.reshape(count, width * width)
    n_edges = flat.sum(axis=1)
    slots = max(1, int(n_edges.max(initial=0)))
    rows, cell = np.nonzero(flat)  # sorted by row, then by src * V + dst
    position = np.arange(len(rows)) - (np.cumsum(n_edges) - n_edges)[rows]
    src = np.full((count, slots), -1, dtype=np.int32)
    dst = np.full((count, slots), -1, dtype=np.int32)
    src[rows, position] = cell // width
    dst[rows, position] = cell % width
    return src, dst, n_edges.astype(np.int32)


def sample_networks(
    n: int,
    rng: np.random.Generator,
    *,
    family: str | Sequence[str],
    nodes_min: int,
    nodes_max: int,
    density: float = DEFAULT_DENSITY,
    inputs: tuple[int, int] = (1, 3),
    outputs: tuple[int, int] = (1, 3),
    kinetics: str = "linear",
    rate_law: str = "uniform",
    rate_range: tuple[float, float] = (0.1, 1.0),
    km_range: tuple[float, float] = (0.1, 1.0),
) -> RawBatch:
    """``n`` random networks (structure and rates, no answers) as a raw batch.

    ``family`` is one name of :data:`FAMILIES` or a comma list (each network's family drawn
    uniformly from it); node counts are uniform in ``nodes_min..nodes_max``. Deterministic
    given the state of ``rng``. See the module docstring for the families and laws.
    """
    names = parse_families(family)
    if not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"n: expected a positive number of networks, got {n!r}")
    if not 2 <= nodes_min <= nodes_max:
        raise ConfigError(
            f"nodes_min, nodes_max: need 2 <= nodes_min <= nodes_max, got {nodes_min}, {nodes_max}"
        )
    if not (np.isfinite(density) and density > 0):
        raise ConfigError(f"density: must be a finite number > 0, got {density!r}")
    if kinetics not in KINETICS:
        raise ConfigError(f"kinetics: unknown value {kinetics!r}; allowed: {', '.join(KINETICS)}")
    if rate_law not in RATE_LAWS:
        raise ConfigError(f"rate_law: unknown value {rate_law!r}; allowed: {', '.join(RATE_LAWS)}")
    inputs = _check_count_range("inputs", inputs, 1)
    outputs = _check_count_range("outputs", outputs, 0)
    rate_range = _check_positive_range("rate_range", rate_range)
    km_range = _check_positive_range("km_range", km_range)

    n_nodes, which, adj, in_ok, out_ok = draw_graphs(n, rng, names, nodes_min, nodes_max, density)
    valid = node_mask(n_nodes, adj.shape[1])
    adj, in_ok, out_ok = _relabel(adj, in_ok, out_ok, valid, rng)
    edge_src, edge_dst, n_edges = edge_lists(adj)
    in_node, n_in = pick_nodes(in_ok, inputs, rng)
    out_node, n_out = pick_nodes(out_ok, outputs, rng)
    counts = {"n_in": n_in, "n_edges": n_edges, "n_out": n_out}
    values = draw_parameters(counts, rng, kinetics, rate_law, rate_range, km_range)
    family_index = np.array([FAMILIES.index(name) for name in names], dtype=np.int8)
    return {
        "n_nodes": n_nodes.astype(np.int32),
        "edge_src": edge_src,
        "edge_dst": edge_dst,
        "n_edges": n_edges,
        "in_node": in_node,
        "in_rate": values.pop("in_rate"),
        "n_in": n_in,
        "out_node": out_node,
        "n_out": n_out,
        "family": family_index[which],
        **values,
    }


def draw_graphs(
    n: int,
    rng: np.random.Generator,
    names: Sequence[str],
    nodes_min: int,
    nodes_max: int,
    density: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The graph part of :func:`sample_networks` (checked arguments, nodes not relabelled yet).

    Returns ``(n_nodes (n,), which (n,) index into names, adjacency (n, V, V), input-eligible
    (n, V), output-eligible (n, V))`` with V the largest node count.
    """
    n_nodes = rng.integers(nodes_min, nodes_max + 1, n)
    width = int(n_nodes.max())
    which = rng.integers(0, len(names), n) if len(names) > 1 else np.zeros(n, dtype=np.int64)
    adj = np.zeros((n, width, width), dtype=bool)
    in_ok = np.zeros((n, width), dtype=bool)
    out_ok = np.zeros((n, width), dtype=bool)
    for k, name in enumerate(names):
        rows = np.flatnonzero(which == k)
        if len(rows):
            adj[rows], in_ok[rows], out_ok[rows] = GENERATORS[name](
                n_nodes[rows], width, float(density), rng
            )
    return n_nodes, which, adj, in_ok, out_ok


def draw_parameters(
    counts: dict[str, np.ndarray],
    rng: np.random.Generator,
    kinetics: str,
    rate_law: str,
    rate_range: tuple[float, float],
    km_range: tuple[float, float],
) -> RawBatch:
    """Inflows and flux parameters of edges and sinks, given the list lengths ``n_in``,
    ``n_edges``, ``n_out`` (``counts``): ``{"in_rate": ..., "edge_<field>": ..., ...}``.

    Every value is independent, from ``rate_law`` over its range; each list is as wide as its
    longest (at least one slot), slots beyond the counts are 0.0.
    """

    def values(bounds, count):
        width = max(1, int(count.max(initial=0)))
        drawn = draw_values(rng, rate_law, bounds, (len(count), width))
        return np.where(np.arange(width)[None, :] < count[:, None], drawn, 0.0)

    out = {"in_rate": values(rate_range, counts["n_in"])}
    edges, sinks = counts["n_edges"], counts["n_out"]
    if kinetics == "linear":
        out["edge_rate"] = values(rate_range, edges)
        out["out_rate"] = values(rate_range, sinks)
    else:
        out["edge_vmax"] = values(rate_range, edges)
        out["edge_km"] = values(km_range, edges)
        out["out_vmax"] = values(rate_range, sinks)
        out["out_km"] = values(km_range, sinks)
    return out


def adjacency(raw: RawBatch) -> np.ndarray:
    """Boolean adjacency (N, V, V) of a raw batch, V = the largest node count (from the counts)."""
    n_nodes = np.asarray(raw["n_nodes"])
    width = max(1, int(n_nodes.max(initial=0)))
    src, dst = np.asarray(raw["edge_src"]), np.asarray(raw["edge_dst"])
    rows, slot = np.nonzero(np.arange(src.shape[1])[None, :] < np.asarray(raw["n_edges"])[:, None])
    adj = np.zeros((len(n_nodes), width, width), dtype=bool)
    adj[rows, src[rows, slot], dst[rows, slot]] = True
    return adj


def single_network(
    n_nodes: int,
    edges: Sequence[tuple[int, int]],
    edge_params: Sequence[float | Sequence[float]],
    inputs: Sequence[tuple[int, float]],
    outputs: Sequence[tuple[int, float | Sequence[float]]],
    kinetics: str = "linear",
) -> RawBatch:
    """A raw batch holding one network given as plain lists (edge order is kept).

    ``edges[k] = (i, j)`` with parameters ``edge_params[k]``: the rate (linear) or
    ``(vmax, km)`` (michaelis_menten); ``inputs`` = ``(node, inflow)`` pairs; ``outputs`` =
    ``(node, rate)`` or ``(node, (vmax, km))`` pairs. ``family`` is -1 (not generated).
    """
    if kinetics not in KINETICS:
        raise ConfigError(f"kinetics: unknown value {kinetics!r}; allowed: {', '.join(KINETICS)}")
    if not isinstance(n_nodes, int | np.integer) or n_nodes < 1:
        raise ConfigError(f"n_nodes: expected a positive integer, got {n_nodes!r}")
    fields = FLUX_FIELDS[kinetics]
    if len(edge_params) != len(edges):
        raise ConfigError(f"edge_params: {len(edge_params)} entries for {len(edges)} edges")

    def numbers(where: str, value, names: tuple[str, ...]) -> list[float]:
        values = [value] if np.ndim(value) == 0 else list(value)
        if len(values) != len(names) or not all(np.isfinite(v) and v > 0 for v in values):
            raise ConfigError(f"{where}: expected {' '.join(names)} (numbers > 0), got {value!r}")
        return [float(v) for v in values]

    def node(where: str, value) -> int:
        if not isinstance(value, int | np.integer) or not 0 <= value < n_nodes:
            raise ConfigError(f"{where}: node {value!r} is not in 0..{n_nodes - 1}")
        return int(value)

    pairs = [(node(f"edges[{k}]", i), node(f"edges[{k}]", j)) for k, (i, j) in enumerate(edges)]
    for k, (i, j) in enumerate(pairs):
        if i == j:
            raise ConfigError(f"edges[{k}]: self loop {i} -> {j}")
        if pairs.index((i, j)) != k:
            raise ConfigError(f"edges[{k}]: duplicate edge {i} -> {j}")
    edge_values = [numbers(f"edge_params[{k}]", v, fields) for k, v in enumerate(edge_params)]
    terminals = {}
    for key, items, names in (("inputs", inputs, ("inflow",)), ("outputs", outputs, fields)):
        nodes = [node(f"{key}[{k}]", item[0]) for k, item in enumerate(items)]
        if len(set(nodes)) != len(nodes):
            raise ConfigError(f"{key}: a node is listed twice ({nodes})")
        terminals[key] = nodes, [numbers(f"{key}[{k}]", it[1], names) for k, it in enumerate(items)]

    def padded(values, dtype, fill):
        out = np.full((1, max(1, len(values))), fill, dtype=dtype)
        out[0, : len(values)] = values
        return out

    (in_nodes, in_values), (out_nodes, out_values) = terminals["inputs"], terminals["outputs"]
    raw: RawBatch = {
        "n_nodes": np.array([n_nodes], dtype=np.int32),
        "edge_src": padded([i for i, _ in pairs], np.int32, -1),
        "edge_dst": padded([j for _, j in pairs], np.int32, -1),
        "n_edges": np.array([len(pairs)], dtype=np.int32),
        "in_node": padded(in_nodes, np.int32, -1),
        "in_rate": padded([v[0] for v in in_values], np.float64, 0.0),
        "n_in": np.array([len(in_nodes)], dtype=np.int32),
        "out_node": padded(out_nodes, np.int32, -1),
        "n_out": np.array([len(out_nodes)], dtype=np.int32),
        "family": np.array([-1], dtype=np.int8),
    }
    for k, f in enumerate(fields):
        raw[f"edge_{f}"] = padded([v[k] for v in edge_values], np.float64, 0.0)
        raw[f"out_{f}"] = padded([v[k] for v in out_values], np.float64, 0.0)
    return raw


def stack_networks(raws: Sequence[RawBatch]) -> RawBatch:
    """Concatenate raw batches (same keys) along the batch, re-padding every list to the
    widest (node padding -1, float padding 0.0)."""
    if not raws:
        raise ConfigError("raws: need at least one raw batch to stack")
    out: RawBatch = {}
    for key in raws[0]:
        arrays = [np.asarray(raw[key]) for raw in raws]
        if arrays[0].ndim == 1:
            out[key] = np.concatenate(arrays)
            continue
        width = max(a.shape[1] for a in arrays)
        fill = -1 if np.issubdtype(arrays[0].dtype, np.integer) else 0
        out[key] = np.concatenate(
            [np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill) for a in arrays]
        )
    return out
