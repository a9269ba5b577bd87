"""Exact equilibria of metabolic networks, vectorised over a raw batch.

The dynamics are x_i' = b_i + (flux into i) - (flux out of i), from x = 0, where b_i is the
inflow of input node i and every internal or sink edge e out of node j carries phi_e(x_j).
Node j is *fed* when an input reaches it; unfed nodes stay at 0 forever.

Both kinetics share a structural test: if a fed node cannot reach an output node, the closed
set of nodes it reaches gains mass and never loses any, so some concentration grows without
bound (no equilibrium).

``linear`` (LIFE, phi_e = rate_e x_j): x' = A x + b with a compartmental matrix A. When every
fed node reaches an output, A restricted to the fed nodes is nonsingular and the trajectory
converges to the solution of A x + b = 0 on the fed nodes (batched ``np.linalg.solve``);
otherwise it diverges. Exact.

``michaelis_menten`` (phi_e = vmax_e x_j / (km_e + x_j)): the system is cooperative and
compartmental, so on the fed nodes an equilibrium is unique when it exists (the Jacobian is a
compartmental matrix with no trap), and the trajectory from 0 increases to it; otherwise it
diverges. Node j's total out-flux F_j(x_j) is increasing and saturates at its capacity
C_j = sum of the vmax of its out-edges and sink. We solve for the *throughputs* y_j = F_j(x_j):

    y = b + Psi(y),   Psi_i(y) = sum over edges e: j -> i of psi_e(y_j),

where psi_e(y_j) = phi_e(F_j^{-1}(y_j)) is the share of node j's throughput that leaves along
e (the shares of a node sum to y_j, and each share's slope lies in [0, 1]). psi_e is defined
for 0 <= y_j < C_j; we continue it linearly (C^1) beyond C_j and below 0. The continued map has
a Jacobian I - Psi' that is a nonsingular M-matrix everywhere (every fed node leaks to a sink),
so it has exactly one fixed point y*, found by Newton's method in a few steps (a monotone,
Newton-accelerated iteration from below takes over in the rare cases where Newton cycles, see
:func:`_throughputs`). An equilibrium exists iff y*_j < C_j at every fed node; then
x_j = F_j^{-1}(y_j) (a monotone Newton iteration on 1 / (C_j - F_j), which is concave, and
linear when all km of node j are equal). Unlike the plain monotone iteration
x <- F^{-1}(b + inflow(x)), whose rate tends to 1 near criticality and on heavily recycling
cycles, this converges fast whatever the margin, and divergence never has to be watched
asymptotically: it shows as y*_j >= C_j.

Undecided (``undecided`` True, ``exists`` False, answers NaN): no convergence within
UNDAMPED_STEPS + MAX_MONOTONE steps, or some fed node's throughput is within CRITICAL_MARGIN
(relative) of its capacity, where rounding could flip the decision and the concentrations
(which grow like 1 / margin) lose their last digits. Both are very rare on random networks (see
``benchmarks/bench_metabolic.py``).
"""

from __future__ import annotations

import numpy as np

from synthmath.core.errors import ConfigError
from synthmath.core.task import RawBatch
from synthmath.tasks.metabolic.graphs import KINETICS, adjacency
from synthmath.tasks.metabolic.reach import fed_and_drained

#: relative distance between a fed node's throughput and its capacity below which a
#: Michaelis-Menten network is reported undecided
CRITICAL_MARGIN = 1e-6
#: full Newton steps on the throughputs before the monotone restart (see _throughputs)
UNDAMPED_STEPS = 20
#: most monotone steps (after those) before a network is reported undecided
MAX_MONOTONE = 500
#: Newton stops when every step is below this, relative to the throughput
NEWTON_TOLERANCE = 1e-13

_STRUCTURE_KEYS = (
    "n_nodes", "edge_src", "edge_dst", "n_edges", "in_node", "in_rate", "n_in", "out_node", "n_out",
)  # fmt: skip


def _count_mask(counts: np.ndarray, width: int) -> np.ndarray:
    return np.arange(width)[None, :] < np.asarray(counts)[:, None]


def _node_values(raw: RawBatch, prefix: str, key: str, width: int) -> np.ndarray:
    """Per-node (N, V) sum of ``raw[key]`` over the ``prefix`` list (inputs or outputs)."""
    nodes = np.asarray(raw[f"{prefix}_node"])
    rows, slot = np.nonzero(_count_mask(raw[f"n_{prefix}"], nodes.shape[1]))
    out = np.zeros((len(nodes), width))
    np.add.at(out, (rows, nodes[rows, slot]), np.asarray(raw[key])[rows, slot])
    return out


def _node_flags(raw: RawBatch, prefix: str, width: int) -> np.ndarray:
    """(N, V) bool: the nodes of the ``prefix`` list (inputs or outputs)."""
    nodes = np.asarray(raw[f"{prefix}_node"])
    rows, slot = np.nonzero(_count_mask(raw[f"n_{prefix}"], nodes.shape[1]))
    flags = np.zeros((len(nodes), width), dtype=bool)
    flags[rows, nodes[rows, slot]] = True
    return flags


def structure(raw: RawBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(adjacency (N, V, V), fed (N, V), drained (N,))`` of a raw batch.

    ``fed``: nodes reachable from an input; ``drained``: every fed node reaches an output
    node (necessary for an equilibrium under both kinetics, sufficient for linear).
    """
    adj = adjacency(raw)
    inputs, outputs = _node_flags(raw, "in", adj.shape[1]), _node_flags(raw, "out", adj.shape[1])
    return adj, *fed_and_drained(adj, inputs, outputs)


def solve(raw: RawBatch, kinetics: str) -> dict[str, np.ndarray]:
    """Equilibrium reached from x = 0 of every network of a raw batch.

    Returns ``exists`` (N,) bool, ``conc`` (N, V) (V = the largest node count), ``flow``
    (N, E) and ``out_flow`` (N, O): NaN where no equilibrium, 0.0 in the padding; and
    ``undecided`` (N,) bool (always False for linear kinetics).
    """
    if kinetics not in KINETICS:
        raise ConfigError(f"kinetics: unknown value {kinetics!r}; allowed: {', '.join(KINETICS)}")
    fields = ("rate",) if kinetics == "linear" else ("vmax", "km")
    for key in (*_STRUCTURE_KEYS, *(f"{s}_{f}" for s in ("edge", "out") for f in fields)):
        if key not in raw:
            raise ConfigError(f"raw batch: missing key {key!r} needed by {kinetics} kinetics")
    adj, fed, drained = structure(raw)
    n_nets, width = fed.shape
    inflow = _node_values(raw, "in", "in_rate", width)
    src = np.asarray(raw["edge_src"])
    out_node = np.asarray(raw["out_node"])
    e_valid = _count_mask(raw["n_edges"], src.shape[1])
    o_valid = _count_mask(raw["n_out"], out_node.shape[1])
    undecided = np.zeros(n_nets, dtype=bool)
    if kinetics == "linear":
        conc = _linear_concentrations(raw, adj, fed & drained[:, None], inflow)
        exists = drained
    else:
        conc, exists, undecided = _mm_concentrations(raw, fed, drained, inflow)
    rows = np.arange(n_nets)[:, None]
    x_src = conc[rows, np.where(e_valid, src, 0)]
    x_out = conc[rows, np.where(o_valid, out_node, 0)]
    if kinetics == "linear":
        flow, out_flow = raw["edge_rate"] * x_src, raw["out_rate"] * x_out
    else:
        flow = raw["edge_vmax"] * x_src / np.where(e_valid, raw["edge_km"] + x_src, 1.0)
        out_flow = raw["out_vmax"] * x_out / np.where(o_valid, raw["out_km"] + x_out, 1.0)
    missing = ~exists[:, None]
    return {
        "exists": exists,
        "conc": np.where(missing & _count_mask(raw["n_nodes"], width), np.nan, conc),
        "flow": np.where(e_valid, np.where(missing, np.nan, flow), 0.0),
        "out_flow": np.where(o_valid, np.where(missing, np.nan, out_flow), 0.0),
        "undecided": undecided,
    }


def _linear_concentrations(raw, adj, use, inflow) -> np.ndarray:
    """Solve A x + b = 0 on the nodes ``use`` (N, V); x = 0 elsewhere (identity rows)."""
    n_nets, width = use.shape
    rate = np.zeros((n_nets, width, width))
    rows, slot = np.nonzero(_count_mask(raw["n_edges"], raw["edge_src"].shape[1]))
    rate[rows, raw["edge_src"][rows, slot], raw["edge_dst"][rows, slot]] = raw["edge_rate"][
        rows, slot
    ]
    loss = rate.sum(axis=2) + _node_values(raw, "out", "out_rate", width)
    # -A: loss on the diagonal, minus the rate of j -> i at (i, j)
    matrix = -np.swapaxes(rate, 1, 2)
    diagonal = np.arange(width)
    matrix[:, diagonal, diagonal] = loss
    matrix = np.where(use[:, :, None] & use[:, None, :], matrix, 0.0)
    matrix[:, diagonal, diagonal] = np.where(use, loss, 1.0)
    rhs = np.where(use, inflow, 0.0)
    return np.linalg.solve(matrix, rhs[:, :, None])[:, :, 0]


# ---- Michaelis-Menten -------------------------------------------------------------------------
class _Terms:
    """The out-flux terms (internal edges and sinks) of some networks, as flat arrays.

    ``net`` indexes the networks, ``src`` the source node, ``dst`` the target node (-1 for a
    sink); ``node`` = net * width + src is the flat source node. Per flat node: ``capacity``
    (sum of vmax); per term: its share of the throughput's slope at saturation (``share_sat``)
    and at zero (``share_zero``).
    """

    def __init__(self, net, src, dst, vmax, km, n_nets, width):
        self.net, self.src, self.dst, self.vmax, self.km = net, src, dst, vmax, km
        self.n_nets, self.width = n_nets, width
        self.node = net * width + src
        size = n_nets * width
        self.capacity = np.bincount(self.node, vmax, minlength=size)
        vk, v_over_k = vmax * km, vmax / km
        self.share_sat = vk / np.bincount(self.node, vk, minlength=size)[self.node]
        self.share_zero = v_over_k / np.bincount(self.node, v_over_k, minlength=size)[self.node]
        internal = dst >= 0
        self.internal = np.flatnonzero(internal)
        self.target = (net * width + dst)[internal]

    @classmethod
    def from_raw(cls, raw: RawBatch, rows: np.ndarray, width: int) -> _Terms:
        parts = []
        for prefix, count in (("edge", "n_edges"), ("out", "n_out")):
            nodes = np.asarray(raw["edge_src" if prefix == "edge" else "out_node"])[rows]
            net, slot = np.nonzero(_count_mask(np.asarray(raw[count])[rows], nodes.shape[1]))
            dst = np.asarray(raw["edge_dst"])[rows][net, slot] if prefix == "edge" else -1
            parts.append(
                (
                    net,
                    nodes[net, slot].astype(np.int64),
                    np.broadcast_to(dst, net.shape).astype(np.int64),
                    np.asarray(raw[f"{prefix}_vmax"])[rows][net, slot],
                    np.asarray(raw[f"{prefix}_km"])[rows][net, slot],
                )
            )
        columns = [np.concatenate(c) for c in zip(*parts)]
        return cls(*columns, len(rows), width)

    def subset(self, keep: np.ndarray) -> _Terms:
        """The terms of the networks with ``keep`` (n_nets,) True, renumbered."""
        sel = keep[self.net]
        renumber = np.cumsum(keep) - 1
        return _Terms(
            renumber[self.net[sel]],
            self.src[sel],
            self.dst[sel],
            self.vmax[sel],
            self.km[sel],
            int(keep.sum()),
            self.width,
        )


def _invert_outflux(terms: _Terms, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """x with F(x) = y at the flat nodes where 0 < y < capacity (elsewhere 0), from guess x.

    Newton on h(x) = 1 / (C - F(x)) = 1 / sum(vmax km / (km + x)), which is increasing and
    concave: from any start, the first step lands below the root and the next ones climb to it
    monotonically (one step when all km of the node are equal, since h is then linear).
    """
    slack = terms.capacity - y
    moving = (y > 0) & (slack > 0)
    safe_slack = np.where(moving, slack, 1.0)
    x = np.where(moving, x, 0.0)
    last_step = np.full(len(y), np.inf)
    size = len(y)
    for _ in range(200):
        xt = x[terms.node]
        part = terms.vmax * terms.km / (terms.km + xt)
        rest = np.bincount(terms.node, part, minlength=size)  # C - F(x)
        slope = np.bincount(terms.node, part / (terms.km + xt), minlength=size)  # F'(x)
        step = rest * (rest - safe_slack) / (safe_slack * np.where(moving, slope, 1.0))
        step = np.where(moving, step, 0.0)
        x = np.maximum(x + step, 0.0)
        # done at a 1-ulp step, or once tiny steps stop shrinking (rounding noise, which
        # near capacity is about eps * C / slack relative: the problem's own conditioning)
        noise = (np.abs(step) < 1e-9 * x) & (np.abs(step) >= last_step)
        moving &= (np.abs(step) > 4e-16 * x) & ~noise
        if not moving.any():
            break
        last_step = np.abs(step)
    return x


def _shares(terms: _Terms, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each term's share psi of its node's throughput y and the slope dpsi / dy (flat)."""
    yt, xt = y[terms.node], x[terms.node]
    cap = terms.capacity[terms.node]
    kx = terms.km + xt
    dphi = terms.vmax * terms.km / kx**2
    total = np.bincount(terms.node, dphi, minlength=len(y))[terms.node]
    middle = (yt > 0) & (yt < cap)
    psi = np.where(middle, terms.vmax * xt / kx, 0.0)
    slope = np.where(middle, dphi / np.where(middle, total, 1.0), 0.0)
    above, below = yt >= cap, yt <= 0
    psi = np.where(above, terms.vmax + (yt - cap) * terms.share_sat, psi)
    psi = np.where(below, terms.share_zero * yt, psi)
    slope = np.where(above, terms.share_sat, np.where(below, terms.share_zero, slope))
    return psi, slope


def _mm_concentrations(raw, fed, drained, inflow):
    """(conc (N, V), exists (N,), undecided (N,)) for Michaelis-Menten kinetics."""
    n_nets, width = fed.shape
    conc = np.zeros((n_nets, width))
    exists, undecided = drained.copy(), np.zeros(n_nets, dtype=bool)
    rows = np.flatnonzero(drained & fed.any(axis=1))  # drained, nothing fed: x = 0
    if len(rows) == 0:
        return conc, exists, undecided
    terms = _Terms.from_raw(raw, rows, width)
    y, converged = _throughputs(terms, fed[rows], inflow[rows])
    fed_flat = fed[rows].ravel()
    margin = ((terms.capacity - y.ravel()) / np.where(fed_flat, terms.capacity, 1.0)).reshape(
        len(rows), width
    )
    margin = np.where(fed[rows], margin, np.inf)
    over = np.any(margin <= -CRITICAL_MARGIN, axis=1)
    close = np.any(np.abs(margin) < CRITICAL_MARGIN, axis=1)
    unsure = ~converged | (close & ~over)
    ok = ~over & ~unsure
    x = _invert_outflux(terms, y.ravel(), np.zeros(y.size)).reshape(y.shape)
    conc[rows] = np.where(ok[:, None] & fed[rows], x, 0.0)
    exists[rows] = ok
    undecided[rows] = unsure
    return conc, exists, undecided


def _newton_system(terms: _Terms, fed: np.ndarray, inflow: np.ndarray, y: np.ndarray, x):
    """Residual y - b - Psi(y) (m, V), its Jacobian I - Psi' (m, V, V), and x = F^{-1}(y).

    Unfed nodes get residual 0 and an identity row, so Newton keeps them at y = 0.
    """
    x = _invert_outflux(terms, y.ravel(), x.ravel())
    psi, slope = _shares(terms, y.ravel(), x)
    t = terms.internal
    influx = np.bincount(terms.target, psi[t], minlength=y.size).reshape(y.shape)
    residual = np.where(fed, y - inflow - influx, 0.0)
    jac = np.eye(y.shape[1]) - _slope_matrix(terms, fed, slope)
    return residual, jac, x.reshape(y.shape)


def _slope_matrix(terms: _Terms, fed: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """(m, V, V) matrix with the slope of edge j -> i at (i, j), rows of unfed nodes zero."""
    t = terms.internal
    net, dst, src = terms.net[t], terms.dst[t], terms.src[t]
    matrix = np.zeros((terms.n_nets, terms.width, terms.width))
    matrix[net, dst, src] = slope[t] * fed[net, dst]
    return matrix


def _lower_slopes(terms: _Terms, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per term, a lower bound of its share's slope at every throughput >= y (flat arrays).

    The slope of term e of node j is 1 / sum_f (vmax_f km_f / vmax_e km_e) q_f(x)^2 with
    q_f(x) = (km_e + x) / (km_f + x), and each q_f moves monotonically towards 1 as x grows,
    so replacing q_f^2 by max(q_f^2, 1) bounds the slope below for all larger x. Above
    capacity the continued share is linear (slope share_sat).
    """
    size = len(y)
    order = np.argsort(terms.node, kind="stable")
    counts = np.bincount(terms.node, minlength=size)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - (np.cumsum(counts) - counts)[terms.node[order]]
    km_table = np.ones((size, max(1, int(counts.max(initial=0)))))
    vk_table = np.zeros_like(km_table)  # the node's terms side by side, padding weight 0
    km_table[terms.node, rank] = terms.km
    vk_table[terms.node, rank] = terms.vmax * terms.km
    xt = np.where(y[terms.node] > 0, x[terms.node], 0.0)[:, None]
    q2 = ((terms.km[:, None] + xt) / (km_table[terms.node] + xt)) ** 2
    bound = terms.vmax * terms.km / (vk_table[terms.node] * np.maximum(q2, 1.0)).sum(axis=1)
    return np.where(y[terms.node] >= terms.capacity[terms.node], terms.share_sat, bound)


def _small(step: np.ndarray, y: np.ndarray, residual: np.ndarray, inflow: np.ndarray):
    """(m,) True where a Newton step is negligible, or the residual is at rounding level."""
    top = np.abs(y).max(axis=1, keepdims=True)
    small = np.all(np.abs(step) <= NEWTON_TOLERANCE * np.maximum(np.abs(y), 1e-3 * top), axis=1)
    noise = 64 * np.finfo(float).eps * (top[:, 0] + inflow.max(axis=1))
    return small | (np.abs(residual).max(axis=1) <= noise)


def _throughputs(terms: _Terms, fed: np.ndarray, inflow: np.ndarray):
    """Fixed point y = b + Psi(y) of the continued throughput map: ``(y (m, V), converged)``.

    Full Newton steps first (UNDAMPED_STEPS at most): almost every network converges in a
    handful, even when a step crosses capacities and raises the residual on the way. The rare
    rest (strongly mixed km on recycling cycles, where Newton can cycle) restarts from y = 0
    with a monotone iteration: y <- y + (I - A)^{-1} (b + Psi(y) - y) with A the lower slope
    bounds of :func:`_lower_slopes`, which keeps y a subsolution (y <= b + Psi(y), hence
    y <= the fixed point) and increases it; the Newton point replaces it whenever that is a
    subsolution too. A subsolution past a capacity proves NO at once. Converged networks
    leave the working set.
    """
    m, width = fed.shape
    y_final, converged = np.zeros((m, width)), np.zeros(m, dtype=bool)
    active = np.arange(m)
    y, x = np.zeros((m, width)), np.zeros((m, width))
    for _ in range(UNDAMPED_STEPS):
        residual, jac, x = _newton_system(terms, fed[active], inflow[active], y, x)
        step = np.linalg.solve(jac, -residual[:, :, None])[:, :, 0]
        done = _small(step, y, residual, inflow[active])
        y = y + step
        y_final[active[done]], converged[active[done]] = y[done], True
        keep = ~done
        active, terms, y, x = active[keep], terms.subset(keep), y[keep], x[keep]
        if len(active) == 0:
            return y_final, converged
    # the rest: monotone iteration from below, accelerated by Newton when that is safe
    y, x = np.zeros_like(y), np.zeros_like(x)
    f, b = fed[active], inflow[active]
    for _ in range(MAX_MONOTONE):
        residual, jac, x = _newton_system(terms, f, b, y, x)
        step = np.linalg.solve(jac, -residual[:, :, None])[:, :, 0]
        done = _small(step, y, residual, b)
        # y is a subsolution, so y <= y*: past a capacity, the answer is NO already
        over = np.any(f & (y >= terms.capacity.reshape(y.shape) * (1 + CRITICAL_MARGIN)), axis=1)
        y_final[active[done]], converged[active[done]] = y[done] + step[done], True
        y_final[active[over]], converged[active[over]] = y[over], True
        keep = ~done & ~over
        if not keep.all():
            active, terms, f, b = active[keep], terms.subset(keep), f[keep], b[keep]
            y, x, step, residual = y[keep], x[keep], step[keep], residual[keep]
        if len(active) == 0:
            break
        lower = np.eye(width) - _slope_matrix(terms, f, _lower_slopes(terms, y.ravel(), x.ravel()))
        safe = y + np.linalg.solve(lower, -residual[:, :, None])[:, :, 0]
        newton = y + step
        r_newton = _newton_system(terms, f, b, newton, x)[0]
        tolerance = 64 * np.finfo(float).eps * (np.abs(newton) + b.max(axis=1, keepdims=True))
        below = np.all(r_newton <= tolerance, axis=1)[:, None]
        y = np.where(below, np.maximum(newton, safe), safe)
    y_final[active] = y
    return y_final, converged
