"""Non-autonomous controllability (control_t): known systems and a small sample."""

import time

import numpy as np
import pytest

from synthmath.tasks.differential.parsing import parse_infix
from synthmath.tasks.differential.timevarying import time_varying_rank
from synthmath.tasks.registry import make_task


def rank(*equations, p=1):
    return time_varying_rank([parse_infix(e) for e in equations], len(equations), p)


@pytest.mark.parametrize(
    ("equations", "expected"),
    [
        (("x1", "u0"), 2),  # the double integrator
        (("x0", "u0"), 1),  # x0 is not reached
        (("t*u0", "t**2*u0"), 2),  # B(t) spans one direction at each t, B and B' span two
        (("t*u0", "2*t*u0"), 1),  # B(t) keeps its direction: not controllable
        (("x1*t", "u0*x0"), 2),  # A(t) = [[0, t], [0, 0]], B = (0, 1/2)
    ],
)
def test_known_time_varying_systems(equations, expected):
    assert rank(*equations) == expected


def test_control_t_samples_label_and_answer():
    task = make_task("differential", {"problem": "control_t", "n_equations": 2})
    start = time.perf_counter()
    raw = task.sample(3, np.random.default_rng(0))
    assert time.perf_counter() - start < 20
    for i in range(3):
        trees = task.equations(raw, i)
        want = 2 - time_varying_rank(trees, 2, int(raw["n_ctrl"][i]))
        assert raw["deficit"][i] == want
        ex = task.to_json(raw, i)
        assert ex["answer"]["controllable"] == (want == 0) and "times" in ex["problem"]
    assert [m.name for m in task.metrics()] == ["acc"]
