"""Reachability on bit masks against the plain frontier search."""

import numpy as np
import pytest

from synthmath.tasks.metabolic.reach import closure_bits, fed_and_drained, reachable


@pytest.mark.parametrize("width", [1, 2, 7, 10, 33, 64, 70])
def test_bit_mask_reachability_matches_frontier_search(width):
    rng = np.random.default_rng(width)
    for p in (0.02, 0.1, 0.4):
        adj = rng.random((300, width, width)) < p
        inputs, outputs = rng.random((2, 300, width)) < 0.2
        fed, drained = fed_and_drained(adj, inputs, outputs)  # width 70: the frontier search
        drains = reachable(np.swapaxes(adj, 1, 2), outputs)
        np.testing.assert_array_equal(fed, reachable(adj, inputs))
        np.testing.assert_array_equal(drained, ~np.any(fed & ~drains, axis=1))


def test_closure_of_a_path_and_a_cycle():
    adj = np.zeros((1, 4, 4), dtype=bool)
    adj[0, 0, 1] = adj[0, 1, 2] = adj[0, 2, 1] = True  # 0 -> 1 <-> 2, 3 alone
    assert closure_bits(adj)[0].tolist() == [0b0111, 0b0110, 0b0110, 0b1000]
