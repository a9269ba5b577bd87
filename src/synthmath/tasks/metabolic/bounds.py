"""A cheap proof that a Michaelis-Menten network has no equilibrium (a filter before the solve).

Balanced Michaelis-Menten sets need as many networks with an equilibrium as without, and only
about one random network in 20 has one. Most draws are settled by structure (a fed node that
cannot reach an output, :func:`synthmath.tasks.metabolic.solvers.fed_and_drained`); most of the
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
from synthmath.tasks.metabolic.batches import take

#: relative excess of the lower bound over a capacity that proves "no equilibrium"
BOUND_MARGIN = 1e-6
#: iterations z <- b + L z per round (more settle a few more networks, each costs a pass)
BOUND_STEPS = 12
#: rounds: the first with a = 0, then with the concentration bound of the last round's z
BOUND_ROUNDS = 2


class _Terms:
    """The out-terms (edges, then sinks) of a raw batch as flat arrays, sorted by node."""

    def __init__(self, raw: RawBatch):
        edges, sinks = np.asarray(raw["edge_src"]), np.asarray(raw["out_node"])
        n_edges, n_out = np.asarray(raw["n_edges"]), np.asarray(raw["n_out"])
        e_net, e_slot = np.nonzero(np.arange(edges.shape[1]) < n_edges[:, None])
        o_net, o_slot = np.nonzero(np.arange(sinks.shape[1]) < n_out[:, None])
        self.n_nets = len(n_edges)
        self.width = max(1, int(np.asarray(raw["n_nodes"]).max(initial=0)))
        net = np.concatenate([e_net, o_net])
        node = np.concatenate([edges[e_net, e_slot], sinks[o_net, o_slot]]).astype(np.int64)
        flat = net * self.width + node
        order = np.argsort(flat, kind="stable")  # nearly sorted already: cheap
        self.node = flat[order]  # flat source node (net * width + node), sorted
        self.vmax = np.concatenate(
            [raw["edge_vmax"][e_net, e_slot], raw["out_vmax"][o_net, o_slot]]
        )[order]
        self.km = np.concatenate([raw["edge_km"][e_net, e_slot], raw["out_km"][o_net, o_slot]])[
            order
        ]
        size = self.n_nets * self.width
        self.capacity = np.bincount(self.node, self.vmax, minlength=size)
        self.slope_zero = np.bincount(self.node, self.vmax / self.km, minlength=size)  # F'(0)
        internal = order < len(e_net)
        edge = order[internal]
        self.edge_src = self.node[internal]
        self.edge_dst = e_net[edge] * self.width + raw["edge_dst"][e_net[edge], e_slot[edge]]
        self.internal = internal
        in_node = np.asarray(raw["in_node"])
        i_net, i_slot = np.nonzero(np.arange(in_node.shape[1]) < np.asarray(raw["n_in"])[:, None])
        self.inflow = np.bincount(
            i_net * self.width + in_node[i_net, i_slot],
            raw["in_rate"][i_net, i_slot],
            minlength=size,
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
        share = self.shares(a)[self.internal]
        for _ in range(steps):
            z = self.inflow + np.bincount(
                self.edge_dst, share * z[self.edge_src], minlength=len(self.inflow)
            )
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


def no_equilibrium(
    raw: RawBatch, steps: int = BOUND_STEPS, rounds: int = BOUND_ROUNDS
) -> np.ndarray:
    """(N,) True where the bound proves that a Michaelis-Menten network has no equilibrium
    (see the module docstring); False says nothing."""
    n_nets = len(raw["n_nodes"])
    proven = np.zeros(n_nets, dtype=bool)
    alive = np.arange(n_nets)
    terms, z = _Terms(raw), None
    for round_ in range(rounds):
        if round_ == 0:
            z = terms.iterate(terms.inflow, np.zeros_like(terms.inflow), steps)
        else:
            z = terms.iterate(z, terms.concentration_bound(z), steps)
        done = terms.proves_none(z)
        proven[alive[done]] = True
        if done.all() or round_ == rounds - 1:
            break
        keep = ~done
        alive = alive[keep]
        width = terms.width
        z = z.reshape(-1, width)[keep].ravel()
        terms = _Terms(take(raw, alive))
        if terms.width != width:  # the widest networks are settled: re-pad z
            z = z.reshape(-1, width)[:, : terms.width].ravel()
    return proven
