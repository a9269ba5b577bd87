"""Data-parallel training (synthmath.train.distributed): two CPU processes (gloo) follow the same loss
trajectory, evaluation metrics and weights as one process on the same global batches."""

import json
from pathlib import Path

import pytest
import torch

from synthmath.core.errors import ConfigError
from synthmath.core.vocab import BOS, EOS, PAD
from synthmath.nn.config import ModelConfig
from synthmath.nn.model import Transformer
from synthmath.train import distributed
from synthmath.train.checkpoint import CHECKPOINT_NAME
from synthmath.train.config import TrainConfig
from synthmath.train.trainer import Callback, Trainer

VOCAB, BATCH, STEPS_PER_EPOCH, EPOCHS = 12, 8, 10, 2


def batches(epoch: int, start_step: int):
    """Copy tasks of random lengths (so ranks hold different numbers of target tokens)."""
    for step in range(start_step, STEPS_PER_EPOCH):
        g = torch.Generator().manual_seed(1000 * epoch + step)
        src = torch.randint(3, VOCAB, (BATCH, 5), generator=g)
        lengths = torch.randint(1, 6, (BATCH,), generator=g)
        tgt = torch.full((BATCH, 7), PAD)
        for i, n in enumerate(lengths.tolist()):
            tgt[i, 0], tgt[i, 1 : n + 1], tgt[i, n + 1] = BOS, src[i, :n], EOS
        yield src, tgt


def evaluate(model) -> dict[str, float]:
    from synthmath.train.loss import sequence_loss

    src, tgt = next(batches(99, 0))
    return {"valid_score": -float(sequence_loss(model, (src, tgt))[0])}


class Recorder(Callback):
    def __init__(self, path: Path):
        self.path, self.points = path, []

    def on_log(self, trainer, records):
        self.points += [(r["step"], r["loss"]) for r in records]

    def on_train_end(self, trainer, summary):
        self.path.write_text(json.dumps({"points": self.points, "summary": summary}))


def train(run_dir: Path, devices: int) -> None:
    """One run; the callback (rank 0 only) writes the loss points to run_dir/record.json."""
    torch.manual_seed(0)
    cfg = ModelConfig(VOCAB, VOCAB, d_model=32, n_heads=2, max_len=16, dropout=0.0)
    tcfg = TrainConfig(
        batch_size=BATCH,
        epoch_size=BATCH * STEPS_PER_EPOCH,
        max_epochs=EPOCHS,
        lr=1e-2,
        warmup_steps=3,
        clip_grad=0.5,  # the clipped norm must be the global one
        weight_decay=0.01,
        log_every=1,
        device="cpu",
        precision="fp32",
        num_threads=1,
        devices=devices,
    )
    callbacks = [Recorder(run_dir / "record.json")]
    Trainer(
        Transformer(cfg), tcfg, batches, evaluate, run_dir, "valid_score", callbacks, progress=False
    ).fit()


def test_two_processes_match_one(tmp_path):
    distributed.launch(train, 1, "cpu", tmp_path / "one", 1)
    distributed.launch(train, 2, "cpu", tmp_path / "two", 2)
    one = json.loads((tmp_path / "one" / "record.json").read_text())
    two = json.loads((tmp_path / "two" / "record.json").read_text())
    steps = list(range(1, STEPS_PER_EPOCH * EPOCHS + 1))
    assert [s for s, _ in one["points"]] == steps == [s for s, _ in two["points"]]
    losses_one = torch.tensor([loss for _, loss in one["points"]])
    losses_two = torch.tensor([loss for _, loss in two["points"]])
    assert losses_one[-1] < 0.9 * losses_one[0]  # it learns, so the comparison means something
    torch.testing.assert_close(losses_two, losses_one, rtol=1e-4, atol=1e-5)
    for h_one, h_two in zip(one["summary"]["history"], two["summary"]["history"], strict=True):
        assert h_one.keys() == h_two.keys()
        for key in h_one:
            assert h_two[key] == pytest.approx(h_one[key], rel=1e-4, abs=1e-6), key
    weights_one = torch.load(tmp_path / "one" / CHECKPOINT_NAME, weights_only=True)["model"]
    weights_two = torch.load(tmp_path / "two" / CHECKPOINT_NAME, weights_only=True)["model"]
    assert weights_two.keys() == weights_one.keys()  # saved unwrapped (no "module." prefix)
    for name in weights_one:
        torch.testing.assert_close(weights_two[name], weights_one[name], rtol=1e-3, atol=1e-4)
    # this process is usable for single-process training again
    assert not distributed.is_distributed() and "WORLD_SIZE" not in __import__("os").environ


def test_devices_validation(tmp_path):
    with pytest.raises(ConfigError, match="devices"):
        TrainConfig(devices=0).validate()
    with pytest.raises(ConfigError, match="batch_size.*multiple of devices=3"):
        TrainConfig(batch_size=8, epoch_size=80, devices=3).validate()
    model = Transformer(ModelConfig(VOCAB, VOCAB, d_model=16, n_heads=2, max_len=16))
    cfg = TrainConfig(batch_size=8, epoch_size=80, devices=2, device="cpu")
    with pytest.raises(ConfigError, match="devices: 2 but this process group has 1"):
        Trainer(model, cfg, batches, None, tmp_path)


def test_shard_batch_single_process_is_identity():
    batch = (torch.arange(6).reshape(3, 2), torch.arange(3))
    assert distributed.shard_batch(batch) is batch
