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

Families (``density`` = d; n = the network's node count):

=============== ================================================================================
erdos_renyi     every ordered pair i != j is an edge with probability min(1, d / (n - 1)):
                mean out-degree d.
preferential    growth by preferential attachment (Price / Bollobas style): node t = 1..n-1
                links to k earlier nodes (k = floor(d), plus one with probability frac(d);
                at least 1, at most t), drawn without replacement with probability
                proportional to (total degree + 1); each link points new -> old or old -> new
                by a fair coin. Mean out-degree a little under max(d, 1) (early nodes have
                fewer candidates); in- and out-degrees are heavy tailed (hubs).
small_world     directed Watts-Strogatz: on a ring, node i links to i+1, ..., i+floor(d), and
                to i+ceil(d) with probability frac(d) (mean out-degree d, at most n-1); each
                edge's target is then rewired with probability SMALL_WORLD_REWIRING to a
                uniform node other than i (a rewired edge that lands on an existing one is
                merged, so the mean out-degree is slightly below d).
dag             layered feed-forward pathway: L layers (L uniform in 2..max(2, n // 2)) of
                near-equal size; every node outside the first layer gets one edge from a
                uniform node of the previous layer, then every other forward pair (earlier
                layer -> later layer) is an edge with the probability that makes the
                expected edge count d * n (none when the first step already has as many).
                Inputs lie in the first layer, outputs in the last (their counts are capped by
                the layer sizes).
chain           the path 0 -> 1 -> ... -> n-1 plus bypass branches: every forward pair
                i -> j with j >= i + 2 is an edge with the probability that makes the
                expected edge count n - 1 + max(0, d - 1) * n. d <= 1: a plain path.
tree            random recursive out-tree: node i >= 1 hangs below a uniform earlier node;
                n - 1 edges, one root. d is not used.
cycle_rich      union of random directed cycles: each cycle visits a uniform random length
                (2..n) of distinct nodes in random order; cycles are added until the network
                has at least min(ceil(d * n), n (n - 1) / 2) edges (mean out-degree about d;
                every edge lies on a directed cycle).
=============== ================================================================================

Inputs and outputs: ``inputs=(lo, hi)`` draws the number of inputs uniformly in lo..hi (capped
by the eligible nodes), then that many distinct nodes uniformly; outputs likewise and
independently, so a node may be both an input and an output (a metabolite that is taken up
and excreted). Inflows, rates and vmax are drawn from ``rate_law`` over ``rate_range``
(``uniform`` or ``log_uniform``); Michaelis constants km from the same law over ``km_range``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmath.tasks.base import ConfigError, RawBatch

FAMILIES = ("erdos_renyi", "preferential", "small_world", "dag", "chain", "tree", "cycle_rich")
KINETICS = ("linear", "michaelis_menten")
RATE_LAWS = ("uniform", "log_uniform")
#: a good default: mean out-degree 1.5 gives a mix of networks with and without equilibrium
DEFAULT_DENSITY = 1.5
#: probability that an edge of a small-world ring is rewired to a random target
SMALL_WORLD_REWIRING = 0.2
#: most cycles a cycle_rich network is built from (stops runaway loops on dense targets)
MAX_CYCLES = 200
#: raw-batch keys of the flux parameters of edges and sinks, per kinetics
FLUX_FIELDS = {"linear": ("rate",), "michaelis_menten": ("vmax", "km")}


# ---- families: each returns (adjacency (m, V, V), input-eligible (m, V), output-eligible) ----
def _node_mask(n_nodes: np.ndarray, width: int) -> np.ndarray:
    return np.arange(width)[None, :] < n_nodes[:, None]


def _erdos_renyi(n_nodes, width, density, rng):
    valid = _node_mask(n_nodes, width)
    p = np.minimum(1.0, density / np.maximum(n_nodes - 1, 1))
    adj = rng.random((len(n_nodes), width, width)) < p[:, None, None]
    adj &= valid[:, :, None] & valid[:, None, :]
    adj[:, np.arange(width), np.arange(width)] = False
    return adj, valid, valid


def _preferential(n_nodes, width, density, rng):
    m = len(n_nodes)
    adj = np.zeros((m, width, width), dtype=bool)
    degree = np.zeros((m, width))
    whole, frac = np.floor(density), density - np.floor(density)
    for t in range(1, width):
        active = n_nodes > t
        links = np.clip(whole + (rng.random(m) < frac), 1, t)
        # Gumbel top-k = k draws without replacement, probability proportional to weight
        keys = np.log(degree[:, :t] + 1.0) + rng.gumbel(size=(m, t))
        rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
        chosen = (rank < links[:, None]) & active[:, None]
        outward = rng.random((m, t)) < 0.5
        rows, cols = np.nonzero(chosen)
        out = outward[rows, cols]
        adj[rows[out], t, cols[out]] = True
        adj[rows[~out], cols[~out], t] = True
        degree[:, :t] += chosen
        degree[:, t] += chosen.sum(axis=1)
    valid = _node_mask(n_nodes, width)
    return adj, valid, valid


def _small_world(n_nodes, width, density, rng):
    m = len(n_nodes)
    reach = max(1, int(np.ceil(density)))
    offsets = np.arange(1, reach + 1)[None, None, :]  # (1, 1, S)
    node = np.arange(width)[None, :, None]
    n = n_nodes[:, None, None]
    present = (offsets <= np.floor(density)) | (rng.random((m, width, reach)) < density % 1.0)
    present &= (node < n) & (offsets <= n - 1)
    target = (node + offsets) % n
    rewire = rng.random((m, width, reach)) < SMALL_WORLD_REWIRING
    shift = 1 + np.floor(rng.random((m, width, reach)) * (n - 1)).astype(np.int64)
    target = np.where(rewire, (node + shift) % n, target)
    rows, src, slot = np.nonzero(present)
    adj = np.zeros((m, width, width), dtype=bool)
    adj[rows, src, target[rows, src, slot]] = True
    valid = _node_mask(n_nodes, width)
    return adj, valid, valid


def _dag(n_nodes, width, density, rng):
    m = len(n_nodes)
    valid = _node_mask(n_nodes, width)
    n = n_nodes[:, None].astype(np.int64)
    layers = rng.integers(2, np.maximum(2, n_nodes // 2) + 1)[:, None].astype(np.int64)
    node = np.arange(width)[None, :]
    layer = np.where(valid, node * layers // n, width + 1)  # padding after every layer
    start = -(-(layer * n) // layers)  # first node of each node's layer: ceil(l n / L)
    prev_start = -(-((layer - 1) * n) // layers)
    parent = prev_start + np.floor(rng.random((m, width)) * (start - prev_start)).astype(np.int64)
    has_parent = valid & (layer >= 1)
    adj = np.zeros((m, width, width), dtype=bool)
    rows, child = np.nonzero(has_parent)
    adj[rows, parent[rows, child], child] = True
    forward = (layer[:, :, None] < layer[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    base = has_parent.sum(axis=1)
    spare = np.maximum(forward.sum(axis=(1, 2)) - base, 1)
    p = np.clip((density * n_nodes - base) / spare, 0.0, 1.0)
    adj |= forward & (rng.random((m, width, width)) < p[:, None, None])
    return adj, valid & (layer == 0), valid & (layer == layers - 1)


def _chain(n_nodes, width, density, rng):
    m = len(n_nodes)
    valid = _node_mask(n_nodes, width)
    src, dst = np.arange(width)[:, None], np.arange(width)[None, :]
    both = valid[:, :, None] & valid[:, None, :]
    adj = both & (dst == src + 1)[None]
    bypass = both & (dst >= src + 2)[None]
    pairs = np.maximum((n_nodes - 1) * (n_nodes - 2) // 2, 1)
    p = np.clip(max(density - 1.0, 0.0) * n_nodes / pairs, 0.0, 1.0)
    adj |= bypass & (rng.random((m, width, width)) < p[:, None, None])
    return adj, valid, valid


def _tree(n_nodes, width, density, rng):
    m = len(n_nodes)
    valid = _node_mask(n_nodes, width)
    node = np.arange(width)[None, :]
    parent = np.floor(rng.random((m, width)) * node).astype(np.int64)
    rows, child = np.nonzero(valid & (node >= 1))
    adj = np.zeros((m, width, width), dtype=bool)
    adj[rows, parent[rows, child], child] = True
    return adj, valid, valid


def _cycle_rich(n_nodes, width, density, rng):
    m = len(n_nodes)
    valid = _node_mask(n_nodes, width)
    n = n_nodes.astype(np.int64)
    target = np.minimum(np.ceil(density * n), np.maximum(n * (n - 1) // 2, 2))
    adj = np.zeros((m, width, width), dtype=bool)
    step = np.arange(width)[None, :]
    for _ in range(MAX_CYCLES):
        active = adj.sum(axis=(1, 2)) < target
        if not active.any():
            break
        order = np.argsort(np.where(valid, rng.random((m, width)), 2.0), axis=1)
        length = rng.integers(2, n + 1)[:, None]
        successor = np.take_along_axis(order, (step + 1) % length, axis=1)
        rows, pos = np.nonzero((step < length) & active[:, None])
        adj[rows, order[rows, pos], successor[rows, pos]] = True
    return adj, valid, valid


_GENERATORS = {
    "erdos_renyi": _erdos_renyi,
    "preferential": _preferential,
    "small_world": _small_world,
    "dag": _dag,
    "chain": _chain,
    "tree": _tree,
    "cycle_rich": _cycle_rich,
}


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


def _pick_nodes(eligible, count_range, rng):
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

    n_nodes = rng.integers(nodes_min, nodes_max + 1, n)
    width = int(n_nodes.max())
    which = rng.integers(0, len(names), n) if len(names) > 1 else np.zeros(n, dtype=np.int64)
    adj = np.zeros((n, width, width), dtype=bool)
    in_ok = np.zeros((n, width), dtype=bool)
    out_ok = np.zeros((n, width), dtype=bool)
    for k, name in enumerate(names):
        rows = np.flatnonzero(which == k)
        if len(rows):
            adj[rows], in_ok[rows], out_ok[rows] = _GENERATORS[name](
                n_nodes[rows], width, float(density), rng
            )
    valid = _node_mask(n_nodes, width)
    adj, in_ok, out_ok = _relabel(adj, in_ok, out_ok, valid, rng)
    edge_src, edge_dst, n_edges = edge_lists(adj)
    in_node, n_in = _pick_nodes(in_ok, inputs, rng)
    out_node, n_out = _pick_nodes(out_ok, outputs, rng)

    def values(bounds, like, counts):
        drawn = draw_values(rng, rate_law, bounds, like.shape)
        return np.where(np.arange(like.shape[1])[None, :] < counts[:, None], drawn, 0.0)

    family_index = np.array([FAMILIES.index(name) for name in names], dtype=np.int8)
    raw: RawBatch = {
        "n_nodes": n_nodes.astype(np.int32),
        "edge_src": edge_src,
        "edge_dst": edge_dst,
        "n_edges": n_edges,
        "in_node": in_node,
        "in_rate": values(rate_range, in_node, n_in),
        "n_in": n_in,
        "out_node": out_node,
        "n_out": n_out,
        "family": family_index[which],
    }
    if kinetics == "linear":
        raw["edge_rate"] = values(rate_range, edge_src, n_edges)
        raw["out_rate"] = values(rate_range, out_node, n_out)
    else:
        raw["edge_vmax"] = values(rate_range, edge_src, n_edges)
        raw["edge_km"] = values(km_range, edge_src, n_edges)
        raw["out_vmax"] = values(rate_range, out_node, n_out)
        raw["out_km"] = values(km_range, out_node, n_out)
    return raw


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
