"""Trainer: learning, schedules, exact resume after a crash or a signal, early stopping, checkpoints."""

from __future__ import annotations

import math
import os
import random
import signal
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synthmath.core.errors import CheckpointError, ConfigError, TrainingInterrupted
from synthmath.core.vocab import BOS, EOS, PAD
from synthmath.train.checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    FORMAT,
    load_checkpoint,
    load_weights,
    save_atomic,
)
from synthmath.train.config import TrainConfig
from synthmath.train.loss import sequence_loss
from synthmath.train.schedule import lr_factor
from synthmath.train.trainer import Callback, Trainer

VOCAB = 10  # 0-2 special, 3-9 symbols


class TinySeq2Seq(nn.Module):
    """GRU encoder-decoder with dropout (so resuming must restore the RNG)."""

    def __init__(self, dim: int = 32, p: float = 0.1):
        super().__init__()
        self.cfg = SimpleNamespace(arch="encoder_decoder")
        self.emb = nn.Embedding(VOCAB, dim)
        self.drop = nn.Dropout(p)
        self.enc = nn.GRU(dim, dim, batch_first=True)
        self.dec = nn.GRU(dim, dim, batch_first=True)
        self.out = nn.Linear(dim, VOCAB)

    def forward(self, src, tgt_in):
        _, h = self.enc(self.drop(self.emb(src)))
        y, _ = self.dec(self.drop(self.emb(tgt_in)), h)
        return self.out(self.drop(y))  # (B, T, V)


class TinyTagger(nn.Module):
    """Encoder-only: logits at every source position."""

    def __init__(self, dim: int = 32, p: float = 0.1):
        super().__init__()
        self.cfg = SimpleNamespace(arch="encoder_only")
        self.emb = nn.Embedding(VOCAB, dim)
        self.drop = nn.Dropout(p)
        self.out = nn.Linear(dim, VOCAB)

    def forward(self, src):
        return self.out(self.drop(self.emb(src)))  # (B, S, V)


def make_batch(arch: str, g: torch.Generator, batch_size: int = 8, length: int = 4):
    src = torch.randint(3, VOCAB, (batch_size, length), generator=g)
    if arch == "encoder_decoder":  # copy: BOS src EOS
        bos = torch.full((batch_size, 1), BOS)
        eos = torch.full((batch_size, 1), EOS)
        return src, torch.cat([bos, src, eos], dim=1)
    tgt = src.clone()  # aligned copy, no target at odd positions
    tgt[:, 1::2] = PAD
    return src, tgt


def batches_for(arch: str, batch_size: int = 8):
    """Batches as a deterministic function of (epoch, step), as the data side guarantees."""

    def train_batches(epoch: int, start_step: int):
        step = start_step
        while True:
            g = torch.Generator().manual_seed(10_007 * epoch + step)
            yield make_batch(arch, g, batch_size)
            step += 1

    return train_batches


def evaluator(arch: str):
    valid = make_batch(arch, torch.Generator().manual_seed(-1 % 2**31), 32)

    def evaluate(model):
        assert not model.training and not torch.is_grad_enabled()
        loss, _ = sequence_loss(model, valid)
        src, tgt = valid
        logits = model(src, tgt[:, :-1]) if arch == "encoder_decoder" else model(src)
        target = tgt[:, 1:] if arch == "encoder_decoder" else tgt
        mask = target != PAD
        acc = ((logits.argmax(-1) == target) & mask).sum() / mask.sum()
        return {"valid_acc": acc.item(), "valid_loss": loss.item()}

    return evaluate


class Recorder(Callback):
    def __init__(self):
        self.records, self.epochs, self.events = [], [], []

    def on_train_start(self, trainer):
        self.events.append(("start", trainer.resumed))

    def on_log(self, trainer, records):
        self.records.extend(records)

    def on_epoch_end(self, trainer, epoch, metrics):
        self.epochs.append((epoch, metrics))

    def on_train_end(self, trainer, summary):
        self.events.append(("end", summary["epochs_run"]))


def small_cfg(**kw) -> TrainConfig:
    base = dict(
        batch_size=8,
        epoch_size=80,
        max_epochs=3,
        lr=3e-3,
        warmup_steps=5,
        log_every=5,
        seed=7,
        device="cpu",  # bit-identical resume is promised on CPU
    )
    return TrainConfig(**{**base, **kw})


def new_model(arch: str = "encoder_decoder", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return TinySeq2Seq() if arch == "encoder_decoder" else TinyTagger()


def trainer(run_dir, cfg, model=None, batches=None, evaluate=None, **kw) -> Trainer:
    kw.setdefault("progress", False)
    return Trainer(
        model or new_model(),
        cfg,
        batches or batches_for("encoder_decoder"),
        evaluate or evaluator("encoder_decoder"),
        run_dir,
        **kw,
    )


@pytest.mark.parametrize("arch", ["encoder_decoder", "encoder_only"])
def test_loss_decreases_and_logs(tmp_path, arch):
    cfg = small_cfg(batch_size=16, epoch_size=16 * 75, max_epochs=2, lr=1e-2, log_every=10)
    assert cfg.device == "cpu"
    rec = Recorder()
    summary = Trainer(
        new_model(arch),
        cfg,
        batches_for(arch, 16),
        evaluator(arch),
        tmp_path,
        callbacks=[rec],
        progress=False,
    ).fit()
    losses = [r["loss"] for r in rec.records]
    assert losses[-1] < 0.6 * losses[0], losses
    # a point every log_every global steps, plus the end of each epoch (windows never span epochs)
    assert [r["step"] for r in rec.records] == [*range(10, 71, 10), 75, *range(80, 151, 10)]
    assert [r["epoch"] for r in rec.records] == [0] * 8 + [1] * 8
    assert set(rec.records[0]) == {"step", "epoch", "loss", "lr", "tokens_per_s"}
    assert all(r["tokens_per_s"] > 0 for r in rec.records)
    total = cfg.max_epochs * cfg.steps_per_epoch
    for r in rec.records:  # the lr of the last step of each window follows the schedule
        assert r["lr"] == pytest.approx(cfg.lr * lr_factor(cfg, r["step"] - 1, total))
    assert summary["epochs_run"] == 2 and summary["steps"] == 150
    assert summary["history"][-1]["valid_acc"] > summary["history"][0]["valid_acc"] - 1e-9
    assert [e for e, _ in rec.epochs] == [0, 1]
    assert {"train_loss", "lr", "valid_acc", "valid_loss"} <= set(rec.epochs[0][1])
    assert rec.events == [("start", False), ("end", 2)]
    assert (tmp_path / BEST_NAME).exists() and (tmp_path / CHECKPOINT_NAME).exists()


def test_sequence_loss_ignores_pad():
    model = TinyTagger().eval()
    src, tgt = make_batch("encoder_only", torch.Generator().manual_seed(0))
    loss, n = sequence_loss(model, (src, tgt))
    logits = model(src)
    mask = tgt != PAD
    expected = F.cross_entropy(logits[mask], tgt[mask])
    assert n == int(mask.sum()) and torch.allclose(loss, expected)
    model = TinySeq2Seq().eval()
    src, tgt = make_batch("encoder_decoder", torch.Generator().manual_seed(0))
    tgt[0, -2:] = PAD  # a shorter answer
    loss, n = sequence_loss(model, (src, tgt))
    logits, target = model(src, tgt[:, :-1]), tgt[:, 1:]
    mask = target != PAD
    assert n == int(mask.sum()) and torch.allclose(
        loss, F.cross_entropy(logits[mask], target[mask])
    )


def test_schedules(tmp_path):
    total = 1000
    cfg = TrainConfig(lr=2e-3, min_lr=1e-4, warmup_steps=100, schedule="cosine")
    warm = [lr_factor(cfg, s, total) for s in range(100)]
    steps = [b - a for a, b in zip(warm, warm[1:])]
    assert warm[0] == pytest.approx(0.01) and warm[-1] == pytest.approx(1.0)
    assert max(steps) == pytest.approx(min(steps))  # linear
    assert lr_factor(cfg, 100, total) == pytest.approx(1.0)
    assert cfg.lr * lr_factor(cfg, total, total) == pytest.approx(cfg.min_lr)
    assert cfg.lr * lr_factor(cfg, 5 * total, total) == pytest.approx(cfg.min_lr)
    decay = [lr_factor(cfg, s, total) for s in range(100, total + 1)]
    assert all(b <= a for a, b in zip(decay, decay[1:]))
    inv = replace(cfg, schedule="inverse_sqrt", min_lr=0.0)
    assert lr_factor(inv, 99, total) == pytest.approx(1.0)
    assert lr_factor(inv, 100, total) == pytest.approx(1.0, abs=0.01)  # continuous
    assert lr_factor(inv, 399, total) == pytest.approx(0.5)
    const = replace(cfg, schedule="constant", warmup_steps=0)
    assert lr_factor(const, 0, total) == lr_factor(const, total, total) == 1.0
    # the optimizer really uses it
    model = new_model()
    t = Trainer(
        model, replace(cfg, epoch_size=64), batches_for("x"), None, tmp_path, progress=False
    )
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.lr * 0.01)


def assert_same_run(model_a, summary_a, model_b, summary_b):
    for (name, pa), pb in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert summary_b["history"] == summary_a["history"]
    assert summary_b["steps"] == summary_a["steps"]
    assert summary_b["best_epoch"] == summary_a["best_epoch"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Run A: three epochs without interruption."""
    run_dir = tmp_path_factory.mktemp("run_a")
    rec = Recorder()
    model = new_model()
    summary = trainer(run_dir, small_cfg(checkpoint_every=4), model, callbacks=[rec]).fit()
    return model, summary, rec, run_dir


def test_exact_resume_after_crash(tmp_path, uninterrupted):
    model_a, summary_a, rec_a, dir_a = uninterrupted
    cfg = small_cfg(checkpoint_every=4)  # 10 steps/epoch: checkpoints at global steps 4, 8, 12, 16
    data = batches_for("encoder_decoder")

    def crashing(epoch, start_step):
        for step, batch in enumerate(data(epoch, start_step), start_step):
            if (epoch, step) == (1, 7):  # after global step 17: the last checkpoint is at 16
                raise RuntimeError("node died")
            yield batch

    rec_b = Recorder()
    with pytest.raises(RuntimeError, match="node died"):
        trainer(tmp_path, cfg, new_model(), crashing, callbacks=[rec_b]).fit()
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 6, 16)

    torch.manual_seed(12345)  # disturb the RNG; a fresh model with other weights
    model_b = new_model(seed=99)
    summary_b = trainer(tmp_path, cfg, model_b, callbacks=[rec_b]).fit()
    assert_same_run(model_a, summary_a, model_b, summary_b)
    assert rec_b.events[-2:] == [("start", True), ("end", 3)]
    # the log windows continue across the resume: same loss points as run A
    losses_a = {r["step"]: r["loss"] for r in rec_a.records}
    assert {r["step"]: r["loss"] for r in rec_b.records} == losses_a
    best_a, best_b = best_of(dir_a), best_of(tmp_path)
    assert best_a["epoch"] == best_b["epoch"]
    assert all(torch.equal(best_a["model"][k], v) for k, v in best_b["model"].items())


def best_of(run_dir) -> dict:
    """The best epoch's weights file: its metadata and, under "model", its weights."""
    weights, meta = load_weights(run_dir / BEST_NAME)
    return {**meta, "model": weights}


def test_resume_restores_python_and_numpy_rng(tmp_path):
    """A loss that draws from `random` and `numpy` (as augmentations might) still resumes exactly."""

    def noisy_loss(model, batch):
        loss, n = sequence_loss(model, batch)
        return loss * (1 + 0.1 * random.random() + 0.1 * np.random.rand()), n

    cfg = small_cfg(max_epochs=2, checkpoint_every=3)
    data = batches_for("encoder_decoder")

    def crashing(epoch, start_step):
        for step, batch in enumerate(data(epoch, start_step), start_step):
            if (epoch, step) == (1, 5):
                raise RuntimeError("node died")
            yield batch

    model_a = new_model()
    summary_a = trainer(tmp_path / "a", cfg, model_a, loss_fn=noisy_loss).fit()
    with pytest.raises(RuntimeError, match="node died"):
        trainer(tmp_path / "b", cfg, new_model(), crashing, loss_fn=noisy_loss).fit()
    random.seed(1)
    np.random.seed(1)
    model_b = new_model()
    summary_b = trainer(tmp_path / "b", cfg, model_b, loss_fn=noisy_loss).fit()
    assert_same_run(model_a, summary_a, model_b, summary_b)


def test_checkpoints_are_plain_data(uninterrupted):
    """Tensors, numbers and containers only: loadable with weights_only=True (newer torch)."""
    run_dir = uninterrupted[3]
    state = torch.load(run_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=True)
    assert state["format"] == FORMAT and state["done"]
    assert TrainConfig.from_dict(state["cfg"]) == small_cfg(checkpoint_every=4)
    best = best_of(run_dir)  # safetensors, settings as JSON metadata
    assert best["main_metric"] == "valid_acc" and best["epoch"] == state["best_epoch"]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGUSR1"])
def test_signal_stops_after_step_and_resumes_exactly(tmp_path, uninterrupted, signame):
    model_a, summary_a, _, _ = uninterrupted
    signum = getattr(signal, signame)
    # without prefetching the signal lands during step 3 (a prefetching thread runs ahead)
    cfg = small_cfg(checkpoint_every=4, prefetch=0)
    data = batches_for("encoder_decoder")

    def signalling(epoch, start_step):
        for step, batch in enumerate(data(epoch, start_step), start_step):
            if (epoch, step) == (1, 3):
                os.kill(os.getpid(), signum)  # as SLURM would, during step 3 of epoch 1
            yield batch

    before = signal.getsignal(signum)
    with pytest.raises(TrainingInterrupted) as info:
        trainer(tmp_path, cfg, new_model(), signalling).fit()
    assert info.value.signum == signum and info.value.exit_code == 75
    assert signal.getsignal(signum) is before  # handlers restored
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert (state["epoch"], state["step_in_epoch"]) == (1, 4)  # the current step was finished

    model_b = new_model(seed=5)
    summary_b = trainer(tmp_path, small_cfg(checkpoint_every=4), model_b).fit()  # prefetching
    assert_same_run(model_a, summary_a, model_b, summary_b)


def test_early_stopping_and_best_checkpoint(tmp_path):
    scores = iter([0.1, 0.5, 0.5, 0.4, 0.2, 0.9])  # a tie is no improvement
    snapshots = []

    def evaluate(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"valid_acc": next(scores)}

    cfg = small_cfg(max_epochs=10, patience=2)
    model = new_model()
    summary = trainer(tmp_path, cfg, model, evaluate=evaluate).fit()
    assert summary["stopped_early"] and summary["epochs_run"] == 4
    assert summary["best_epoch"] == 1 and summary["best_metric"] == 0.5
    assert [h["valid_acc"] for h in summary["history"]] == [0.1, 0.5, 0.5, 0.4]
    spe = cfg.steps_per_epoch  # validation (and its logged step) at each epoch's last step
    assert [h["step"] for h in summary["history"]] == [spe, 2 * spe, 3 * spe, 4 * spe]
    assert summary["steps_to_acc90"] is None and summary["steps_to_acc99"] is None
    assert summary["final_loss"] == summary["history"][-1]["train_loss"]
    best = best_of(tmp_path)
    assert best["epoch"] == 1 and best["metrics"]["valid_acc"] == 0.5
    assert all(torch.equal(best["model"][k], v) for k, v in snapshots[1].items())
    assert not all(torch.equal(best["model"][k], v) for k, v in snapshots[3].items())

    # a finished run returns its summary without training, and restores the final weights
    def no_data(epoch, start_step):
        raise AssertionError("a finished run must not train")

    other = new_model(seed=3)
    again = trainer(tmp_path, cfg, other, no_data, evaluate=evaluate).fit()
    assert again == summary
    assert all(torch.equal(a, b) for a, b in zip(other.parameters(), model.parameters()))


def test_fit_seeds_from_config(tmp_path):
    """Same model init and cfg.seed: same run whatever the global RNG was; another seed differs."""
    cfg = small_cfg(max_epochs=1)
    weights = []
    for i, seed in enumerate([7, 7, 8]):
        model = new_model(seed=0)
        torch.manual_seed(100 + i)
        trainer(tmp_path / str(i), replace(cfg, seed=seed), model).fit()
        weights.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_without_evaluate(tmp_path):
    with pytest.raises(ConfigError, match="patience"):
        Trainer(new_model(), small_cfg(patience=1), batches_for("encoder_decoder"), None, tmp_path)
    model = new_model()
    summary = Trainer(
        model,
        small_cfg(max_epochs=2),
        batches_for("encoder_decoder"),
        None,
        tmp_path,
        progress=False,
    ).fit()
    assert summary["best_metric"] is None and summary["best_epoch"] == 1
    assert [set(h) for h in summary["history"]] == [{"epoch", "step", "train_loss", "lr"}] * 2
    assert "steps_to_acc90" not in summary and summary["final_loss"] > 0  # no evaluation
    best = best_of(tmp_path)  # the last epoch
    assert all(torch.equal(best["model"][k], v) for k, v in model.state_dict().items())


def test_history_steps_of_an_older_checkpoint_are_filled_in(tmp_path):
    cfg = small_cfg(max_epochs=2)
    trainer(tmp_path, replace(cfg, max_epochs=1), evaluate=lambda m: {"valid_acc": 0.5}).fit()
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    for h in state["history"]:
        del h["step"]  # written before history entries had their step
    state.update(done=False, summary=None)
    save_atomic(state, tmp_path / CHECKPOINT_NAME)
    summary = trainer(tmp_path, cfg, evaluate=lambda m: {"valid_acc": 0.995}).fit()
    spe = cfg.steps_per_epoch
    assert [h["step"] for h in summary["history"]] == [spe, 2 * spe]
    assert (summary["steps_to_acc90"], summary["steps_to_acc99"]) == (2 * spe, 2 * spe)


def test_stray_temp_file_is_ignored_and_removed(tmp_path):
    cfg = small_cfg(max_epochs=2)
    trainer(tmp_path, replace(cfg, max_epochs=1)).fit()  # a run that finished epoch 0 ...
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    state.update(done=False, summary=None)  # ... and will continue to max_epochs=2
    save_atomic(state, tmp_path / CHECKPOINT_NAME)
    stray = tmp_path / f".{CHECKPOINT_NAME}.4242.deadbeef.tmp"
    stray.write_bytes((tmp_path / CHECKPOINT_NAME).read_bytes()[:1000])  # killed mid-write
    summary = trainer(tmp_path, cfg, progress=True).fit()
    assert summary["epochs_run"] == 2 and not stray.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_checkpoint_names_the_file(tmp_path, damage):
    path = tmp_path / CHECKPOINT_NAME
    save_atomic({"format": 1, "weights": torch.randn(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(b"not a checkpoint" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(path)):
        trainer(tmp_path, small_cfg()).fit()


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    save_atomic({"version": 1}, path)
    with pytest.raises(Exception):  # noqa: B017 - lambdas cannot be pickled
        save_atomic({"version": 2, "bad": lambda: None}, path)
    assert load_checkpoint(path) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("batch_size", 0, ">= 1"),
        ("epoch_size", 10, "batch_size"),
        ("lr", 0.0, "> 0"),
        ("min_lr", 1.0, "lr"),
        ("betas", (0.9,), "two numbers"),
        ("schedule", "linear", "cosine, inverse_sqrt, constant"),
        ("precision", "fp16", "auto, fp32, bf16"),
        ("device", "tpu", "auto, cpu, cuda"),
        ("patience", -1, ">= 0"),
        ("clip_grad", -1.0, ">= 0"),
        ("log_every", 0, ">= 1"),
    ],
)
def test_validate_names_bad_fields(field, value, allowed):
    with pytest.raises(ConfigError, match=rf"TrainConfig\.{field}:.*{allowed}"):
        TrainConfig(**{field: value})  # building checks it
    cfg = TrainConfig()
    setattr(cfg, field, value)  # assigned after building: validate() checks it again
    with pytest.raises(ConfigError, match=rf"TrainConfig\.{field}:.*{allowed}") as info:
        cfg.validate()
    assert isinstance(info.value, ValueError)
    TrainConfig().validate()
    assert TrainConfig.from_dict(vars(TrainConfig(betas=[0.8, 0.9]))).betas == (0.8, 0.9)


def test_bf16_autocast_on_cpu(tmp_path):
    summary = trainer(tmp_path, small_cfg(max_epochs=1, precision="bf16")).fit()
    assert math.isfinite(summary["history"][0]["train_loss"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_fused_and_resume(tmp_path):
    cfg = small_cfg(max_epochs=2, device="cuda", checkpoint_every=3)
    data = batches_for("encoder_decoder")

    def crashing(epoch, start_step):
        for step, batch in enumerate(data(epoch, start_step), start_step):
            if (epoch, step) == (1, 5):
                raise RuntimeError("node died")
            yield batch

    with pytest.raises(RuntimeError, match="node died"):
        t = trainer(tmp_path, cfg, new_model(), crashing)
        assert t.amp_dtype == torch.bfloat16 and t.optimizer.defaults["fused"]
        t.fit()
    assert "cuda" in load_checkpoint(tmp_path / CHECKPOINT_NAME)["rng"]
    model = new_model()
    summary = trainer(tmp_path, cfg, model).fit()
    assert summary["epochs_run"] == 2 and summary["steps"] == 20
    assert all(p.is_cuda for p in model.parameters())
    assert all(math.isfinite(h["train_loss"]) for h in summary["history"])


def test_cuda_request_without_cuda_is_clear(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError, match="device"):
        trainer(tmp_path, small_cfg(device="cuda"))


class _Planted:
    """Unpickling this creates a file: what a malicious checkpoint would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_planted_pickle_checkpoint_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / CHECKPOINT_NAME
    torch.save({"format": FORMAT, "done": True, "summary": _Planted(marker)}, path)
    with pytest.raises(CheckpointError, match=rf"{path}: not a readable synthmath checkpoint"):
        trainer(tmp_path, small_cfg(max_epochs=1)).fit()
    assert not marker.exists()
    torch.save(_Planted(marker), tmp_path / BEST_NAME)
    with pytest.raises(CheckpointError, match="not a synthmath weights file"):
        load_weights(tmp_path / BEST_NAME)
    assert not marker.exists()


def test_fingerprint_decides_between_reuse_and_a_fresh_start(tmp_path, caplog):
    """A finished run is reused only when it was trained on the same data and settings."""
    cfg = small_cfg(max_epochs=1)
    print_a = {"run": "r1", "settings": "s1", "data": "d1"}
    first = trainer(tmp_path, cfg, fingerprint=print_a).fit()

    def no_data(epoch, start_step):
        raise AssertionError("a finished run on the same data must not train")

    assert trainer(tmp_path, cfg, batches=no_data, fingerprint=dict(print_a)).fit() == first

    def other_data(epoch, start_step):  # the data changed: other batches
        yield from batches_for("encoder_decoder")(epoch + 7, start_step)

    with caplog.at_level("WARNING", logger="synthmath.train.trainer"):
        changed = trainer(
            tmp_path, cfg, batches=other_data, fingerprint={**print_a, "data": "d2"}
        ).fit()
    assert "training from scratch" in caplog.text and "data (d1 -> d2)" in caplog.text
    assert changed["history"] != first["history"]
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["trained_on"]["data"] == "d2"

    with pytest.raises(CheckpointError, match="checkpoint of run 'r1', not of this run 'r2'"):
        trainer(tmp_path, cfg, fingerprint={**print_a, "run": "r2", "data": "d2"}).fit()


def test_trainer_state_round_trip(tmp_path):
    """state_dict / load_state_dict carry the whole progress (no checkpoint file needed)."""
    cfg = small_cfg(max_epochs=1)
    a = trainer(tmp_path / "a", cfg)
    a.fit()
    b = trainer(tmp_path / "b", cfg, model=new_model(seed=4))
    b.load_state_dict(a.state_dict())
    assert (b.epoch, b.global_step, b.history, b.best_epoch) == (
        a.epoch,
        a.global_step,
        a.history,
        a.best_epoch,
    )
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))
