"""Batching by token budget, background loading and torch.compile in the trainer."""

import threading
import time

import numpy as np
import pytest
import torch

from synthmath.core.errors import ConfigError
from synthmath.core.vocab import PAD
from synthmath.nn.config import ModelConfig
from synthmath.nn.model import Transformer
from synthmath.runs.plan import build_plan
from synthmath.tasks.registry import make_task
from synthmath.train.batches import EncodedSet, TrainBatches
from synthmath.train.checkpoint import CHECKPOINT_NAME, unwrap_model
from synthmath.train.config import TrainConfig
from synthmath.train.prefetch import Prefetcher
from synthmath.train.token_budget import check_budget, plan_epoch, plan_pool
from synthmath.train.trainer import Trainer


def lengths(n, seed=0, lo=3, hi=40):
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi, n), rng.integers(2, 12, n)


def cost(index, src_len, tgt_len):
    return len(index) * (
        src_len[index].max() + (tgt_len[index].max() if tgt_len is not None else 0)
    )


@pytest.mark.parametrize("encoder_only", [False, True])
@pytest.mark.parametrize("multiple", [1, 3])
def test_pool_batches_respect_the_budget_and_are_greedy(encoder_only, multiple):
    src_len, tgt_len = lengths(500)
    tgt = None if encoder_only else tgt_len
    idx = np.random.default_rng(1).permutation(500)
    budget = 300
    batches = plan_pool(idx, src_len, tgt, budget, multiple)
    used = np.concatenate(batches)
    assert len(used) == len(set(used.tolist()))  # no example twice
    assert len(idx) - len(used) < multiple  # only a remainder smaller than `multiple` is dropped
    assert set(used.tolist()) <= set(idx.tolist())
    # sorted by length: the examples of one batch have neighbouring source lengths
    order = sorted(idx.tolist(), key=lambda i: (src_len[i], tgt_len[i] if tgt is not None else 0))
    assert used.tolist() == order[: len(used)]
    for k, b in enumerate(batches):
        assert len(b) % multiple == 0 and len(b) > 0
        assert cost(b, src_len, tgt) <= budget
        if k + 1 < len(batches):  # greedy: `multiple` more examples would not have fitted
            bigger = np.concatenate([b, batches[k + 1][:multiple]])
            assert cost(bigger, src_len, tgt) > budget


def test_token_budget_wastes_less_padding_than_fixed_batches():
    src_len, tgt_len = lengths(4000, seed=3)
    order = np.random.default_rng(0).permutation(4000)
    planned = plan_epoch(order, src_len, tgt_len, 600, seed=0, epoch=0)
    fixed = np.array_split(order, len(planned))  # as many random batches as planned ones
    real = src_len.sum() + tgt_len.sum()
    waste_planned = sum(cost(b, src_len, tgt_len) for b in planned) / real - 1
    waste_fixed = sum(cost(b, src_len, tgt_len) for b in fixed) / real - 1
    assert waste_planned < 0.25 * waste_fixed
    assert sorted(np.concatenate(planned).tolist()) == list(range(4000))


def test_epoch_plan_is_a_function_of_seed_and_epoch():
    src_len, tgt_len = lengths(1000)
    order = np.random.default_rng(0).permutation(1000)
    a = plan_epoch(order, src_len, tgt_len, 400, seed=5, epoch=2)
    b = plan_epoch(order, src_len, tgt_len, 400, seed=5, epoch=2)
    c = plan_epoch(order, src_len, tgt_len, 400, seed=5, epoch=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))  # batch order is reshuffled
    pooled = plan_epoch(order, src_len, tgt_len, 400, seed=5, epoch=2, pool=100)
    for b in pooled:  # each batch comes from one pool of 100 consecutive examples
        pools = {int(np.nonzero(order == i)[0][0]) // 100 for i in b}
        assert len(pools) == 1


def test_budget_smaller_than_an_example_is_a_config_error():
    src_len, tgt_len = np.array([5, 30]), np.array([4, 6])
    with pytest.raises(ConfigError, match=r"training.batch_tokens: 35 .*36 tokens"):
        check_budget(src_len, tgt_len, 35)
    with pytest.raises(ConfigError, match=r"x 2 devices.*at least 72"):
        check_budget(src_len, tgt_len, 50, multiple=2)
    check_budget(src_len, None, 30)  # encoder-only: the source alone


def arithmetic_batches(batch_tokens, multiple=1, steps=20):
    task = make_task("arithmetic", {"op": "add", "max_digits": 8})
    encoded = EncodedSet(task, task.sample(600, np.random.default_rng(0)))
    return TrainBatches(task, 16, steps, 3, encoded, batch_tokens=batch_tokens, multiple=multiple)


def test_train_batches_by_token_budget():
    batches = arithmetic_batches(400, multiple=2)
    steps = batches.steps_in_epoch(1)
    all_of_epoch = list(batches(1, 0))
    assert len(all_of_epoch) == steps
    examples = sum(len(src) for src, _ in all_of_epoch)
    assert 16 * 20 - 2 * 4 < examples <= 16 * 20  # the epoch's 320 examples (few remainders)
    for src, _ in all_of_epoch:
        assert src.numel() <= 400 and len(src) % 2 == 0  # encoder-only: src is the cost
        assert (src != PAD).any(dim=0).all()  # cut to the batch's longest sequence
    sizes = {len(src) for src, _ in all_of_epoch}
    assert len(sizes) > 1  # short sequences make bigger batches
    resumed = list(batches(1, 5))  # what a resumed run takes
    assert len(resumed) == steps - 5
    for (a, b), (c, d) in zip(all_of_epoch[5:], resumed):
        assert torch.equal(a, c) and torch.equal(b, d)


def test_online_data_cannot_batch_by_tokens():
    task = make_task("arithmetic", {"op": "add", "max_digits": 4})
    with pytest.raises(ConfigError, match="needs a stored training set"):
        TrainBatches(task, 16, 4, 0, None, batch_tokens=100)
    study = {"task": "arithmetic", "params": {"op": "add", "max_digits": 4}}
    study["data"] = {"online": True}
    study["training"] = {"batch_tokens": 256}
    with pytest.raises(ConfigError, match=r"studies.s.*training.batch_tokens.*stored"):
        build_plan({"studies": {"s": study}})


def test_new_training_keys_at_their_defaults_keep_run_ids():
    study = {"task": "arithmetic", "params": {"op": "add", "max_digits": 4}}
    plain = build_plan({"studies": {"s": study}}).studies["s"].runs[0].run_id
    defaults = {"compile": "off", "batch_tokens": 0, "prefetch": 2, "devices": 1}
    same = build_plan({"studies": {"s": {**study, "training": defaults}}})
    assert same.studies["s"].runs[0].run_id == plain
    other = build_plan({"studies": {"s": {**study, "training": {"batch_tokens": 512}}}})
    assert other.studies["s"].runs[0].run_id != plain


# ---- Prefetcher --------------------------------------------------------------------------
def test_prefetcher_keeps_order_and_runs_ahead():
    produced = []

    def source():
        for i in range(20):
            produced.append(i)
            yield torch.full((2,), i)

    with Prefetcher(source(), depth=3) as it:
        first = next(it)
        deadline = time.time() + 5
        while len(produced) < 5 and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert len(produced) == 5  # 1 taken, 3 queued, 1 waiting: the queue is bounded
        rest = list(it)
    assert [int(t[0]) for t in [first, *rest]] == list(range(20))


def test_prefetcher_raises_the_source_error_in_place():
    def source():
        yield 1
        yield 2
        raise ValueError("shard 3 is truncated")

    it = Prefetcher(source(), depth=2)
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(ValueError, match="shard 3"):
        next(it)
    with pytest.raises(StopIteration):
        next(it)
    it.close()


def test_prefetcher_close_stops_the_thread_and_the_source():
    closed = threading.Event()

    def source():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = Prefetcher(source(), depth=2)
    assert next(it) == 0
    it.close()
    assert closed.is_set()
    assert not any(t.name == "synthmath-prefetch" and t.is_alive() for t in threading.enumerate())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (pinned memory)")
def test_prefetcher_pins_on_cuda():
    with Prefetcher(iter([(torch.zeros(3), torch.ones(2))]), pin_memory=True) as it:
        a, b = next(it)
    assert a.is_pinned() and b.is_pinned()


# ---- the trainer -------------------------------------------------------------------------
def tiny_model(seed=0):
    torch.manual_seed(seed)
    task = make_task("arithmetic", {"op": "add", "max_digits": 8})
    cfg = ModelConfig(
        len(task.src_vocab()),
        len(task.tgt_vocab()),
        arch="encoder_only",
        n_enc_layers=1,
        n_dec_layers=0,
        d_model=32,
        n_heads=2,
        max_len=64,
    )
    return Transformer(cfg)


def train_cfg(**kw):
    base = dict(batch_size=16, epoch_size=160, max_epochs=2, lr=3e-3, warmup_steps=3)
    return TrainConfig(**{**base, "log_every": 2, "seed": 1, "device": "cpu", **kw})


def test_token_budget_training_resumes_exactly(tmp_path):
    batches = arithmetic_batches(200, steps=10)
    steps = [batches.steps_in_epoch(e) for e in (0, 1)]
    model_a = tiny_model()
    summary_a = Trainer(model_a, train_cfg(), batches, None, tmp_path / "a", progress=False).fit()
    assert summary_a["steps"] == sum(steps) and steps[0] != 10

    class Crash(Exception):
        pass

    def crashing(epoch, start):
        for step, batch in enumerate(batches(epoch, start), start):
            if (epoch, step) == (1, 3):
                raise Crash
            yield batch

    crashing.steps_in_epoch = batches.steps_in_epoch
    cfg = train_cfg(checkpoint_every=2)
    with pytest.raises(Crash):
        Trainer(tiny_model(), cfg, crashing, None, tmp_path / "b", progress=False).fit()
    model_b = tiny_model(seed=9)
    summary_b = Trainer(model_b, cfg, batches, None, tmp_path / "b", progress=False).fit()
    assert summary_b["steps"] == summary_a["steps"]
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name


def test_compiled_training_matches_eager(tmp_path):
    """torch.compile (inductor; a C++ compiler on CPU) trains like eager mode, and its
    checkpoints load into a plain model."""
    task = make_task("arithmetic", {"op": "add", "max_digits": 4, "min_digits": 4})
    encoded = EncodedSet(task, task.sample(200, np.random.default_rng(0)))  # one length
    batches = TrainBatches(task, 16, 6, 0, encoded)
    cfg = dict(epoch_size=96, max_epochs=1, prefetch=0)
    eager, compiled = tiny_model(), tiny_model()
    Trainer(eager, train_cfg(**cfg), batches, None, tmp_path / "e", progress=False).fit()
    trainer = Trainer(
        compiled, train_cfg(**cfg, compile="default"), batches, None, tmp_path / "c", progress=False
    )
    assert trainer.model is not compiled and unwrap_model(trainer.model) is compiled
    trainer.fit()
    # compare what the models compute (Adam turns rounding noise in the gradient of an
    # attention key bias, which has no effect on the output, into lr-sized steps)
    src, _ = next(iter(batches(0, 0)))
    with torch.no_grad():
        torch.testing.assert_close(eager.eval()(src), compiled.eval()(src), rtol=1e-3, atol=1e-3)
        assert not torch.allclose(eager(src), tiny_model()(src), atol=1e-2)  # it did train
    saved = torch.load(tmp_path / "c" / CHECKPOINT_NAME, weights_only=True)["model"]
    assert not any("_orig_mod" in k for k in saved)
    tiny_model().load_state_dict(saved)
