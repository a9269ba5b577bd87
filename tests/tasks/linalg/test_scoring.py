"""linalg scoring (exact, perturbed, malformed and non-orthogonal predictions) and config errors."""

import numpy as np
import pytest

from synthmath.core.errors import ConfigError, DecodeError
from synthmath.tasks.linalg.ops import OP_NAMES
from synthmath.tasks.registry import make_task

ALL_OPS = OP_NAMES  # the list itself is checked in test_linalg_ops.py
# the exact inverse, rounded to 3 digits, fails the reconstruction check when M is badly
# conditioned (||M dP|| ~ cond * 0.3%): keep these tests well conditioned
WELL_CONDITIONED = {"max_cond": 10.0}


def make(op, **params):
    if op == "inverse":
        params = {**WELL_CONDITIONED, **params}
    return make_task("linalg", {"op": op, **params})


def answer_tokens(task, raw, scale=1.0):
    """The stored answers, optionally scaled, written in the output encoding."""
    scaled = dict(raw)
    for name, _ in task.spec.outputs:
        scaled[f"answer_{name}"] = raw[f"answer_{name}"] * scale
    ids, lengths = task.encode_tgt(scaled)
    return task.tokens(ids, lengths, task.tgt_vocab())


def metric_names(op):
    names = {"acc_tol5", "acc_tol2", "acc_tol1", "acc_tol0.5", "rel_error"}
    if op in ("eigenvectors", "svd"):
        names |= {f"strict_{n}" for n in names if n.startswith("acc")} | {"orth_error"}
    return names


@pytest.mark.parametrize("encoding", ["P10", "FP15"])
@pytest.mark.parametrize("op", ALL_OPS)
def test_exact_answers_are_correct(op, encoding):
    task = make(op, dim_min=2, dim_max=6, encoding="B1999", output_encoding=encoding)
    raw = task.sample(100, np.random.default_rng(0))
    scores = task.score_predictions(raw, answer_tokens(task, raw))
    assert set(scores) == metric_names(op)
    assert all(len(v) == 100 for v in scores.values())
    assert scores["acc_tol5"].all()
    if op in ("eigenvectors", "svd"):
        assert scores["strict_acc_tol5"].all()
    if op != "inverse":
        assert scores["acc_tol1"].all()  # 3-digit rounding alone costs < 0.5% per entry


def scaled_error_sign_preserving(task, raw):
    """Scale the answer parts whose scaling moves the error by about 3%."""
    op = task.spec.name
    if op in ("eigenvectors", "svd"):
        # scale lambda (s) only: Q^T M Q - 1.03 diag(lambda) is 3% of 1.03 ||lambda||
        key = "answer_eigenvalues" if op == "eigenvectors" else "answer_s"
        scaled = {**raw, key: raw[key] * 1.03}
        ids, lengths = task.encode_tgt(scaled)
        return task.tokens(ids, lengths, task.tgt_vocab())
    return answer_tokens(task, raw, 1.03)


@pytest.mark.parametrize("op", ALL_OPS)
def test_three_percent_error_passes_5_fails_2(op):
    params = {"max_cond": 3.0} if op == "inverse" else {}
    task = make(op, encoding="P1000", **params)
    raw = task.sample(100, np.random.default_rng(1))
    scores = task.score_predictions(raw, scaled_error_sign_preserving(task, raw))
    assert scores["acc_tol5"].all()
    assert not scores["acc_tol2"].any()
    assert np.all((scores["rel_error"] > 0.02) & (scores["rel_error"] < 0.05))


@pytest.mark.parametrize("op", ALL_OPS)
def test_malformed_predictions_are_wrong_without_exceptions(op):
    task = make(op, dim=3, encoding="P10")
    raw = task.sample(1, np.random.default_rng(2))
    (good,) = answer_tokens(task, raw)
    other = make(op, dim=3, encoding="FP15")
    (fp15,) = answer_tokens(other, raw)
    bad = [
        [],
        ["V3"],
        good[:-1],
        good + ["+"],
        good + good,
        ["V2", "V3"] + good[2:],  # dims disagree with the numbers
        ["V4", "V3"] + good[2:],  # beyond max_dim
        ["<s>"] + good,
        good[:2] + ["NaN"] * 5 + good[7:],
        fp15,  # another encoding
        ["hello", "world"],
        good[:5] + ["E-2"] + good[6:],
    ]
    if task.spec.outputs[0][1] == "vector":
        bad.append([good[1], good[0]] + good[2:])  # a 1x3 row instead of a 3x1 vector
    if op in ("transpose", "add", "matmul", "inverse"):
        bad.append(["V2", "V2"] + good[2:22])  # a well-formed 2x2 matrix: wrong shape
    scores = task.score_predictions(
        {k: np.repeat(v, len(bad), axis=0) for k, v in raw.items()}, bad
    )
    assert not scores["acc_tol5"].any()
    assert np.all(np.isinf(scores["rel_error"]))
    for tokens in bad[:3]:
        with pytest.raises(DecodeError):
            task.decode_answer(tokens)


def test_decode_answer_shapes():
    task = make("svd", dim_min=2, dim_max=4, rectangular=True, encoding="P1000")
    raw = task.sample(20, np.random.default_rng(0))
    for i, tokens in enumerate(answer_tokens(task, raw)):
        out = task.decode_answer(tokens)
        m, n = raw["a_shape"][i]
        k = min(m, n)
        assert out["s"].shape == (k,) and out["U"].shape == (m, k) and out["V"].shape == (n, k)


def test_non_orthogonal_diagonalisation_passes_plain_fails_strict():
    task = make("eigenvectors", dim=4, encoding="P1000")
    raw = task.sample(30, np.random.default_rng(3))
    d = np.array([0.8, 1.0, 1.2, 0.9])  # scale eigenvector i by d_i and lambda_i by d_i^2
    fake = {
        **raw,
        "answer_eigenvectors": raw["answer_eigenvectors"] * d,
        "answer_eigenvalues": raw["answer_eigenvalues"] * (d**2)[:, None],
    }
    ids, lengths = task.encode_tgt(fake)
    scores = task.score_predictions(raw, task.tokens(ids, lengths, task.tgt_vocab()))
    assert scores["acc_tol5"].all() and scores["acc_tol1"].all()
    assert not scores["strict_acc_tol5"].any()
    assert np.all(scores["orth_error"] > 0.1)

    task = make("svd", dim_min=3, dim_max=5, rectangular=True, encoding="P1000")
    raw = task.sample(30, np.random.default_rng(4))
    fake = {**raw, "answer_U": raw["answer_U"] * 1.25, "answer_V": raw["answer_V"] / 1.25}
    ids, lengths = task.encode_tgt(fake)
    scores = task.score_predictions(raw, task.tokens(ids, lengths, task.tgt_vocab()))
    assert scores["acc_tol5"].all()
    assert not scores["strict_acc_tol5"].any()


def test_reconstruction_uses_the_clean_matrix():
    task = make("eigenvectors", encoding="P1000", noise=0.1)
    raw = task.sample(50, np.random.default_rng(5))
    assert task.score_predictions(raw, answer_tokens(task, raw))["strict_acc_tol5"].all()


def test_main_metric():
    assert make("add").main_metric() == "acc_tol5"


@pytest.mark.parametrize(
    "params, key",
    [
        ({"op": "determinant"}, "op"),
        ({"op": "add", "dist": "laplace"}, "dist"),
        ({"op": "eigenvalues", "dist": "uniform,cauchy"}, "dist"),
        ({"op": "add", "dist": "uniform,gaussian"}, "dist"),
        ({"dim_min": 6, "dim_max": 5}, "dim_min"),
        ({"dim_min": 5}, "dim_max"),
        ({"dim_min": 0, "dim_max": 5}, "dim_min"),
        ({"dim": 0}, "dim"),
        ({"op": "eigenvalues", "rectangular": True, "dim_min": 2, "dim_max": 5}, "rectangular"),
        ({"op": "add", "rectangular": True}, "rectangular"),
        ({"encoding": "P100"}, "encoding"),
        ({"output_encoding": "fp15"}, "output_encoding"),
        ({"coeff_range": -1.0}, "coeff_range"),
        ({"dimension": 5}, "dimension"),
    ],
)
def test_config_errors_name_the_key(params, key):
    with pytest.raises(ConfigError, match=rf"^{key}:"):
        make_task("linalg", params)


def test_config_error_lists_allowed_values():
    with pytest.raises(ConfigError) as err:
        make_task("linalg", {"op": "add", "dist": "laplace"})
    assert "uniform" in str(err.value) and "gaussian" in str(err.value)
    with pytest.raises(ConfigError) as err:
        make_task("linalg", {"op": "eigenvalues", "dist": "cauchy"})
    assert "marchenko" in str(err.value)


def test_generator_params_exclude_encodings():
    task = make_task(
        "linalg", {"op": "eigenvalues", "encoding": "FP15", "output_encoding": "P1000"}
    )
    params = task.generator_params()
    assert "encoding" not in params and "output_encoding" not in params
    assert params["op"] == "eigenvalues" and params["dist"] == "auto"
    assert task.input_encoding.name == "FP15" and task.output_encoding.name == "P1000"
    assert "N314e7" in task.src_vocab() and "314" in task.tgt_vocab()
