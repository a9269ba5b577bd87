"""A cheap proof that a Michaelis-Menten network has no equilibrium (a filter before the solve).

Balanced Michaelis-Menten sets need as many networks with an equilibrium as without, and only
about one random network in 20 has one. Most draws are settled by structure (a fed node that
cannot reach an output, :func:`synthmath.tasks.metabolic.reach.fed_and_drained`); most of the
drained rest lack an equilibrium because some node receives more than it can pass on. This
module proves that for most of them with a few passes over the edges, so that the exact solver
(:mod:`synthmath.tasks.metabolic.solvers`) runs on few networks besides those that have one.

The bound (v = vmax, k = km, sums over the out-terms f of node j: its edges and its sink). At
concentration x_j, out-term e of node j carries the share
s_e(x_j) = (v_e / (k_e + x_j)) / sum_f v_f / (k_f + x_j) of the node's throughput y_j. Each ratio
(k_e + x) / (k_f + x) moves monotonically towards 1 as x grows, so for every x >= a >= 0

    s_e(x) >= l_e(a) = v_e / sum_f v_f max(1, (k_e + a) / (k_f + a)).

Suppose the network has an equilibrium, with throughputs y and concentrations x >= a (a node
vector). Then y = b + Psi(y) >= b + L y with L[i, j] = sum of l_e(a_j) over the edges
e: j -> i (b: the inflows), and y_j < C_j = sum_f v_f (the capacity) at every node receiving
anything. Since L >= 0, iterating z <- b + L z from any z <= y keeps z <= y. So a z with
z_j >= C_j > 0 at some node proves that there is no equilibrium. Rounds:

1. a = 0, z = b, BOUND_STEPS iterations;
2. for the networks not settled yet, a = a lower bound of the concentration at throughput z
   (below), and BOUND_STEPS more iterations from z (the shares grow with a).

Concentration bound: x_j = F_j^{-1}(y_j) where F_j(x) = sum_f v_f x / (k_f + x); with
h(x) = 1 / (C_j - F_j(x)), increasing and concave, one Newton step from 0 lands below the root:
a_j = z_j C_j / ((C_j - z_j) sum_f v_f / k_f) <= F_j^{-1}(z_j) <= x_j.

:func:`no_equilibrium` asks for z_j >= C_j (1 + BOUND_MARGIN), far beyond rounding, so the exact
solver never finds an equilibrium where the bound says there is none (it could at most leave
such a network undecided, which callers check on the networks they keep). On random 10-node
networks of every family the bound settles about 80% of the drained networks, 90% of those
without an equilibrium.
"""

from __future__ import annotations

import numpy as np

from synthmath.core.task import RawBatch

#: relative excess of the lower bound over a capacity that proves "no equilibrium"
BOUND_MARGIN = 1e-6
#: iterations z <- b + L z per round (more settle a few more networks, each costs a pass)
BOUND_STEPS = 12
#: rounds: the first with a = 0, then with the concentration bound of the last round's z
BOUND_ROUNDS = 2


class _Terms:
    """The out-terms (edges, then sinks) of a raw batch as flat arrays sorted by source node,
    with per flat node (net * width + node) capacities and inflows."""

    def __init__(self, raw: RawBatch):
        edges, sinks = np.asarray(raw["edge_src"]), np.asarray(raw["out_node"])
        n_edges, n_out = np.asarray(raw["n_edges"]), np.asarray(raw["n_out"])
        e_net, e_slot = np.nonzero(np.arange(edges.shape[1]) < n_edges[:, None])
        o_net, o_slot = np.nonzero(np.arange(sinks.shape[1]) < n_out[:, None])
        self.n_nets = len(n_edges)
        self.width = width = max(1, int(np.asarray(raw["n_nodes"]).max(initial=0)))
        size = self.n_nets * width
        flat = np.concatenate(
            [e_net * width + edges[e_net, e_slot], o_net * width + sinks[o_net, o_slot]]
        )
        order = np.argsort(flat, kind="stable")  # nearly sorted already: cheap
        self.node = flat[order]  # flat source node of each term, sorted
        vmax = np.concatenate([raw["edge_vmax"][e_net, e_slot], raw["out_vmax"][o_net, o_slot]])
        km = np.concatenate([raw["edge_km"][e_net, e_slot], raw["out_km"][o_net, o_slot]])
        self.vmax, self.km = vmax[order], km[order]
        dst = np.full(len(flat), -1, dtype=np.int64)
        dst[: len(e_net)] = e_net * width + raw["edge_dst"][e_net, e_slot]
        self.dst = dst[order]  # flat target node, -1 for a sink
        self.capacity = np.bincount(self.node, self.vmax, minlength=size)
        self.slope_zero = np.bincount(self.node, self.vmax / self.km, minlength=size)  # F'(0)
        in_node = np.asarray(raw["in_node"])
        i_net, i_slot = np.nonzero(np.arange(in_node.shape[1]) < np.asarray(raw["n_in"])[:, None])
        self.inflow = np.bincount(
            i_net * width + in_node[i_net, i_slot], raw["in_rate"][i_net, i_slot], minlength=size
        )

    def keep(self, nets: np.ndarray) -> None:
        """Keep only the terms of the networks ``nets`` (N,) bool (flat numbering unchanged)."""
        mask = nets[self.node // self.width]
        self.node, self.vmax, self.km, self.dst = (
            a[mask] for a in (self.node, self.vmax, self.km, self.dst)
        )

    def shares(self, a: np.ndarray) -> np.ndarray:
        """l_e(a) of every term (module docstring), ``a`` per flat node."""
        group, v = self.node, self.vmax
        k = self.km + a[group]
        denominator = v.copy()
        # terms d apart in the sorted order that share a node: each adds to the other's sum
        for d in range(1, len(group)):
            same = group[d:] == group[:-d]
            if not same.any():
                break
            low, high = slice(None, -d), slice(d, None)
            denominator[low] += np.where(same, v[high] * np.maximum(1.0, k[low] / k[high]), 0.0)
            denominator[high] += np.where(same, v[low] * np.maximum(1.0, k[high] / k[low]), 0.0)
        return v / denominator

    def iterate(self, z: np.ndarray, a: np.ndarray, steps: int) -> np.ndarray:
        """``steps`` iterations z <- b + L(a) z (flat node vectors)."""
        internal = self.dst >= 0
        share = self.shares(a)[internal]
        src, dst = self.node[internal], self.dst[internal]
        for _ in range(steps):
            z = self.inflow + np.bincount(dst, share * z[src], minlength=len(self.inflow))
        return z

    def concentration_bound(self, z: np.ndarray) -> np.ndarray:
        """A lower bound of the concentration at throughput z (0 where z >= capacity)."""
        below = (z < self.capacity) & (self.slope_zero > 0)
        gap = np.where(below, (self.capacity - z) * self.slope_zero, 1.0)
        return np.where(below, z * self.capacity / gap, 0.0)

    def proves_none(self, z: np.ndarray) -> np.ndarray:
        """(N,) True where some node's lower throughput passes its capacity."""
        over = (z > 0) & (z >= self.capacity * (1.0 + BOUND_MARGIN))
        return over.reshape(self.n_nets, self.width).any(axis=1)


def inflow_over_capacity(raw: RawBatch) -> np.ndarray:
    """(N,) True where an input's own inflow reaches its capacity: the bound at z = b, which
    needs the inflows and vmax only (not km)."""
    n_nets = len(raw["n_nodes"])
    width = max(1, int(np.asarray(raw["n_nodes"]).max(initial=0)))
    totals = []
    for nodes, count, values in (
        ("edge_src", "n_edges", "edge_vmax"),
        ("out_node", "n_out", "out_vmax"),
        ("in_node", "n_in", "in_rate"),
    ):
        net, slot = np.nonzero(np.arange(raw[nodes].shape[1]) < np.asarray(raw[count])[:, None])
        flat = net * width + raw[nodes][net, slot]
        totals.append(np.bincount(flat, raw[values][net, slot], minlength=n_nets * width))
    capacity, inflow = totals[0] + totals[1], totals[2]
    over = (inflow > 0) & (inflow >= capacity * (1.0 + BOUND_MARGIN))
    return over.reshape(n_nets, width).any(axis=1)


def no_equilibrium(
    raw: RawBatch, steps: int = BOUND_STEPS, rounds: int = BOUND_ROUNDS
) -> np.ndarray:
    """(N,) True where the bound proves that a Michaelis-Menten network has no equilibrium
    (see the module docstring); False says nothing."""
    terms = _Terms(raw)
    z = terms.inflow
    proven = terms.proves_none(z)  # z = b settles many already
    a = np.zeros_like(z)
    for round_ in range(rounds):
        if proven.all():
            break
        terms.keep(~proven)
        if round_ > 0:
            a = terms.concentration_bound(z)
        z = terms.iterate(z, a, steps)
        proven |= terms.proves_none(z)
    return proven
