"""linalg generator: every op's answers against numpy, example by example."""

import numpy as np
import pytest

from synthmath.codecs.numbers import round_sig3
from synthmath.core.errors import ConfigError
from synthmath.tasks.linalg.ops import OP_NAMES
from synthmath.tasks.registry import make_task

ALL_OPS = (
    "transpose",
    "add",
    "matvec",
    "matmul",
    "eigenvalues",
    "eigenvectors",
    "singular_values",
    "svd",
    "inverse",
)
RECTANGULAR_OPS = ("transpose", "add", "matvec", "matmul", "singular_values", "svd")


def test_the_nine_operations_of_the_paper():
    assert OP_NAMES == ALL_OPS


SIZES = {
    "fixed": {"dim": 5},
    "ranged": {"dim_min": 2, "dim_max": 6},
}


def block(raw, key, i):
    r, c = raw[f"{key}_shape"][i]
    padded = raw[key][i]
    # padding is zero
    assert not np.any(padded[r:]) and not np.any(padded[:, c:])
    return padded[:r, :c]


def check_example(op: str, raw, i: int) -> None:
    """Recompute example i's answer with numpy and compare with the stored answers."""
    a = block(raw, "a", i)
    b = block(raw, "b", i) if "b" in raw else None
    close = {"rtol": 1e-9, "atol": 1e-9}
    assert np.array_equal(a, round_sig3(a)), "inputs are rounded to 3 significant digits"
    if op == "transpose":
        np.testing.assert_array_equal(block(raw, "answer_transpose", i), a.T)
    elif op == "add":
        assert a.shape == b.shape
        np.testing.assert_allclose(block(raw, "answer_sum", i), a + b, **close)
    elif op in ("matvec", "matmul"):
        assert a.shape[1] == b.shape[0] and (op == "matmul" or b.shape[1] == 1)
        np.testing.assert_allclose(block(raw, "answer_product", i), a @ b, **close)
    elif op in ("eigenvalues", "eigenvectors"):
        np.testing.assert_array_equal(a, a.T)
        lam = block(raw, "answer_eigenvalues", i)[:, 0]
        np.testing.assert_allclose(lam, np.linalg.eigvalsh(a)[::-1], **close)
        if op == "eigenvectors":
            q = block(raw, "answer_eigenvectors", i)
            np.testing.assert_allclose(q.T @ q, np.eye(len(lam)), atol=1e-9)
            np.testing.assert_allclose(a @ q, q * lam, atol=1e-8)
            np.testing.assert_allclose(q @ np.diag(lam) @ q.T, a, atol=1e-8)
    elif op in ("singular_values", "svd"):
        s = block(raw, "answer_s", i)[:, 0]
        assert len(s) == min(a.shape)
        np.testing.assert_allclose(s, np.linalg.svd(a, compute_uv=False), **close)
        assert np.all(np.diff(s) <= 0)
        if op == "svd":
            u, v = block(raw, "answer_U", i), block(raw, "answer_V", i)
            k = len(s)
            assert u.shape == (a.shape[0], k) and v.shape == (a.shape[1], k)
            np.testing.assert_allclose(u.T @ u, np.eye(k), atol=1e-9)
            np.testing.assert_allclose(v.T @ v, np.eye(k), atol=1e-9)
            np.testing.assert_allclose(u @ np.diag(s) @ v.T, a, atol=1e-8)
    elif op == "inverse":
        p = block(raw, "answer_inverse", i)
        np.testing.assert_allclose(p, np.linalg.inv(a), rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(a @ p, np.eye(len(a)), atol=1e-8)
    else:
        raise AssertionError(op)


def batch(op, n=40, seed=0, **params):
    task = make_task("linalg", {"op": op, **params})
    return task, task.sample(n, np.random.default_rng(seed))


@pytest.mark.parametrize("sizes", list(SIZES))
@pytest.mark.parametrize("op", ALL_OPS)
def test_answers_match_numpy(op, sizes):
    task, raw = batch(op, **SIZES[sizes])
    lengths = {len(v) for v in raw.values()}
    assert lengths == {40}
    for i in range(40):
        check_example(op, raw, i)
    shapes = raw["a_shape"]
    if sizes == "fixed":
        assert np.all(shapes == 5)
    else:
        assert shapes.min() == 2 and shapes.max() == 6
        assert np.all(shapes[:, 0] == shapes[:, 1])
        assert raw["a"].shape[1:] == (6, 6)  # padded to dim_max


@pytest.mark.parametrize("op", RECTANGULAR_OPS)
def test_rectangular_answers_match_numpy(op):
    task, raw = batch(op, n=60, dim_min=1, dim_max=5, rectangular=True)
    for i in range(60):
        check_example(op, raw, i)
    assert np.any(raw["a_shape"][:, 0] != raw["a_shape"][:, 1])
    if op == "matmul":
        # rows, inner and output columns are drawn independently
        assert np.any(raw["a_shape"][:, 0] != raw["b_shape"][:, 1])


@pytest.mark.parametrize("op", ["eigenvectors", "svd", "inverse", "matmul"])
def test_encoded_lengths_follow_shapes(op):
    task, raw = batch(op, n=30, dim_min=2, dim_max=6)
    tpn = task.input_encoding.tokens_per_number
    ids, lengths = task.encode_src(raw)
    blocks = ("a", "b") if op == "matmul" else ("a",)
    expected = sum(2 + raw[f"{k}_shape"].prod(axis=1) * tpn for k in blocks)
    np.testing.assert_array_equal(lengths, expected)
    assert ids.shape == (30, lengths.max()) and ids.dtype == np.int32
    assert np.all(ids[np.arange(ids.shape[1]) >= lengths[:, None]] == 0)  # PAD
    # the target tokens decode back to the stored answers
    tids, tlengths = task.encode_tgt(raw)
    for i, tokens in enumerate(task.tokens(tids, tlengths, task.tgt_vocab())):
        decoded = task.decode_answer(tokens)
        for name, kind in task.spec.outputs:
            want = block(raw, f"answer_{name}", i)
            want = want[:, 0] if kind == "vector" else want
            np.testing.assert_allclose(decoded[name], want, rtol=0.005, atol=1e-12)


def test_inverse_rejects_ill_conditioned():
    _, raw = batch("inverse", n=300, max_cond=5.0)
    assert np.all(np.linalg.cond(raw["a"]) <= 5.0 + 1e-9)
    with pytest.raises(ConfigError, match="max_cond"):
        batch("inverse", n=5, max_cond=1.0)


@pytest.mark.parametrize("op", ALL_OPS)
def test_same_seed_same_batch(op):
    params = {"dim_min": 2, "dim_max": 5, "noise": 0.01}
    if op in RECTANGULAR_OPS:
        params["rectangular"] = True
    _, r1 = batch(op, n=20, seed=3, **params)
    _, r2 = batch(op, n=20, seed=3, **params)
    _, r3 = batch(op, n=20, seed=4, **params)
    assert r1.keys() == r2.keys()
    for key in r1:
        np.testing.assert_array_equal(r1[key], r2[key])
    assert not np.array_equal(r1["a"], r3["a"])


def test_noise_is_added_after_the_answer():
    task, raw = batch("eigenvalues", n=50, noise=0.05)
    clean, noisy = raw["a_clean"], raw["a"]
    np.testing.assert_array_equal(noisy, np.swapaxes(noisy, 1, 2))  # still symmetric
    std = (noisy - clean).std()
    assert 0.5 * 0.05 * 10 / np.sqrt(3) < std < 1.5 * 0.05 * 10 / np.sqrt(3)
    lam = raw["answer_eigenvalues"][:, :, 0]
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(clean)[:, ::-1], atol=1e-9)
    assert task.generator_params()["noise"] == 0.05


def test_to_json_shapes():
    expected = {
        "transpose": lambda p, a: np.shape(p) == (2, 3) and np.shape(a) == (3, 2),
        "add": lambda p, a: np.shape(p) == (2, 2, 3) and np.shape(a) == (2, 3),
        "matvec": lambda p, a: np.shape(p[0]) == (2, 3) and len(p[1]) == 3 and len(a) == 2,
        "singular_values": lambda p, a: np.shape(p) == (2, 3) and len(a) == 2,
        "svd": lambda p, a: (
            (np.shape(a["s"]), np.shape(a["U"]), np.shape(a["V"])) == ((2,), (2, 2), (3, 2))
        ),
    }
    for op, ok in expected.items():
        task, raw = batch(op, n=200, dim_min=2, dim_max=3, rectangular=True)
        i = int(np.flatnonzero((raw["a_shape"][:, 0] == 2) & (raw["a_shape"][:, 1] == 3))[0])
        js = task.to_json(raw, i)
        assert ok(js["problem"], js["answer"]), op
        assert isinstance(np.ravel(js["problem"][0])[0], float)
    task, raw = batch("eigenvectors", n=2, dim=3)
    js = task.to_json(raw, 0)
    assert np.shape(js["problem"]) == (3, 3)
    assert len(js["answer"]["eigenvalues"]) == 3
    assert np.shape(js["answer"]["eigenvectors"]) == (3, 3)
    task, raw = batch("matmul", n=1, dim=2)
    assert np.shape(task.to_json(raw, 0)["problem"]) == (2, 2, 2)


def test_groups_label_sizes():
    task, raw = batch("matmul", n=50, dim_min=2, dim_max=4, rectangular=True)
    labels = task.groups(raw)["size"]
    i = 7
    m, k = raw["a_shape"][i]
    assert labels[i] == f"{m}x{k}x{raw['b_shape'][i, 1]}"
    task, raw = batch("eigenvalues", n=50, dim_min=2, dim_max=4, dist="laplace,uniform")
    groups = task.groups(raw)
    assert set(groups["size"]) == {"2x2", "3x3", "4x4"}
    assert set(groups["dist"]) == {"laplace", "uniform"}
    task, raw = batch("eigenvalues", n=5)
    groups = task.groups(raw)
    assert list(groups) == ["size"] and list(groups["size"]) == ["5x5"] * 5
