"""PDE existence and vanishing: known equations, and sampled labels checked on grids."""

import numpy as np
import pytest

from synthmath.tasks.differential.pde import Pde, labels_of, minimum, sample_pde
from synthmath.tasks.registry import make_task

HEAT = ((-1, ((0, 2),)),)  # d_t u - d_x^2 u = 0: Re f = 4 pi^2 xi^2
BACKWARD = ((1, ((0, 2),)),)  # d_t u + d_x^2 u = 0: Re f = -4 pi^2 xi^2
TRANSPORT = ((1, ((0, 1),)),)  # d_t u + d_x u = 0: Re f = 0


@pytest.mark.parametrize(
    ("terms", "function", "modulations", "expected", "m"),
    [
        (HEAT, ("gauss", 3), (), (True, True), 0.0),
        (BACKWARD, ("gauss", 3), (), (False, False), -np.inf),  # ill-posed on all of R
        (BACKWARD, ("sinc", 3), (), (True, False), -9.0),  # xi in [-3/2pi, 3/2pi]
        (BACKWARD, ("one", 3), (), (True, True), 0.0),  # xi = 0 only
        (BACKWARD, ("one", 3), ((0, 2),), (True, False), -4.0),  # xi = 2/2pi
        (TRANSPORT, ("delta0", 5), (), (True, True), 0.0),
    ],
)
def test_known_equations(terms, function, modulations, expected, m):
    single, ours = minimum(Pde(1, terms, (function,), modulations))
    assert labels_of(ours) == expected
    assert ours == pytest.approx(m, abs=1e-6)


def _grid_minimum(pde: Pde) -> float:
    coefs, exps = pde.real_symbol()
    lo, hi = pde.support()
    axes = [np.linspace(a, b, 41) for a, b in zip(lo, hi)]
    points = np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, pde.n)
    return float((coefs * np.prod(points[:, None, :] ** exps[None], axis=2)).sum(axis=1).min())


def test_sampled_bounded_problems_agree_with_a_grid():
    """Where every coordinate is bounded, no grid point lies below our minimum (beyond
    tolerance) and our minimum is not far below the grid's."""
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 8:
        pde = sample_pde(2, rng)
        lo, hi = pde.support()
        if np.isinf(lo).any() or np.isinf(hi).any():
            continue
        _, ours = minimum(pde, rng)
        grid = _grid_minimum(pde)
        assert ours <= grid + 1e-6 * (1 + abs(grid))
        checked += 1


def test_minus_infinity_is_reached_on_some_ray():
    rng = np.random.default_rng(1)
    found = 0
    for _ in range(40):
        pde = sample_pde(2, rng)
        _, ours = minimum(pde, rng)
        if ours != -np.inf:
            continue
        coefs, exps = pde.real_symbol()
        lo, hi = pde.support()
        centre = np.clip(np.zeros(2), lo, hi)
        values = []
        grid = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if a or b], float)
        for d in np.vstack([grid, np.random.default_rng(2).normal(size=(200, 2))]):
            x = np.clip(centre + 1e7 * d / np.linalg.norm(d), lo, hi)
            values.append(coefs @ np.prod(x**exps, axis=1))
        assert min(values) < -1e10
        found += 1
    assert found >= 5


def test_pde_task_examples_and_scoring():
    task = make_task("differential", {"problem": "pde", "max_equations": 3})
    raw = task.sample(12, np.random.default_rng(3))
    assert set(raw["n_eq"]) <= {2, 3}
    words = [task.tgt_vocab().to_tokens(r) for r in task.encode_tgt(raw)[0]]
    for i, w in enumerate(words):
        ex = task.to_json(raw, i)
        assert w == ["YES" if ex["answer"]["exists"] else "NO",
                     "YES" if ex["answer"]["vanishes"] else "NO"]  # fmt: skip
        assert not (w == ["NO", "YES"])  # vanishing needs a solution
    flipped = [["NO" if t == "YES" else "YES" for t in w] for w in words]
    scores = task.score(raw, [[w, f] for w, f in zip(words, flipped)])
    assert scores["acc"][:, 0].all() and not scores["acc"][:, 1].any()
    assert not scores["acc_exists"][:, 1].any()


def test_the_released_labeller_discards_failed_runs_and_keeps_its_own_label():
    task = make_task("differential", {"problem": "pde", "n_equations": 2, "labeller": "released"})
    raw = task.sample(6, np.random.default_rng(4))
    assert task.stats["rejected_optimiser_failed"] == task.stats["released_failed"] > 0
    assert (raw["released_agrees"] == 1).all()
