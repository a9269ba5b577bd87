"""sampler=fast against plain rejection sampling: the same distribution given the class
(two-sample tests on statistics of the examples, per class), and the same layout; the tests
must reject deliberately wrong samplers."""

import numpy as np
import pytest
from scipy import stats

from synthmath.tasks.metabolic import bounds, families, sampler
from synthmath.tasks.metabolic.solvers import solve
from synthmath.tasks.registry import make_task

MIXED = ",".join(families.FAMILIES)
BALANCED_MM = {"kinetics": "michaelis_menten", "answer": "existence", "nodes": 10}
# per statistic; seeds are fixed, so a pass is deterministic (with about 20 statistics the
# smallest p-value of two samples of one distribution is typically a few percent)
ALPHA = 1e-3
N_EXAMPLES = 6000  # 3,000 per class: rejection sampling takes about a second


def draw(n, seed, sampler_name, **params):
    task = make_task(
        "metabolic", {"family": MIXED, **BALANCED_MM, "sampler": sampler_name, **params}
    )
    return task.sample(n, np.random.default_rng(seed))


def _valid(raw, count, width_key):
    return np.arange(raw[width_key].shape[1])[None, :] < raw[count][:, None]


def statistics(raw, exists: bool) -> dict[str, tuple[str, np.ndarray]]:
    """Per-example statistics of the examples of one class: (test kind, values)."""
    rows = np.flatnonzero(raw["exists"] == exists)
    raw = {k: v[rows] for k, v in raw.items()}
    edges = _valid(raw, "n_edges", "edge_src")
    inputs = _valid(raw, "n_in", "in_node")
    fields = ("vmax", "km") if "edge_vmax" in raw else ("rate",)
    out = {
        "family": ("chi2", raw["family"]),
        "n_edges": ("chi2", np.minimum(raw["n_edges"], 25)),
        "n_in": ("chi2", raw["n_in"]),
        "n_out": ("chi2", raw["n_out"]),
        "first input node": ("chi2", raw["in_node"][:, 0]),
        "first edge source": ("chi2", raw["edge_src"][:, 0]),
        "total inflow": ("ks", np.where(inputs, raw["in_rate"], 0.0).sum(axis=1)),
    }
    for f in fields:
        mean = np.where(edges, raw[f"edge_{f}"], 0.0).sum(axis=1) / np.maximum(raw["n_edges"], 1)
        out[f"mean edge {f}"] = ("ks", mean)
    if exists:
        out["log total concentration"] = ("ks", np.log(np.nansum(raw["conc"], axis=1) + 1e-12))
        if "edge_vmax" in raw:
            out["largest utilisation"] = ("ks", _largest_utilisation(raw))
    return out


def _largest_utilisation(raw):
    """Max over nodes of out-flux / capacity at equilibrium (how close to saturation)."""
    n, width = len(raw["n_nodes"]), raw["conc"].shape[1]
    flux, capacity = np.zeros((n, width)), np.zeros((n, width))
    for nodes, count, flow, vmax in (
        ("edge_src", "n_edges", "flow", "edge_vmax"),
        ("out_node", "n_out", "out_flow", "out_vmax"),
    ):
        rows, slot = np.nonzero(_valid(raw, count, nodes))
        np.add.at(flux, (rows, raw[nodes][rows, slot]), raw[flow][rows, slot])
        np.add.at(capacity, (rows, raw[nodes][rows, slot]), raw[vmax][rows, slot])
    return np.max(np.where(capacity > 0, flux / np.where(capacity > 0, capacity, 1.0), 0.0), axis=1)


def p_values(a, b) -> dict[str, float]:
    """Two-sample p-value of every statistic of every class, sample a against sample b."""
    out = {}
    for exists in (True, False):
        if not np.any(a["exists"] == exists) and not np.any(b["exists"] == exists):
            continue
        sa, sb = statistics(a, exists), statistics(b, exists)
        for name, (kind, x) in sa.items():
            y = sb[name][1]
            label = f"{'YES' if exists else 'NO'}: {name}"
            if kind == "ks":
                out[label] = stats.ks_2samp(x, y).pvalue
            else:
                values = np.union1d(x, y)
                table = np.array(
                    [[np.sum(x == v) for v in values], [np.sum(y == v) for v in values]]
                )
                table = table[:, table.sum(axis=0) > 0]
                out[label] = stats.chi2_contingency(table).pvalue if table.shape[1] > 1 else 1.0
    return out


@pytest.fixture(scope="module")
def rejection_sample():
    return draw(N_EXAMPLES, 9, "rejection")


def test_fast_matches_rejection_per_class(rejection_sample):
    fast = draw(N_EXAMPLES, 2, "fast")
    assert fast["exists"].sum() == N_EXAMPLES // 2
    p = p_values(fast, rejection_sample)
    assert len(p) == 20
    worst = min(p, key=p.get)
    assert p[worst] > ALPHA, f"{worst}: p = {p[worst]:.2e}"


def test_a_bound_that_is_not_a_proof_is_caught(rejection_sample, monkeypatch):
    # rejecting when the lower bound passes 60% of a capacity drops some networks that do have
    # an equilibrium: the YES class loses its networks closest to saturation
    monkeypatch.setattr(bounds, "BOUND_MARGIN", -0.4)
    p = p_values(draw(N_EXAMPLES, 2, "fast"), rejection_sample)
    assert p["YES: largest utilisation"] < 1e-6


def test_missing_relabelling_is_caught(rejection_sample, monkeypatch):
    # without the uniform relabelling, node names follow the generators' layouts (DAG inputs in
    # the first layer, chains start at x1, ...)
    monkeypatch.setattr(sampler, "_relabel", lambda raw, rng: raw)
    p = p_values(draw(N_EXAMPLES, 2, "fast"), rejection_sample)
    assert min(p["NO: first input node"], p["YES: first input node"]) < 1e-6


@pytest.mark.parametrize(
    "params",
    [
        {"kinetics": "linear", "answer": "existence", "nodes_min": 4, "nodes_max": 12},
        {
            "kinetics": "michaelis_menten",
            "answer": "concentrations",
            "nodes_min": 5,
            "nodes_max": 8,
        },
    ],
)
def test_fast_matches_rejection_other_settings(params):
    a = draw(3000, 5, "fast", nodes=None, **params)
    b = draw(3000, 6, "rejection", nodes=None, **params)
    p = p_values(a, b)
    worst = min(p, key=p.get)
    assert p[worst] > ALPHA, f"{worst}: p = {p[worst]:.2e}"


@pytest.mark.parametrize("shuffle", [True, False])
def test_fast_layout_and_answers_are_those_of_the_task(shuffle):
    params = {"family": "dag,cycle_rich", "shuffle_edges": shuffle, "nodes_min": 3, "nodes_max": 9}
    fast = draw(300, 5, "fast", nodes=None, **params)
    reference = draw(300, 5, "rejection", nodes=None, **params)
    assert list(fast) == list(reference)
    for key in fast:
        assert fast[key].dtype == reference[key].dtype, key
    assert fast["exists"].sum() == 150
    repeat = draw(300, 5, "fast", nodes=None, **params)  # deterministic given the seed
    assert all(np.array_equal(fast[k], repeat[k], equal_nan=True) for k in fast)
    # answers are the exact solver's on the stored network
    again = solve(fast, "michaelis_menten")
    assert np.array_equal(again["exists"], fast["exists"])
    np.testing.assert_array_equal(again["conc"], fast["conc"])
    for prefix, count in (("edge_src", "n_edges"), ("in_node", "n_in"), ("out_node", "n_out")):
        valid = _valid(fast, count, prefix)
        assert np.all(fast[prefix][~valid] == -1) and np.all(fast[prefix][valid] >= 0)
        assert np.all(
            fast[prefix][valid] < np.broadcast_to(fast["n_nodes"][:, None], valid.shape)[valid]
        )
    if not shuffle:  # lists in the generator's order (padding keys after every node key)
        for key in (fast["edge_src"] * 64 + fast["edge_dst"], fast["in_node"], fast["out_node"]):
            slots = np.arange(key.shape[1])[None, :]
            key = np.where(key >= 0, key, 10**6 + slots)
            assert np.all(np.diff(key, axis=1) > 0)


def test_bound_never_rejects_a_network_with_an_equilibrium():
    from synthmath.tasks.metabolic.graphs import sample_networks

    rng = np.random.default_rng(6)
    raw = sample_networks(6000, rng, family=MIXED, nodes_min=3, nodes_max=14, kinetics="michaelis_menten",
                          density=2.0, rate_range=(0.05, 1.0), km_range=(0.01, 2.0))  # fmt: skip
    exact = solve(raw, "michaelis_menten")
    proven = bounds.no_equilibrium(raw)
    assert not np.any(proven & exact["exists"])
    assert not np.any(proven & exact["undecided"])
    # and it is useful: most networks without an equilibrium are settled
    assert proven.sum() > 0.5 * (~exact["exists"]).sum()


def test_generator_params_and_dataset_identity():
    default = make_task("metabolic", {})
    fast = make_task("metabolic", {"sampler": "fast"})
    assert "sampler" not in default.generator_params()
    assert fast.generator_params()["sampler"] == "fast"
