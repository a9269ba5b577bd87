"""GRN protocol on synthetic networks: simulation, the hidden own column, an oracle scores
perfectly, Best-Fit Extension recovers most of a small network, and the TSV import."""

from __future__ import annotations

import numpy as np
import pytest

from synthmath.core.errors import DataError
from synthmath.tasks.boolean import formulas as F
from synthmath.tasks.boolean import grn


def value(rule, row) -> int:
    """One rule on one state (formula evaluation itself is tested in test_formulas)."""
    return int(F.unpack(F.evaluate(rule, F.pack_rows(row[None]), F.row_mask(1)), 1)[0])


@pytest.fixture(scope="module")
def network():
    return grn.random_network(8, np.random.default_rng(0), max_regulators=2)


def test_networks_depend_on_their_regulators_and_simulate_synchronously(network):
    for regs, rule in zip(network.regulators, network.rules):
        assert F.variables(rule) == set(regs)
    assert network.edges() <= {(j, i) for i, regs in enumerate(network.regulators) for j in regs}
    series = grn.time_series(network, 3, np.random.default_rng(1), length=6)
    assert series.shape == (3, 6, 8)
    for block in series:
        for t in range(5):
            want = [value(rule, block[t]) for rule in network.rules]  # all from state t
            assert block[t + 1].tolist() == want


def test_pairs_hide_the_own_column(network):
    series = grn.time_series(network, 4, np.random.default_rng(2), length=10)
    x, y = grn.pairs(series, 3, np.random.default_rng(0))
    assert x.shape == (36, 8) and np.array_equal(y, series[:, 1:, 3].ravel())
    keep = [j for j in range(8) if j != 3]
    assert np.array_equal(x[:, keep], series[:, :-1][..., keep].reshape(-1, 7))


def test_an_oracle_is_perfect_and_best_fit_extension_recovers_most_edges(network):
    series = grn.time_series(network, 12, np.random.default_rng(3), length=20)
    rules = iter(network.rules * 12)  # genes are inferred in order, block after block
    oracle = grn.evaluate_grn(series, lambda x, y: next(rules), network.edges())
    assert oracle.dynamic_error == 0.0 and oracle.recall == 1.0
    bfe = grn.evaluate_grn(series, grn.subset_inferrer(2), network.edges())
    assert bfe.dynamic_error < 0.15 and bfe.precision > 0.6 and bfe.recall > 0.5
    reveal = grn.evaluate_grn(series, grn.subset_inferrer(2, "entropy"), network.edges())
    assert reveal.dynamic_error < 0.15


def test_read_series_binarises_experiments(tmp_path):
    path = tmp_path / "series.tsv"
    rows = ["Time\tG1\tG2", "0\t0.1\t0.9", "10\t0.8\t0.2", "", "0\t0.2\t0.7", "10\t0.9\t0.1"]
    path.write_text("\n".join(rows) + "\n")
    series = grn.read_series(path)
    assert series.shape == (2, 2, 2) and series[:, :, 0].tolist() == [[0, 1], [0, 1]]
    path.write_text("Time\tG1\n0\t0.1\n1\tx\n")
    with pytest.raises(DataError, match="line 3: not numbers"):
        grn.read_series(path)
