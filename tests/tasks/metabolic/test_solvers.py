"""Exact equilibria of metabolic networks against independent references.

References: direct ODE integration (scipy BDF) from x = 0, a plain monotone fixed-point
iteration with bisection, closed forms of small networks, the published cholesterol network,
and invariants (relabelling, flux conservation).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from synthmath.core.errors import ConfigError
from synthmath.tasks.metabolic import graphs
from synthmath.tasks.metabolic.solvers import solve

FAMILY_MIX = "erdos_renyi,preferential,small_world,dag,chain,tree,cycle_rich"


def _network(raw, i, kinetics):
    """Network i as plain arrays: n, edges (src, dst), edge params, inflow vector, sinks."""
    n = int(raw["n_nodes"][i])
    ne, no, ni = int(raw["n_edges"][i]), int(raw["n_out"][i]), int(raw["n_in"][i])
    src, dst = raw["edge_src"][i, :ne].astype(int), raw["edge_dst"][i, :ne].astype(int)
    out = raw["out_node"][i, :no].astype(int)
    b = np.zeros(n)
    b[raw["in_node"][i, :ni]] = raw["in_rate"][i, :ni]
    if kinetics == "linear":
        return n, src, dst, out, b, (raw["edge_rate"][i, :ne],), (raw["out_rate"][i, :no],)
    edge = (raw["edge_vmax"][i, :ne], raw["edge_km"][i, :ne])
    return n, src, dst, out, b, edge, (raw["out_vmax"][i, :no], raw["out_km"][i, :no])


def _flux(params, x):
    if len(params) == 1:
        return params[0] * x, params[0] * np.ones_like(x)
    vmax, km = params
    return vmax * x / (km + x), vmax * km / (km + x) ** 2


def _rhs_and_jacobian(raw, i, kinetics):
    """x' = b + inflow - outflow of network i, written directly from the edge lists."""
    n, src, dst, out, b, edge, sink = _network(raw, i, kinetics)

    def rhs(_t, x):
        f_edge, _ = _flux(edge, x[src])
        f_sink, _ = _flux(sink, x[out])
        dx = b.copy()
        np.add.at(dx, src, -f_edge)
        np.add.at(dx, dst, f_edge)
        np.add.at(dx, out, -f_sink)
        return dx

    def jac(_t, x):
        _, d_edge = _flux(edge, x[src])
        _, d_sink = _flux(sink, x[out])
        m = np.zeros((n, n))
        np.add.at(m, (src, src), -d_edge)
        np.add.at(m, (dst, src), d_edge)
        np.add.at(m, (out, out), -d_sink)
        return m

    return n, rhs, jac


def _integrate(raw, i, kinetics):
    """(x(T), x(2T), |x'(2T)|) from x = 0, T doubled until x' is tiny or T = 2^24."""
    n, rhs, jac = _rhs_and_jacobian(raw, i, kinetics)
    x, t = np.zeros(n), 0.0
    horizon = 256.0
    while True:
        sol = solve_ivp(rhs, (t, horizon), x, method="BDF", jac=jac, rtol=1e-11, atol=1e-13)
        assert sol.success, sol.message
        x_t, t = sol.y[:, -1], horizon
        sol = solve_ivp(rhs, (t, 2 * t), x_t, method="BDF", jac=jac, rtol=1e-11, atol=1e-13)
        x_2t, t = sol.y[:, -1], 2 * t
        speed = np.abs(rhs(0.0, x_2t)).max()
        if speed < 1e-11 * max(1.0, np.abs(x_2t).max()) or t >= 2.0**24:
            return x_t, x_2t, speed
        x, horizon = x_2t, 2 * t


def _pick(kinetics, yes, no, seed):
    """A raw batch of `yes` networks with an equilibrium and `no` without, mixed families."""
    rng = np.random.default_rng(seed)
    raw = graphs.sample_networks(
        600, rng, family=FAMILY_MIX, nodes_min=4, nodes_max=9, kinetics=kinetics
    )
    sol = solve(raw, kinetics)
    chosen = np.concatenate(
        [np.flatnonzero(sol["exists"])[:yes], np.flatnonzero(~sol["exists"])[:no]]
    )
    assert len(chosen) == yes + no
    return {k: v[chosen] for k, v in raw.items()}, {k: v[chosen] for k, v in sol.items()}


@pytest.mark.parametrize("kinetics", ["linear", "michaelis_menten"])
def test_matches_ode_integration(kinetics):
    raw, sol = _pick(kinetics, yes=8, no=7, seed=11)
    assert len(set(raw["family"].tolist())) >= 4
    for i in range(len(raw["n_nodes"])):
        n = int(raw["n_nodes"][i])
        x_t, x_2t, speed = _integrate(raw, i, kinetics)
        if sol["exists"][i]:
            conc = sol["conc"][i, :n]
            assert speed < 1e-9 * max(1.0, conc.max()), (i, speed)
            np.testing.assert_allclose(x_2t, conc, rtol=1e-6, atol=1e-9 * conc.max())
        else:
            # some concentration keeps growing: about doubling between T and 2T
            growth = (x_2t - x_t).max()
            assert growth > 0.2 * np.abs(x_t).max(), (i, x_t, x_2t)


def test_cholesterol_network():
    """Reverse cholesterol transport (McQuade et al. 2017), linear kinetics."""
    edges = [(0, 3), (1, 3), (2, 3), (3, 4), (3, 5), (4, 5)]
    rates = [0.9196, 0.7402, 0.2922, 0.8157, 0.4870, 0.5868]
    raw = graphs.single_network(
        6, edges, rates, [(0, 0.7017), (1, 0.6479), (2, 0.7520)], [(5, 0.8255)]
    )
    sol = solve(raw, "linear")
    assert sol["exists"].tolist() == [True]
    np.testing.assert_array_equal(
        np.round(sol["conc"][0], 3), [0.763, 0.875, 2.574, 1.613, 2.243, 2.546]
    )
    np.testing.assert_allclose(sol["out_flow"][0, 0], 0.7017 + 0.6479 + 0.7520, rtol=1e-12)


def _relabel(raw, rng):
    """Permute the node labels and the edge order of every network (new raw, permutations)."""
    out = {k: v.copy() for k, v in raw.items()}
    n_nets, width = len(raw["n_nodes"]), int(raw["n_nodes"].max())
    perms, edge_orders = [], []
    for i in range(n_nets):
        n, ne = int(raw["n_nodes"][i]), int(raw["n_edges"][i])
        perm = rng.permutation(n)  # old node k becomes perm[k]
        order = rng.permutation(ne)
        for key in ("edge_src", "edge_dst"):
            out[key][i, :ne] = perm[raw[key][i, :ne][order]]
        for key in ("edge_rate", "edge_vmax", "edge_km"):
            if key in raw:
                out[key][i, :ne] = raw[key][i, :ne][order]
        for key, count in (("in_node", "n_in"), ("out_node", "n_out")):
            c = int(raw[count][i])
            out[key][i, :c] = perm[raw[key][i, :c]]
        perms.append(np.concatenate([perm, np.arange(n, width)]))
        edge_orders.append(order)
    return out, perms, edge_orders


@pytest.mark.parametrize("kinetics", ["linear", "michaelis_menten"])
def test_relabelling_permutes_the_answer(kinetics):
    rng = np.random.default_rng(5)
    raw = graphs.sample_networks(
        300, rng, family=FAMILY_MIX, nodes_min=3, nodes_max=12, kinetics=kinetics
    )
    sol = solve(raw, kinetics)
    moved, perms, orders = _relabel(raw, rng)
    sol2 = solve(moved, kinetics)
    np.testing.assert_array_equal(sol["exists"], sol2["exists"])
    assert sol["exists"].sum() >= 5 and (~sol["exists"]).sum() >= 5
    for i in np.flatnonzero(sol["exists"]):
        conc2 = np.empty_like(sol["conc"][i])
        conc2[perms[i]] = sol["conc"][i]
        np.testing.assert_allclose(sol2["conc"][i], conc2, rtol=1e-9, atol=1e-14)
        ne = int(raw["n_edges"][i])
        np.testing.assert_allclose(
            sol2["flow"][i, :ne], sol["flow"][i, :ne][orders[i]], rtol=1e-9, atol=1e-14
        )


@pytest.mark.parametrize("kinetics", ["linear", "michaelis_menten"])
def test_flux_balance_at_equilibrium(kinetics):
    rng = np.random.default_rng(7)
    raw = graphs.sample_networks(
        2000, rng, family=FAMILY_MIX, nodes_min=2, nodes_max=15, kinetics=kinetics
    )
    sol = solve(raw, kinetics)
    yes = np.flatnonzero(sol["exists"])
    assert len(yes) >= 50
    for i in yes:
        n, src, dst, out, b, _, _ = _network(raw, i, kinetics)
        ne, no = len(src), len(out)
        flow, out_flow = sol["flow"][i, :ne], sol["out_flow"][i, :no]
        balance = b.copy()
        np.add.at(balance, dst, flow)
        np.add.at(balance, src, -flow)
        np.add.at(balance, out, -out_flow)
        scale = max(b.sum(), flow.max(initial=0.0))
        assert np.abs(balance).max() <= 1e-9 * scale, (i, balance)
        np.testing.assert_allclose(out_flow.sum(), b.sum(), rtol=1e-9)
        assert np.all(sol["conc"][i, :n] >= 0)
    no = ~sol["exists"]
    assert np.all(np.isnan(sol["conc"][no][:, 0]))
    width = sol["conc"].shape[1]
    padding = np.arange(width)[None, :] >= raw["n_nodes"][:, None]
    assert np.all(sol["conc"][padding] == 0.0)


def _monotone_reference(raw, iterations=400):
    """Plain Jacobi iteration x <- F^{-1}(b + inflow(x)) from 0, bisection for F^{-1}.

    Returns (x (N, V), blew_up (N,)): blew_up when some node's inflow reached its capacity.
    """
    n_nets, width = len(raw["n_nodes"]), int(raw["n_nodes"].max())
    vmax = np.zeros((n_nets, width, width + 1))  # column `width` = sink
    km = np.ones((n_nets, width, width + 1))
    inflow = np.zeros((n_nets, width))
    for i in range(n_nets):
        n, src, dst, out, b, (ev, ek), (ov, ok) = _network(raw, i, "michaelis_menten")
        vmax[i, src, dst], km[i, src, dst] = ev, ek
        vmax[i, out, width], km[i, out, width] = ov, ok
        inflow[i, :n] = b
    capacity = vmax.sum(axis=2)
    x = np.zeros((n_nets, width))
    blew_up = np.zeros(n_nets, dtype=bool)
    for _ in range(iterations):
        with np.errstate(divide="ignore", invalid="ignore"):
            x, blew_up = _jacobi_step(x, blew_up, vmax, km, capacity, inflow)
    return x, blew_up


def _jacobi_step(x, blew_up, vmax, km, capacity, inflow):
    """One step x <- F^{-1}(b + inflow(x)); F^{-1} by bisection on u = x / (1 + x)."""
    width = x.shape[1]
    flux = vmax[:, :, :width] * x[:, :, None] / (km[:, :, :width] + x[:, :, None])
    target = inflow + flux.sum(axis=1)  # (N, V): throughput each node must pass on
    blew_up = blew_up | np.any((target >= capacity) & (target > 0), axis=1)
    lo, hi = np.zeros_like(x), np.ones_like(x)
    for _ in range(60):
        u = (lo + hi) / 2
        trial = u / (1 - u)
        out = (vmax * trial[:, :, None] / (km + trial[:, :, None])).sum(axis=2)
        low = out < target
        lo, hi = np.where(low, u, lo), np.where(low, hi, u)
    return np.where(blew_up[:, None], x, lo / (1 - lo)), blew_up


def test_michaelis_menten_against_monotone_iteration():
    rng = np.random.default_rng(3)
    raw = graphs.sample_networks(
        150, rng, family="dag,chain,erdos_renyi", nodes_min=3, nodes_max=7,
        kinetics="michaelis_menten",
    )  # fmt: skip
    sol = solve(raw, "michaelis_menten")
    x, blew_up = _monotone_reference(raw)
    yes = sol["exists"]
    assert yes.sum() >= 5 and (~yes).sum() >= 5
    # the iteration from 0 stays below the least equilibrium, and never blows up when one exists
    assert not np.any(blew_up & yes)
    assert np.all(x[yes] <= sol["conc"][yes] * (1 + 1e-9) + 1e-12)
    # on these small acyclic-ish networks it converges: same answer
    np.testing.assert_allclose(x[yes], sol["conc"][yes], rtol=1e-8, atol=1e-12)
    # without an equilibrium it blows up (or is still far from settling)
    assert np.mean(blew_up[~yes]) > 0.9


def _two_node_cycle(inflow, vmax_back):
    """Input -> node 0 -> node 1 -> node 0, sink at 0; node 0 has equal km on both exits.

    Throughputs: y0 = inflow * (v01 + vs) / vs, y1 = inflow * v01 / vs; an equilibrium exists
    iff y0 < v01 + vs (inflow < vs) and y1 < vmax_back; then x0 = km * y0 / (C0 - y0).
    """
    v01, vs, km = 0.6, 0.4, 0.3
    return graphs.single_network(
        2,
        [(0, 1), (1, 0)],
        [(v01, km), (vmax_back, 0.5)],
        [(0, inflow)],
        [(0, (vs, km))],
        kinetics="michaelis_menten",
    ), (v01, vs, km)


@pytest.mark.parametrize("gap", [1e-2, 1e-4])
def test_near_critical_cycle(gap):
    vs = 0.4
    raw, (v01, vs, km) = _two_node_cycle(vs * (1 - gap), vmax_back=1.0)
    sol = solve(raw, "michaelis_menten")
    assert sol["exists"][0] and not sol["undecided"][0]
    b = vs * (1 - gap)
    y0 = b * (v01 + vs) / vs
    np.testing.assert_allclose(sol["conc"][0, 0], km * y0 / (v01 + vs - y0), rtol=1e-8)
    raw, _ = _two_node_cycle(vs * (1 + gap), vmax_back=1.0)
    assert not solve(raw, "michaelis_menten")["exists"][0]
    # the cycle's return edge is the bottleneck: y1 = b v01 / vs must stay below vmax_back
    b = 0.3
    y1 = b * v01 / vs
    raw, _ = _two_node_cycle(b, vmax_back=y1 * (1 + gap))
    assert solve(raw, "michaelis_menten")["exists"][0]
    raw, _ = _two_node_cycle(b, vmax_back=y1 * (1 - gap))
    assert not solve(raw, "michaelis_menten")["exists"][0]


def test_structural_cases():
    # a fed node without any exit, and an unfed trap (fine: never fed)
    raw = graphs.single_network(3, [(0, 1)], [0.5], [(0, 1.0)], [(0, 0.2)])
    assert not solve(raw, "linear")["exists"][0]
    raw = graphs.single_network(3, [(2, 1), (1, 2)], [0.5, 0.5], [(0, 1.0)], [(0, 0.5)])
    sol = solve(raw, "linear")
    assert sol["exists"][0]
    np.testing.assert_allclose(sol["conc"][0], [2.0, 0.0, 0.0])
    # Michaelis-Menten: the sink cannot carry the inflow
    raw = graphs.single_network(1, [], [], [(0, 1.0)], [(0, (0.9, 0.1))], "michaelis_menten")
    assert not solve(raw, "michaelis_menten")["exists"][0]


def test_undecided_is_rare():
    rng = np.random.default_rng(13)
    raw = graphs.sample_networks(
        3000, rng, family=FAMILY_MIX, nodes_min=5, nodes_max=15,
        kinetics="michaelis_menten", rate_law="log_uniform", km_range=(0.01, 10.0),
    )  # fmt: skip
    sol = solve(raw, "michaelis_menten")
    assert sol["undecided"].mean() < 1e-3
    assert not np.any(sol["exists"] & sol["undecided"])


def test_bad_arguments():
    raw = graphs.single_network(2, [(0, 1)], [0.5], [(0, 1.0)], [(1, 0.5)])
    with pytest.raises(ConfigError, match="kinetics"):
        solve(raw, "hill")
    with pytest.raises(ConfigError, match="edge_vmax"):
        solve(raw, "michaelis_menten")


def test_monotone_fallback_agrees_with_newton(monkeypatch):
    """The fallback used when Newton cycles (forced here) gives the same answers."""
    from synthmath.tasks.metabolic import solvers

    rng = np.random.default_rng(17)
    raw = graphs.sample_networks(
        400, rng, family="cycle_rich,small_world,erdos_renyi", nodes_min=4, nodes_max=10,
        kinetics="michaelis_menten", rate_law="log_uniform", km_range=(0.01, 10.0),
    )  # fmt: skip
    newton = solve(raw, "michaelis_menten")
    monkeypatch.setattr(solvers, "UNDAMPED_STEPS", 0)
    fallback = solve(raw, "michaelis_menten")
    assert not fallback["undecided"].any()
    np.testing.assert_array_equal(newton["exists"], fallback["exists"])
    assert newton["exists"].sum() >= 10
    np.testing.assert_allclose(fallback["conc"], newton["conc"], rtol=1e-9, atol=1e-13)
