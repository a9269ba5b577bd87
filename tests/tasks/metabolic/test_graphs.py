"""Random metabolic network generators: layout, structure of each family, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from synthmath.core.errors import ConfigError
from synthmath.tasks.metabolic import families, graphs


def _sample(family, n=400, seed=0, **kw):
    kw = {"nodes_min": 5, "nodes_max": 12, **kw}
    return graphs.sample_networks(n, np.random.default_rng(seed), family=family, **kw)


def _closure(adj):
    """Transitive closure (paths of length >= 1) by repeated boolean squaring."""
    reach = adj.copy()
    for _ in range(int(np.ceil(np.log2(max(adj.shape[1], 2)))) + 1):
        reach = reach | (np.einsum("nij,njk->nik", reach.astype(int), reach.astype(int)) > 0)
    return reach


def _degrees(raw):
    adj = graphs.adjacency(raw)
    return adj.sum(axis=2), adj.sum(axis=1)  # out, in


@pytest.mark.parametrize("family", families.FAMILIES)
@pytest.mark.parametrize("kinetics", ["linear", "michaelis_menten"])
def test_layout_and_validity(family, kinetics):
    raw = _sample(family, kinetics=kinetics, inputs=(1, 3), outputs=(0, 2))
    n = len(raw["n_nodes"])
    assert raw["n_nodes"].dtype == np.int32 and raw["family"].dtype == np.int8
    assert np.all(raw["family"] == families.FAMILIES.index(family))
    assert np.all((raw["n_nodes"] >= 5) & (raw["n_nodes"] <= 12))
    assert set(np.unique(raw["n_nodes"])) == set(range(5, 13))
    fields = graphs.FLUX_FIELDS[kinetics]
    for prefix, count, node_keys in (
        ("edge", "n_edges", ("edge_src", "edge_dst")),
        ("in", "n_in", ("in_node",)),
        ("out", "n_out", ("out_node",)),
    ):
        width = raw[node_keys[0]].shape[1]
        valid = np.arange(width)[None, :] < raw[count][:, None]
        for key in node_keys:
            assert raw[key].dtype == np.int32 and raw[key].shape == (n, width)
            assert np.all(raw[key][~valid] == -1)
            assert np.all(raw[key][valid] >= 0)
            assert np.all(raw[key] < raw["n_nodes"][:, None])
        values = ["in_rate"] if prefix == "in" else [f"{prefix}_{f}" for f in fields]
        for key in values:
            assert raw[key].dtype == np.float64
            assert np.all(raw[key][~valid] == 0.0)
            assert np.all((raw[key][valid] >= 0.1) & (raw[key][valid] <= 1.0))
    assert np.all((raw["n_in"] >= 1) & (raw["n_in"] <= 3))
    assert np.all(raw["n_out"] <= 2)
    # no self loops, no duplicate edges, edges sorted by (src, dst)
    src, dst = raw["edge_src"].astype(int), raw["edge_dst"].astype(int)
    for i in range(n):
        e = int(raw["n_edges"][i])
        assert np.all(src[i, :e] != dst[i, :e])
        code = src[i, :e] * 100 + dst[i, :e]
        assert np.all(np.diff(code) > 0)
        for key, count in (("in_node", "n_in"), ("out_node", "n_out")):
            nodes = raw[key][i, : int(raw[count][i])]
            assert len(set(nodes.tolist())) == len(nodes)
    assert graphs.adjacency(raw).sum() == raw["n_edges"].sum()


def test_distinct_terminals_and_counts():
    raw = _sample("erdos_renyi", n=2000, inputs=(2, 3), outputs=(1, 3))
    for key, count in (("in_node", "n_in"), ("out_node", "n_out")):
        for i in range(200):
            nodes = raw[key][i, : raw[count][i]]
            assert len(np.unique(nodes)) == len(nodes) and np.all(np.diff(nodes) > 0)
    assert set(np.unique(raw["n_in"])) == {2, 3}
    assert set(np.unique(raw["n_out"])) == {1, 2, 3}
    # inputs and outputs are independent: some nodes are both
    both = [
        len(set(raw["in_node"][i, : raw["n_in"][i]]) & set(raw["out_node"][i, : raw["n_out"][i]]))
        for i in range(2000)
    ]
    assert 0 < np.mean(np.array(both) > 0) < 0.9


def test_erdos_renyi_density():
    raw = _sample("erdos_renyi", n=3000, nodes_min=10, nodes_max=10, density=2.0)
    p = 2.0 / 9
    pairs = 3000 * 10 * 9
    observed = raw["n_edges"].sum() / pairs
    assert abs(observed - p) < 4 * np.sqrt(p * (1 - p) / pairs)
    out_deg, _ = _degrees(raw)
    assert abs(out_deg.mean() - 2.0) < 0.05


def test_preferential_degrees_are_heavier_tailed_than_erdos_renyi():
    kw = {"n": 300, "nodes_min": 60, "nodes_max": 60, "density": 2.0}
    pa, er = _sample("preferential", **kw), _sample("erdos_renyi", **kw)
    deg_pa = sum(_degrees(pa)).ravel()
    deg_er = sum(_degrees(er)).ravel()
    # similar mean degree (about 4), larger spread, a far heavier tail (ER: Poisson-like)
    assert abs(deg_pa.mean() - deg_er.mean()) < 0.1 * deg_er.mean()
    assert deg_pa.std() > 1.3 * deg_er.std()
    assert np.quantile(deg_pa, 0.999) > 1.6 * np.quantile(deg_er, 0.999)
    assert np.mean(deg_pa >= 3 * deg_pa.mean()) > 10 * np.mean(deg_er >= 3 * deg_er.mean())
    # both in- and out-degrees have hubs
    (out_pa, in_pa), (out_er, in_er) = _degrees(pa), _degrees(er)
    assert out_pa.max(axis=1).mean() > 1.4 * out_er.max(axis=1).mean()
    assert in_pa.max(axis=1).mean() > 1.4 * in_er.max(axis=1).mean()


def test_small_world_out_degree():
    raw = _sample("small_world", n=500, nodes_min=8, nodes_max=12, density=3.0)
    out_deg, _ = _degrees(raw)
    valid = np.arange(out_deg.shape[1])[None, :] < raw["n_nodes"][:, None]
    assert out_deg[valid].max() <= 3
    assert 0.9 * 3 < out_deg[valid].mean() <= 3
    # without rewiring it would be a circulant: all in-degrees equal; rewiring spreads them
    _, in_deg = _degrees(raw)
    assert in_deg[valid].std() > 0.3


def test_dag_is_acyclic_with_inputs_first_and_outputs_last():
    raw = _sample("dag", n=500, density=2.0)
    adj = graphs.adjacency(raw)
    assert not np.any(np.diagonal(_closure(adj), axis1=1, axis2=2))
    out_deg, in_deg = adj.sum(axis=2), adj.sum(axis=1)
    for i in range(500):
        ins = raw["in_node"][i, : raw["n_in"][i]]
        outs = raw["out_node"][i, : raw["n_out"][i]]
        assert np.all(in_deg[i, ins] == 0) and np.all(out_deg[i, outs] == 0)
        # every node outside the first layer has a predecessor
        n = raw["n_nodes"][i]
        assert (in_deg[i, :n] == 0).sum() < n
    assert abs(raw["n_edges"].mean() / raw["n_nodes"].mean() - 2.0) < 0.25


def test_chain_is_a_path_plus_bypasses():
    path = _sample("chain", n=300, density=1.0)
    adj = graphs.adjacency(path)
    assert np.all(path["n_edges"] == path["n_nodes"] - 1)
    out_deg, in_deg = adj.sum(axis=2), adj.sum(axis=1)
    assert out_deg.max() <= 1 and in_deg.max() <= 1
    # one source: connected, so the path visits every node
    assert np.all((in_deg == 0).sum(axis=1) - _padding(path).sum(axis=1) == 1)
    branched = _sample("chain", n=300, density=1.5)
    adj = graphs.adjacency(branched)
    assert not np.any(np.diagonal(_closure(adj), axis1=1, axis2=2))  # still acyclic
    assert branched["n_edges"].mean() > (branched["n_nodes"] - 1).mean() + 2
    ancestors = _closure(adj).sum(axis=1)
    for i in range(100):  # a Hamiltonian path: the k-th node has exactly k ancestors
        n = int(branched["n_nodes"][i])
        order = np.argsort(ancestors[i, :n])
        assert ancestors[i, order].tolist() == list(range(n))
        assert all(adj[i, order[k], order[k + 1]] for k in range(n - 1))


def _padding(raw):
    width = int(raw["n_nodes"].max())
    return np.arange(width)[None, :] >= raw["n_nodes"][:, None]


def test_tree_has_one_root_reaching_all():
    raw = _sample("tree", n=300)
    adj = graphs.adjacency(raw)
    assert np.all(raw["n_edges"] == raw["n_nodes"] - 1)
    in_deg = adj.sum(axis=1)
    reach = _closure(adj)
    roots = []
    for i in range(300):
        n = int(raw["n_nodes"][i])
        assert sorted(in_deg[i, :n].tolist()) == [0] + [1] * (n - 1)
        root = int(np.flatnonzero(in_deg[i, :n] == 0)[0])
        assert reach[i, root, :n].sum() == n - 1
        roots.append(root)
    assert len(set(roots)) >= 5  # relabelled: the root is not always node 0


def test_cycle_rich_edges_lie_on_cycles():
    raw = _sample("cycle_rich", n=300, density=2.0)
    adj = graphs.adjacency(raw)
    reach = _closure(adj)
    # edge i -> j lies on a cycle iff j reaches i
    assert np.all(reach.transpose(0, 2, 1)[adj])
    n = raw["n_nodes"]
    assert np.all(raw["n_edges"] >= np.minimum(2 * n, n * (n - 1) // 2))
    assert raw["n_edges"].mean() < 2.6 * n.mean()
    # cycles of every length, not just 2-cycles (whose edges all come with their reverse)
    reverse = adj & adj.transpose(0, 2, 1)
    assert 0.05 < reverse.sum() / adj.sum() < 0.5


def test_mixture_and_reproducibility():
    a = _sample("tree,dag", n=500, seed=3, kinetics="michaelis_menten")
    b = _sample("tree,dag", n=500, seed=3, kinetics="michaelis_menten")
    c = _sample("tree,dag", n=500, seed=4, kinetics="michaelis_menten")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["edge_vmax"], c["edge_vmax"])
    counts = np.bincount(a["family"], minlength=len(families.FAMILIES))
    tree, dag = families.FAMILIES.index("tree"), families.FAMILIES.index("dag")
    assert set(np.flatnonzero(counts)) == {tree, dag}
    assert 150 < counts[dag] < 350


def test_log_uniform_rates():
    raw = _sample("erdos_renyi", n=2000, rate_law="log_uniform", rate_range=(0.01, 1.0))
    valid = np.arange(raw["edge_rate"].shape[1])[None, :] < raw["n_edges"][:, None]
    logs = np.log10(raw["edge_rate"][valid])
    assert logs.min() >= -2 and logs.max() <= 0
    assert abs(np.median(logs) + 1.0) < 0.05  # uniform in log: median at 10^-1


def test_single_network_and_stack():
    raw = graphs.single_network(
        3, [(0, 1), (1, 2)], [(0.5, 0.1), (0.4, 0.2)], [(0, 0.3)], [(2, (0.9, 0.3))],
        kinetics="michaelis_menten",
    )  # fmt: skip
    assert raw["edge_src"].tolist() == [[0, 1]] and raw["edge_km"].tolist() == [[0.1, 0.2]]
    assert raw["out_vmax"].tolist() == [[0.9]] and raw["family"].tolist() == [-1]
    other = graphs.single_network(2, [], [], [(1, 0.5)], [], kinetics="michaelis_menten")
    both = graphs.stack_networks([raw, other])
    assert both["edge_src"].tolist() == [[0, 1], [-1, -1]]
    assert both["edge_vmax"].tolist() == [[0.5, 0.4], [0.0, 0.0]]
    assert both["n_out"].tolist() == [1, 0] and both["out_node"].tolist() == [[2], [-1]]
    assert graphs.adjacency(both).shape == (2, 3, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"family": "lattice"}, "family: unknown family 'lattice'"),
        ({"nodes_min": 1}, "nodes_min"),
        ({"nodes_min": 9, "nodes_max": 5}, "nodes_min"),
        ({"density": 0.0}, "density"),
        ({"inputs": (0, 2)}, "inputs"),
        ({"outputs": (3, 1)}, "outputs"),
        ({"rate_range": (0.0, 1.0)}, "rate_range"),
        ({"km_range": (2.0, 1.0)}, "km_range"),
        ({"rate_law": "gamma"}, "rate_law"),
        ({"kinetics": "hill"}, "kinetics"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, message):
    base = {"family": "dag", "nodes_min": 3, "nodes_max": 6}
    with pytest.raises(ConfigError, match=message):
        graphs.sample_networks(10, np.random.default_rng(0), **{**base, **kwargs})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((3, [(0, 0)], [0.5], [(0, 1.0)], []), "self loop"),
        ((3, [(0, 1), (0, 1)], [0.5, 0.5], [(0, 1.0)], []), "duplicate edge"),
        ((3, [(0, 3)], [0.5], [(0, 1.0)], []), r"edges\[0\]: node 3"),
        ((3, [(0, 1)], [-0.5], [(0, 1.0)], []), r"edge_params\[0\]"),
        ((3, [(0, 1)], [0.5], [(0, 1.0), (0, 2.0)], []), "inputs"),
        ((3, [(0, 1)], [0.5, 0.2], [(0, 1.0)], []), "edge_params"),
    ],
)
def test_single_network_errors(args, message):
    with pytest.raises(ConfigError, match=message):
        graphs.single_network(*args)


def test_top_k_selection_matches_ranks_from_a_double_argsort():
    from synthmath.tasks.metabolic.families import _top

    rng = np.random.default_rng(0)
    keys = np.round(rng.normal(size=(2000, 7)), 1)  # many ties
    count = rng.integers(1, 8, 2000)
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    np.testing.assert_array_equal(_top(keys, count), rank < count[:, None])
