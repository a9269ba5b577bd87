"""Class-targeted sampling of random networks: ``sampler=fast``, the same distribution as
rejection sampling at a fraction of the cost.

The task keeps a given number of networks with and without an equilibrium (balanced
existence sets; only networks with one for concentrations and flows). Plain rejection
sampling (``sampler=rejection``, :meth:`MetabolicTask._sample_random`) draws whole networks,
solves them all and keeps the first ones of each class; with Michaelis-Menten kinetics only
about one network in 20 has an equilibrium, so most of its work is spent on draws it drops.

This sampler draws the same networks in another order of work, each stage only for the draws
still in play:

1. the graph, its node count and family, and its inputs and outputs (nodes not relabelled);
2. the structural test (:func:`reach.fed_and_drained`): a network with a fed node that
   cannot reach an output has no equilibrium under either kinetics (exact); linear networks
   have one exactly when drained;
3. Michaelis-Menten only, drained networks: inflows and vmax (rounded), a first check
   (an input whose own inflow reaches its capacity), km for the others, then the lower bound
   of :mod:`synthmath.tasks.metabolic.bounds`, which proves "no equilibrium" for most of
   them; the rest are finished (step 4) and solved exactly;
4. the draws kept: rates (rounded) where not drawn yet, a uniform relabelling of the nodes,
   the list order (shuffled, or sorted as the generator lists it), the exact solve.

Why the distribution is that of rejection sampling: every value of a network is drawn
independently of the rest of the network given the list lengths (rates), or is a uniform
symmetry of it (node labels, list order; inputs and outputs are uniform among the eligible
nodes, so picking them before the relabelling gives the same joint law), so drawing them
later, only for some draws, changes nothing about a draw's distribution. The class of every draw is decided exactly (structure,
the bound, or the solver; a network the bound rejects is never one with an equilibrium, and
the kept ones are solved, so one the solver leaves undecided is dropped as in rejection
sampling), and the draws kept are the first of each class in draw order, a choice that
depends on the classes only. So, given its class, each kept network is distributed as a
rejection-sampled one. The random stream is not the same: datasets differ from
``sampler=rejection`` ones (that is why it is an option). Without class targets (existence
with ``balance=false``) nothing is rejected and the task uses rejection sampling. Tested by
``tests/tasks/metabolic/test_sampler.py`` (two-sample tests per class against rejection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from synthmath.codecs.numbers import round_sig3
from synthmath.core.task import RawBatch
from synthmath.tasks.metabolic import bounds, graphs
from synthmath.tasks.metabolic.batches import NODE_KEYS, concat, shuffle_lists, take
from synthmath.tasks.metabolic.networks import FLUX_FIELDS
from synthmath.tasks.metabolic.reach import fed_and_drained
from synthmath.tasks.metabolic.solvers import solve

SAMPLERS = ("rejection", "fast")
_CHUNK = 32768  # most draws per batch: ~3 MB of adjacency at 10 nodes
_CHUNK_CELLS = 2**22  # most draws * nodes**2 per batch (bounds memory for large networks)
# states of a draw
_NO_STRUCT, _NO_BOUND, _YES_LINEAR, _YES, _NO, _DROP = range(6)
_YES_STATES = (_YES_LINEAR, _YES)
_NO_STATES = (_NO_STRUCT, _NO_BOUND, _NO)
_UNBUILT = (_NO_STRUCT, _NO_BOUND, _YES_LINEAR)


def answers(raw: RawBatch, kinetics: str) -> RawBatch:
    """The exact answers of a raw batch: exists, conc, flow, out_flow, undecided."""
    solution = solve(raw, kinetics)
    keys = ("exists", "conc", "flow", "out_flow", "undecided")
    return {k: np.asarray(solution[k]) for k in keys if k in solution}


def sample_classes(
    params: dict[str, Any],
    want: dict[bool, int],
    rng: np.random.Generator,
    budget: int,
    too_rare: Callable[[int, int, int, dict[bool, int]], str],
) -> RawBatch:
    """``want[True]`` networks with an equilibrium and ``want[False]`` without, in draw order.

    ``params``: the task's resolved parameters (random families); ``too_rare(drawn, yes,
    decided, have)`` makes the error raised after ``budget`` draws.
    """
    from synthmath.core.errors import ConfigError

    have = {True: 0, False: 0}
    parts: list[RawBatch] = []
    drawn = decided = yes = 0
    while have[True] < want[True] or have[False] < want[False]:
        if drawn >= budget:
            raise ConfigError(too_rare(drawn, yes, decided, have))
        missing = {c: want[c] - have[c] for c in (True, False)}
        p_yes = min(max((yes + 1) / (decided + 2), 0.005), 0.995)
        size = max(missing[True] / p_yes, missing[False] / (1 - p_yes))
        most = max(256, min(_CHUNK, _CHUNK_CELLS // params["nodes_max"] ** 2))
        size = int(min(max(1.15 * size + 16, 64), most))
        part, counts = _chunk(size, missing, params, rng)
        drawn += size
        decided += counts[0]
        yes += counts[1]
        if part:
            have[True] += int(part["exists"].sum())
            have[False] += len(part["exists"]) - int(part["exists"].sum())
            parts.append(part)
    return concat(parts)


def _chunk(size: int, missing: dict[bool, int], p: dict[str, Any], rng: np.random.Generator):
    """One batch of draws: the kept networks (draw order) and (decided, with equilibrium)."""
    names = [s.strip() for s in p["family"].split(",")]
    n_nodes, which, adj, in_ok, out_ok = graphs.draw_graphs(
        size, rng, names, p["nodes_min"], p["nodes_max"], p["density"]
    )
    in_node, n_in = graphs.pick_nodes(in_ok, (p["inputs_min"], p["inputs_max"]), rng)
    out_node, n_out = graphs.pick_nodes(out_ok, (p["outputs_min"], p["outputs_max"]), rng)
    width = adj.shape[1]
    fed, drained = fed_and_drained(adj, _flags(in_node, width), _flags(out_node, width))
    family_index = np.array([graphs.FAMILIES.index(name) for name in names], dtype=np.int8)
    draws: RawBatch = {
        "n_nodes": n_nodes.astype(np.int32),
        "in_node": in_node,
        "n_in": n_in,
        "out_node": out_node,
        "n_out": n_out,
        "family": family_index[which],
    }
    state = np.where(drained, _YES_LINEAR, _NO_STRUCT).astype(np.int8)
    parts: list[tuple[np.ndarray, RawBatch]] = []  # (draw indices, finished and solved)
    pre_row = np.full(size, -1)
    pre: RawBatch = {}
    has_km = np.zeros(0, dtype=bool)
    if p["kinetics"] != "linear":
        # inflows and vmax first: an input's inflow over its capacity settles many draws;
        # km (independent of the rest) only for the others, then the bound, then the solve
        rows = np.flatnonzero(drained)
        pre = _networks(draws, adj, rows)
        pre_row[rows] = np.arange(len(rows))
        _draw_fields(pre, ("in_rate", "edge_vmax", "out_vmax"), np.arange(len(rows)), p, rng)
        rejected = bounds.inflow_over_capacity(pre)
        has_km = ~rejected
        rest = np.flatnonzero(has_km)
        _draw_fields(pre, ("edge_km", "out_km"), rest, p, rng)
        rejected[rest] = bounds.no_equilibrium(take(pre, rest))
        state[rows[rejected]] = _NO_BOUND
        parts.append(_build(rows[~rejected], take(pre, ~rejected), p, rng, state))
    while True:
        yes_rows = np.flatnonzero(np.isin(state, _YES_STATES))[: missing[True]]
        no_rows = np.flatnonzero(np.isin(state, _NO_STATES))[: missing[False]]
        chosen = np.concatenate([yes_rows, no_rows])
        todo = np.sort(chosen[np.isin(state[chosen], _UNBUILT)])
        if len(todo) == 0:
            break
        fresh = todo[pre_row[todo] < 0]  # no rates drawn yet
        networks = []
        if len(fresh):
            raw = _networks(draws, adj, fresh)
            keys = [
                "in_rate",
                *(f"{s}_{f}" for s in ("edge", "out") for f in FLUX_FIELDS[p["kinetics"]]),
            ]
            _draw_fields(raw, keys, np.arange(len(fresh)), p, rng)
            networks.append((fresh, raw))
        old = todo[pre_row[todo] >= 0]
        if len(old):
            lacking = pre_row[old][~has_km[pre_row[old]]]  # settled by inflow, no km yet
            _draw_fields(pre, ("edge_km", "out_km"), lacking, p, rng)
            has_km[lacking] = True
            networks.append((old, take(pre, pre_row[old])))
        for rows, raw in networks:
            parts.append(_build(rows, raw, p, rng, state))
    counts = int(np.sum(state != _DROP)), int(np.isin(state, _YES_STATES).sum())
    if not parts:
        return {}, counts
    keep = np.sort(np.concatenate([yes_rows, no_rows]))
    index = np.concatenate([rows for rows, _ in parts])
    done = concat([raw for _, raw in parts])
    position = np.full(size, -1)
    position[index] = np.arange(len(index))
    return take(done, position[keep]), counts


def _flags(nodes: np.ndarray, width: int) -> np.ndarray:
    flags = np.zeros((len(nodes), width), dtype=bool)
    rows, slot = np.nonzero(nodes >= 0)
    flags[rows, nodes[rows, slot]] = True
    return flags


def _networks(draws: RawBatch, adj: np.ndarray, rows: np.ndarray) -> RawBatch:
    """The structures of draws ``rows`` as a raw batch without rates (nodes not relabelled)."""
    raw = take(draws, rows)
    raw["edge_src"], raw["edge_dst"], raw["n_edges"] = graphs.edge_lists(adj[rows])
    for prefix in ("in", "out"):
        slots = max(1, int(raw[f"n_{prefix}"].max(initial=0)))
        raw[f"{prefix}_node"] = raw[f"{prefix}_node"][:, :slots]
    return raw


def _draw_fields(
    raw: RawBatch, keys, rows: np.ndarray, p: dict[str, Any], rng: np.random.Generator
) -> None:
    """Draw the values ``keys`` (e.g. ``in_rate``, ``edge_km``) of networks ``rows`` of
    ``raw``, rounded to 3 digits, in place (0.0 beyond the list lengths). Every value is
    independent of everything else, so drawing it later, for some networks only, gives the
    same distribution as :func:`graphs.draw_parameters`."""
    lists = {
        "in": ("in_node", "n_in"),
        "edge": ("edge_src", "n_edges"),
        "out": ("out_node", "n_out"),
    }
    for key in keys:
        nodes, count = lists[key.split("_")[0]]
        width = raw[nodes].shape[1]
        if key not in raw:
            raw[key] = np.zeros((len(raw[count]), width))
        if len(rows) == 0:
            continue
        bounds_ = (
            (p["km_min"], p["km_max"]) if key.endswith("_km") else (p["rate_min"], p["rate_max"])
        )
        values = graphs.draw_values(rng, p["rate_law"], bounds_, (len(rows), width))
        real = np.arange(width)[None, :] < raw[count][rows, None]
        values[real] = round_sig3(values[real])
        raw[key][rows] = np.where(real, values, 0.0)


def _build(
    rows: np.ndarray, raw: RawBatch, p: dict[str, Any], rng: np.random.Generator, state
) -> tuple[np.ndarray, RawBatch]:
    """Finish networks (relabel, list order), solve them, record their class in ``state``."""
    raw = _relabel(raw, rng)
    if p["shuffle_edges"]:
        shuffle_lists(raw, rng)
    else:
        _sort_lists(raw, p["kinetics"])
    raw = _ordered(raw, p["kinetics"])
    raw.update(answers(raw, p["kinetics"]))
    undecided = raw.pop("undecided")
    state[rows] = np.where(undecided, _DROP, np.where(raw["exists"], _YES, _NO))
    return rows, raw


def _relabel(raw: RawBatch, rng: np.random.Generator) -> RawBatch:
    """Rename the nodes of each network by a uniform random permutation."""
    n_nodes = raw["n_nodes"]
    width = max(1, int(n_nodes.max(initial=0)))
    valid = graphs.node_mask(n_nodes, width)
    order = np.argsort(np.where(valid, rng.random(valid.shape), 2.0), axis=1)
    label = np.argsort(order, axis=1).astype(np.int32)  # new name of old node k: label[k]
    for key in NODE_KEYS:
        nodes = raw[key]
        renamed = np.take_along_axis(label, np.maximum(nodes, 0), axis=1)
        raw[key] = np.where(nodes >= 0, renamed, -1).astype(np.int32)
    return raw


def _sort_lists(raw: RawBatch, kinetics: str) -> None:
    """Edges in (source, target) order, inputs and outputs by node, as the generator lists
    them (padding last)."""
    fields = FLUX_FIELDS[kinetics]
    big = np.iinfo(np.int64).max
    lists = {
        "edge": (raw["edge_src"].astype(np.int64) * 1024 + raw["edge_dst"], "n_edges"),
        "in": (raw["in_node"].astype(np.int64), "n_in"),
        "out": (raw["out_node"].astype(np.int64), "n_out"),
    }
    members = {
        "edge": ["edge_src", "edge_dst", *(f"edge_{f}" for f in fields)],
        "in": ["in_node", "in_rate"],
        "out": ["out_node", *(f"out_{f}" for f in fields)],
    }
    for name, (key, count) in lists.items():
        pad = np.arange(key.shape[1])[None, :] >= raw[count][:, None]
        order = np.argsort(np.where(pad, big, key), axis=1, kind="stable")
        for member in members[name]:
            raw[member] = np.take_along_axis(raw[member], order, axis=1)


def _ordered(raw: RawBatch, kinetics: str) -> RawBatch:
    """The keys in the order of :func:`graphs.sample_networks` (then the answers)."""
    keys = ["n_nodes", "edge_src", "edge_dst", "n_edges", "in_node", "in_rate", "n_in"]
    keys += ["out_node", "n_out", "family"]
    keys += [f"edge_{f}" for f in FLUX_FIELDS[kinetics]]
    keys += [f"out_{f}" for f in FLUX_FIELDS[kinetics]]
    return {key: raw[key] for key in keys}
