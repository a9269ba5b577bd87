"""Families of random directed graphs for metabolic networks, vectorised over a batch.

Each generator takes ``(n_nodes (m,), width, density, rng)`` and returns the adjacency
``(m, width, width)`` and the nodes eligible as inputs and as outputs ``(m, width)``;
:func:`synthmath.tasks.metabolic.graphs.sample_networks` assembles networks from them.

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
"""

from __future__ import annotations

import numpy as np

FAMILIES = ("erdos_renyi", "preferential", "small_world", "dag", "chain", "tree", "cycle_rich")
#: probability that an edge of a small-world ring is rewired to a random target
SMALL_WORLD_REWIRING = 0.2
#: most cycles a cycle_rich network is built from (stops runaway loops on dense targets)
MAX_CYCLES = 200


# ---- families: each returns (adjacency (m, V, V), input-eligible (m, V), output-eligible) ----
def node_mask(n_nodes: np.ndarray, width: int) -> np.ndarray:
    return np.arange(width)[None, :] < n_nodes[:, None]


def _erdos_renyi(n_nodes, width, density, rng):
    valid = node_mask(n_nodes, width)
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
        chosen = _top(keys, links.astype(np.int64)) & active[:, None]
        outward = rng.random((m, t)) < 0.5
        rows, cols = np.nonzero(chosen)
        out = outward[rows, cols]
        adj[rows[out], t, cols[out]] = True
        adj[rows[~out], cols[~out], t] = True
        degree[:, :t] += chosen
        degree[:, t] += chosen.sum(axis=1)
    valid = node_mask(n_nodes, width)
    return adj, valid, valid


def _top(keys: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(m, t) bool: the ``count`` (m,) largest keys of each row (1 <= count <= t).

    A threshold at the count-th largest key; rows where keys tie at the threshold take the
    first ones in argsort order, as ``rank < count`` with ranks from a double argsort does."""
    ordered = -np.sort(-keys, axis=1)
    threshold = np.take_along_axis(ordered, count[:, None] - 1, axis=1)
    chosen = keys >= threshold
    tied = np.flatnonzero(chosen.sum(axis=1) != count)
    if len(tied):
        rank = np.argsort(np.argsort(-keys[tied], axis=1), axis=1)
        chosen[tied] = rank < count[tied, None]
    return chosen


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
    valid = node_mask(n_nodes, width)
    return adj, valid, valid


def _dag(n_nodes, width, density, rng):
    m = len(n_nodes)
    valid = node_mask(n_nodes, width)
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
    valid = node_mask(n_nodes, width)
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
    valid = node_mask(n_nodes, width)
    node = np.arange(width)[None, :]
    parent = np.floor(rng.random((m, width)) * node).astype(np.int64)
    rows, child = np.nonzero(valid & (node >= 1))
    adj = np.zeros((m, width, width), dtype=bool)
    adj[rows, parent[rows, child], child] = True
    return adj, valid, valid


def _cycle_rich(n_nodes, width, density, rng):
    m = len(n_nodes)
    valid = node_mask(n_nodes, width)
    n = n_nodes.astype(np.int64)
    target = np.minimum(np.ceil(density * n), np.maximum(n * (n - 1) // 2, 2))
    adj = np.zeros((m, width, width), dtype=bool)
    edges = np.zeros(m, dtype=np.int64)
    step = np.arange(width)[None, :]
    for _ in range(MAX_CYCLES):
        active = np.flatnonzero(edges < target)
        if len(active) == 0:
            break
        keys = rng.random((m, width))  # drawn for every network: the same random stream
        length = rng.integers(2, n + 1)[active, None]
        order = np.argsort(np.where(valid[active], keys[active], 2.0), axis=1)
        successor = np.take_along_axis(order, (step + 1) % length, axis=1)
        rows, pos = np.nonzero(step < length)
        src, dst, rows = order[rows, pos], successor[rows, pos], active[rows]
        new = ~adj[rows, src, dst]  # the edges of one cycle are distinct
        adj[rows, src, dst] = True
        edges += np.bincount(rows[new], minlength=m)
    return adj, valid, valid


GENERATORS = {
    "erdos_renyi": _erdos_renyi,
    "preferential": _preferential,
    "small_world": _small_world,
    "dag": _dag,
    "chain": _chain,
    "tree": _tree,
    "cycle_rich": _cycle_rich,
}
