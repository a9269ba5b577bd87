"""IBP's warm set of known integrals: the same examples in every process, more hits than cold,
answers that differentiate to the integrand, hit counts in the generation stats."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from synthmath.core.errors import ConfigError
from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.tasks.registry import make_task
from synthmath.tasks.symbolic import integration

X = sp.Symbol("x")
PARAMS = {"problem": "prim_ibp", "max_ops": 4, "ibp_warm": 20}


def _differentiates_to(src: str, tgt: str, rng: np.random.Generator) -> bool:
    """d/dx tgt == src: simplify gives 0, or it is below 1e-8 at 20 random points."""
    f, F = to_sympy(tuple(src.split())), to_sympy(tuple(tgt.split()))
    residual = sp.diff(F, X) - f
    if sp.simplify(residual) == 0:
        return True
    values = [complex(residual.subs(X, sp.Float(v)).evalf()) for v in rng.uniform(0.2, 2, 20)]
    finite = [abs(v) for v in values if np.isfinite(v)]
    return len(finite) >= 5 and max(finite) < 1e-8


def test_the_warm_set_is_drawn_from_the_task_parameters_alone():
    task = make_task("symbolic", PARAMS)
    known = task.known_integrals()
    assert known is task.known_integrals()  # made once per process
    assert 0 < len(known) <= 20
    cfg = task.config
    for key in list(known._known)[:5]:  # each entry is a BWD pair: F' -> F
        assert sp.simplify(sp.diff(known._known[key], X) - to_sympy(key)) == 0
    # rebuilt from scratch (as in another process): the same pairs
    integration._WARM.clear()
    again = make_task("symbolic", PARAMS | {"problem": "prim_bwd,prim_ibp"}).known_integrals()
    assert again is not known and list(again._known) == list(known._known)
    # a larger set extends the smaller one (same draws)
    bigger = make_task("symbolic", PARAMS | {"ibp_warm": 30}).known_integrals()
    assert set(known._known) <= set(bigger._known)
    assert integration.warm_seed(cfg) != integration.warm_seed(
        make_task("symbolic", PARAMS | {"max_ops": 5}).config
    )


def test_a_warm_set_raises_the_hit_rate_on_the_same_attempts():
    hits = {}
    for warm in (0, 20):
        task = make_task("symbolic", PARAMS | {"ibp_warm": warm})
        for a in range(150):
            task.attempt("prim_ibp", 5, a)
        hits[warm] = task.stats["ibp_hits"]
        assert task.stats["ibp_lookups"] >= task.stats["attempts"] // 2
        # a hit is an accepted example or a rejection after the lookup, never an ibp_miss
        assert task.stats["accepted"] <= hits[warm]
    # the attempts draw the same F and G: the warm set can only add hits
    assert hits[20] > hits[0], hits


def test_ibp_warm_is_checked():
    with pytest.raises(ConfigError, match="ibp_warm: must be in 0..100000"):
        make_task("symbolic", PARAMS | {"ibp_warm": -1})
    assert make_task("symbolic", PARAMS).PARAMS["ibp_warm"].data  # it changes the data


def test_a_shard_child_warms_as_sample_and_makes_the_same_verified_examples(tmp_path):
    from synthmath.runs.datasets import generate_shard, read_shard

    task = make_task("symbolic", PARAMS)
    expected = task.sample(3, np.random.default_rng([9, 0]))
    integration._WARM.clear()  # the child starts without this process's warm set anyway
    path = generate_shard("symbolic", PARAMS, 3, 9, 0, tmp_path / "shard-0000.npz", dataset="d")
    raw, meta = read_shard(path)
    for key in expected:
        assert (raw[key] == expected[key]).all(), key
    stats = meta["generation"]
    assert stats["attempts"] == task.stats["attempts"]
    # lookups and hits per attempt depend on the inner simplifications' time caps (a capped
    # call leaves a different expression to look up), so they agree only on an idle machine
    assert stats["ibp_lookups"] > 0 and task.stats["ibp_lookups"] > 0
    assert stats["ibp_hits"] >= 3 and task.stats["ibp_hits"] >= 3
    assert stats["ibp_hit_rate"] == round(stats["ibp_hits"] / stats["ibp_lookups"], 4)
    rng = np.random.default_rng(0)
    for src, tgt in zip(raw["src"], raw["tgt"]):
        assert _differentiates_to(src, tgt, rng), (src, tgt)


def test_ibp_warm_shapes_only_the_datasets_with_ibp():
    from synthmath.runs.plan import make_dataset

    def ident(params):
        return make_dataset("symbolic", params, 10, 0, 1, "train").id

    for problem, differs in (("prim_bwd", False), ("prim_bwd,prim_ibp", True)):
        cold = ident({"problem": problem})
        assert (ident({"problem": problem, "ibp_warm": 50}) != cold) == differs, problem
