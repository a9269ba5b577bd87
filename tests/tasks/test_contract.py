"""The task contract, checked on every registered task: a new family is tested by registering it.

sample -> encode -> decode -> score on a few examples: the exact answer tokens score as correct
with every declared accuracy, garbage scores wrong without raising, n-best lists aggregate as
"first hypothesis" and "best of the top k", examples are strict JSON, the main metric and the
capabilities are declared. A tiny points task (registered only here) checks numeric-points
inputs end to end: it trains, and its model ignores the order of the points of a set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from synthmath.core.errors import NotSupported
from synthmath.core.metrics import Metric, at_k
from synthmath.core.task import CAPABILITIES, Param, RawBatch, Task
from synthmath.core.vocab import PAD, Vocab
from synthmath.eval.summary import summarize
from synthmath.tasks.registry import make_task, register_task, task_names, unregister_task
from synthmath.train.batches import EncodedSet

#: more settings of the built-in families (every registered task also runs with its defaults)
EXTRA = {
    "linalg": [{"op": "eigenvectors", "dim": 3}, {"op": "svd", "dim": 3}, {"op": "matmul"}],
    "metabolic": [{"answer": "concentrations"}, {"answer": "flows", "family": "known"}],
    "arithmetic": [{"op": "mul", "max_digits": 4}, {"op": "modadd", "layout": "slots"}],
    "differential": [{"problem": p} for p in ("convergence", "control", "feedback", "pde")],
    "boolean": [{"regime": "noisy", "max_inactive": 6, "max_points": 40}, {"source": "circuits"}],
    "recurrence": [
        {"output": "numeric"},
        {"mode": "float"},
        {"mode": "float", "output": "numeric"},
        {"family": "classic"},
    ],
    "symreg": [{"noise": 0.1, "max_dim": 2, "max_points": 40}],
    "odeformer": [
        {"noise": 0.05, "subsample": 0.25, "random_levels": True},
        {"benchmark": "strogatz", "noise": 0.01, "rescale": True},
        {"max_dim": 3, "subsample": 0.3, "rescale": True},
    ],
}
GARBAGE = [[], ["@@not-a-token"], ["<pad>"] * 3]
CAPABILITY_METHODS = {
    "decode_answer": ("decode_answer", ([],)),
    "digit_tokens": ("digit_token_ids", ()),
    "solve_file": ("solve_file", ("missing.json",)),
    "predict_file": ("predict_file", (None, "missing.json")),
    "known_sets": ("known_sets", ()),
    "generate_shard": ("generate_shard", (1, np.random.default_rng(0))),
}


def exact_tokens(task: Task, raw: RawBatch) -> list[list[str]]:
    """The answer tokens a perfect model predicts (encoder-only: at the answer positions)."""
    tgt, tgt_len = task.encode_tgt(raw)
    vocab = task.tgt_vocab()
    if task.model_kind == "encoder_only":
        return [[vocab.tokens[t] for t in row[row != PAD]] for row in tgt]
    return task.tokens(tgt, tgt_len, vocab)


def check_contract(task: Task, n: int = 6) -> None:
    raw = task.sample(n, np.random.default_rng(0))
    assert all(len(v) == n for v in raw.values())
    encoded = EncodedSet(task, raw)
    assert len(encoded) == n
    declared = task.metrics()
    assert all(isinstance(m, Metric) for m in declared)
    # the main metric is a declared one, and higher is better (model selection maximises it)
    assert task.declared_metric(task.main_metric()).higher_is_better
    exact = exact_tokens(task, raw)

    scores = task.score(raw, [[e] for e in exact])
    assert list(scores) == [m.name for m in declared]
    accuracies = [m for m in declared if m.accuracy]
    assert accuracies, "a task declares at least one accuracy"
    for m in declared:
        assert scores[m.name].shape == (n, 1)
        if m.accuracy:
            assert scores[m.name].dtype == bool and scores[m.name].all(), m.name

    for bad in GARBAGE:
        wrong = task.score(raw, [[bad]] * n)
        for m in accuracies:
            assert not wrong[m.name].any(), (m.name, bad)

    # n-best: garbage first, exact second; and the other way round
    nbest = [[GARBAGE[1], e] for e in exact]
    both = task.score(raw, nbest)
    for m in accuracies:
        assert both[m.name].shape == (n, 2)
        assert not both[m.name][:, 0].any() and both[m.name][:, 1].all()
    summary = summarize(task, raw, nbest)
    for m in accuracies:
        assert summary["metrics"][m.summary_name] == 0.0
        assert summary["metrics"][at_k(m.summary_name, 2)] == 1.0
        assert summary["metric_info"][m.summary_name]["format"] in ("percent", "number")
    first = summarize(task, raw, [[e, GARBAGE[1]] for e in exact])
    for m in accuracies:
        assert first["metrics"][m.summary_name] == 1.0
    json.dumps(summarize(task, raw, [[e] for e in exact]), allow_nan=False)
    # a model that gets everything wrong (an untrained one) still writes strict JSON
    json.dumps(summarize(task, raw, [[bad] for bad in GARBAGE[:1]] * n), allow_nan=False)

    for i in range(n):
        ex = task.to_json(raw, i)
        assert set(ex) >= {"problem", "answer"}
        json.dumps(ex, allow_nan=False)
    for labels in task.groups(raw).values():
        assert len(labels) == n

    for capability in CAPABILITIES:
        method, args = CAPABILITY_METHODS[capability]
        if capability in task.capabilities:
            assert getattr(type(task), method) is not getattr(Task, method), capability
        else:
            with pytest.raises(NotSupported, match=capability):
                getattr(task, method)(*args)
    if "decode_answer" in task.capabilities:
        for tokens in exact:
            task.decode_answer(tokens)


def configurations() -> list[tuple[str, dict]]:
    return [(name, params) for name in task_names() for params in [{}, *EXTRA.get(name, [])]]


@pytest.mark.parametrize(("name", "params"), configurations())
def test_every_registered_task_keeps_the_contract(name, params):
    check_contract(make_task(name, params))


# ---- a tiny numeric-points task ------------------------------------------------------------
class SignOfSum(Task):
    """Points (x, y), y in -9..9: is the sum of the y's positive? A set: order is irrelevant."""

    name = "test_sign_of_sum"
    input_kind = "point_set"
    group_names = ()
    PARAMS = {"max_points": Param(8, "most points per example", int)}

    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        count = rng.integers(3, self.params["max_points"] + 1, n)
        points = rng.integers(-9, 10, (n, self.params["max_points"], 2))
        points[np.arange(self.params["max_points"])[None, :] >= count[:, None]] = 0
        total = points[..., 1].sum(axis=1)
        points[total == 0, 0, 1] += 1  # no ties
        return {"points": points, "count": count, "positive": points[..., 1].sum(axis=1) > 0}

    def src_vocab(self) -> Vocab:
        return Vocab(["+", "-", *map(str, range(10))])

    def tgt_vocab(self) -> Vocab:
        return Vocab(["POS", "NEG"])

    def tokens_per_point(self) -> int:
        return 4  # sign and digit of x, then of y

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        p = raw["points"]
        vocab = self.src_vocab()
        sign = np.where(p < 0, vocab.offset("-"), vocab.offset("+"))
        digit = vocab.offset("0") + np.abs(p)
        ids = np.stack([sign[..., 0], digit[..., 0], sign[..., 1], digit[..., 1]], axis=-1)
        ids[np.arange(p.shape[1])[None, :] >= raw["count"][:, None]] = PAD
        return ids.astype(np.int32), raw["count"]

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        vocab = self.tgt_vocab()
        ids = np.where(raw["positive"], vocab.offset("POS"), vocab.offset("NEG"))[:, None]
        return ids.astype(np.int32), np.ones(len(ids), dtype=np.int64)

    def metrics(self) -> tuple[Metric, ...]:
        return (Metric.acc("acc", "sign right"),)

    def main_metric(self) -> str:
        return "acc"

    def score_predictions(
        self, raw: RawBatch, predictions: Sequence[Sequence[str]]
    ) -> dict[str, np.ndarray]:
        want = np.where(raw["positive"], "POS", "NEG")
        return {"acc": np.array([list(p) == [w] for p, w in zip(predictions, want)], dtype=bool)}

    def to_json(self, raw: RawBatch, i: int) -> dict:
        points = raw["points"][i, : raw["count"][i]].tolist()
        return {"problem": points, "answer": bool(raw["positive"][i])}


@pytest.fixture
def points_task():
    register_task(SignOfSum)
    yield make_task(SignOfSum.name)
    unregister_task(SignOfSum.name)


def points_model(task: Task, input_embedder: str, positions: str = "none"):
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer

    torch.manual_seed(0)
    cfg = ModelConfig(
        len(task.src_vocab()),
        len(task.tgt_vocab()),
        d_model=32,
        n_heads=4,
        positions=positions,
        input_embedder=input_embedder,
        point_tokens=task.tokens_per_point(),
    )
    return Transformer(cfg)


def test_points_task_keeps_the_contract(points_task, capsys):
    from synthmath.cli import main

    assert points_task.name in task_names()
    check_contract(points_task)
    assert main(["sample", points_task.name, "-n", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for ex in lines:  # one group of 4 tokens per point
        assert len(ex["src"].split(" | ")) == len(ex["problem"])
        assert ex["tgt"] in ("POS", "NEG")


def test_points_model_trains_and_ignores_the_order_of_a_set(points_task):
    from synthmath.eval.predict import predict_nbest
    from synthmath.train.loss import sequence_loss

    torch.set_num_threads(1)
    model = points_model(points_task, "point_set", positions="learned")
    encoded = EncodedSet(points_task, points_task.sample(256, np.random.default_rng(1)))
    assert encoded.src.shape[1:] == (8, 4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        index = np.random.default_rng(step).choice(len(encoded), 64, replace=False)
        loss, _ = sequence_loss(model, encoded.batch(index))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])

    model.eval()
    src, tgt = encoded.batch(np.arange(32))
    perm = torch.randperm(src.size(1), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model(src, tgt[:, :-1])
        shuffled = model(src[:, perm], tgt[:, :-1])
    torch.testing.assert_close(logits, shuffled, atol=1e-5, rtol=1e-5)
    # beam search and greedy decoding read the points too
    nbest = predict_nbest(model, points_task, encoded, beam_size=2, batch_size=64)
    assert all(len(h) == 2 for h in nbest)
    assert summarize(points_task, encoded.raw, nbest)["metrics"]["acc@2"] >= 0.0

    ordered = points_model(points_task, "points", positions="learned").eval()
    with torch.no_grad():
        a, b = ordered(src, tgt[:, :-1]), ordered(src[:, perm], tgt[:, :-1])
    assert not torch.allclose(a, b, atol=1e-5)  # an ordered input sees the order


def test_points_input_is_checked(points_task):
    raw = points_task.sample(4, np.random.default_rng(2))
    ids, count = points_task.encode_src(raw)
    raw["count"] = np.minimum(raw["count"] + 1, 8)
    points_task.encode_src = lambda raw: (ids, raw["count"])  # a counted point all PAD
    with pytest.raises(ValueError, match="all PAD"):
        EncodedSet(points_task, raw)
    points_task.encode_src = lambda raw: (ids[:, :, :3], count)
    with pytest.raises(ValueError, match=r"\(n, points, 4\)"):
        EncodedSet(points_task, raw)
    with pytest.raises(NotSupported):
        make_task("linalg").tokens_per_point()
