"""Power-law schedules, plain SGD and Langevin noise: exact values, the noise's size, exact
resume, and nothing drawn when the temperature is 0."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from synthmath.core.errors import ConfigError
from synthmath.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from synthmath.train.config import TrainConfig
from synthmath.train.langevin import LangevinNoise, noise_seed
from synthmath.train.schedule import lr_factor
from synthmath.train.trainer import Trainer


def test_power_schedule_generalises_inverse_sqrt_and_constant():
    total = 2000
    base = TrainConfig(lr=1e-3, min_lr=0.0, warmup_steps=50, schedule="power")
    inv = replace(base, schedule="inverse_sqrt")
    const = replace(base, schedule="constant")
    half, flat = replace(base, power_beta=0.5), replace(base, power_beta=0.0)
    for step in range(total):
        assert lr_factor(half, step, total) == pytest.approx(lr_factor(inv, step, total), rel=1e-14)
        assert lr_factor(flat, step, total) == lr_factor(const, step, total)
    one = replace(base, power_beta=1.0)
    assert [lr_factor(one, s, total) for s in (49, 99, 199, 499)] == [1.0, 0.5, 0.25, 0.1]
    floored = replace(one, min_lr=2e-4)  # floor 0.2
    assert lr_factor(floored, 199, total) == 0.25 and lr_factor(floored, 499, total) == 0.2


def test_two_phase_power_schedule():
    cfg = TrainConfig(
        lr=1.0, warmup_steps=10, schedule="power", power_beta=1.0, power_switch_step=100
    )
    values = [lr_factor(cfg, s, 1000) for s in range(1000)]
    assert values[9] == 1.0 and set(values[10:100]) == {1.0}  # explore at the full rate
    assert values[199] == 0.5 and values[399] == 0.25  # then 1/t
    assert all(b <= a for a, b in zip(values[100:], values[101:]))


@pytest.mark.parametrize(
    "kw, field, text",
    [
        ({"power_switch_step": 100}, "power_switch_step", "only with schedule: power"),
        ({"schedule": "power", "power_switch_step": 5}, "power_switch_step", "warmup_steps=10"),
        ({"power_beta": -1.0}, "power_beta", ">= 0"),
        ({"optimizer": "adam"}, "optimizer", "adamw, sgd"),
        ({"langevin_temperature": -0.1}, "langevin_temperature", ">= 0"),
    ],
)
def test_bad_settings_name_the_field(kw, field, text):
    with pytest.raises(ConfigError, match=rf"TrainConfig\.{field}:.*{text}"):
        TrainConfig(warmup_steps=10, **kw)


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x).squeeze(-1)


def mse(model, batch):
    x, y = batch
    return torch.mean((model(x) - y) ** 2), x.shape[0]


def regression_batches(epoch: int, start_step: int):
    step = start_step
    while True:
        g = torch.Generator().manual_seed(1009 * epoch + step)
        x = torch.randn(8, 6, generator=g)
        yield x, x.sum(-1).sin()
        step += 1


def cfg_of(**kw) -> TrainConfig:
    base = dict(
        batch_size=8,
        epoch_size=80,
        max_epochs=3,
        lr=0.05,
        warmup_steps=0,
        schedule="power",
        power_beta=0.5,
        optimizer="sgd",
        langevin_temperature=1e-3,
        log_every=5,
        seed=3,
        device="cpu",
        precision="fp32",
        prefetch=0,
        clip_grad=0.0,
    )
    return TrainConfig(**{**base, **kw})


def fit(run_dir, cfg, batches=regression_batches, loss_fn=mse) -> tuple[nn.Module, dict]:
    torch.manual_seed(0)
    model = Regressor()
    trainer = Trainer(model, cfg, batches, None, run_dir, loss_fn=loss_fn, progress=False)
    return model, trainer.fit()


def test_sgd_without_noise_is_plain_gradient_descent(tmp_path):
    torch.manual_seed(0)
    model = Regressor()
    cfg = cfg_of(langevin_temperature=0.0, schedule="constant")
    trainer = Trainer(model, cfg, regression_batches, None, tmp_path, loss_fn=mse, progress=False)
    assert isinstance(trainer.optimizer, torch.optim.SGD) and trainer.langevin is None
    before = [p.detach().clone() for p in model.parameters()]
    batch = next(regression_batches(0, 0))
    loss, _ = mse(model, batch)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    rng = torch.get_rng_state()
    trainer._train_step(batch)
    assert torch.equal(torch.get_rng_state(), rng)  # T = 0: nothing drawn
    for p, b, g in zip(model.parameters(), before, grads):
        torch.testing.assert_close(p.detach(), b - cfg.lr * g)
    assert "langevin_rng" not in trainer.state_dict()


def test_noise_has_the_langevin_size(tmp_path):
    """With a zero gradient the parameters random-walk: after K steps at rate lr the variance
    per parameter is 2 lr T K."""
    cfg = cfg_of(schedule="constant", max_epochs=2, langevin_temperature=0.5, lr=0.01)

    def flat_loss(model, batch):
        return 0.0 * sum(p.sum() for p in model.parameters()), 1

    torch.manual_seed(0)
    start = [p.detach().clone() for p in Regressor().parameters()]
    model, summary = fit(tmp_path, cfg, loss_fn=flat_loss)
    moved = torch.cat([(p.detach() - s).flatten() for p, s in zip(model.parameters(), start)])
    expected = 2 * cfg.lr * cfg.langevin_temperature * summary["steps"]
    assert summary["steps"] == 20 and moved.numel() == 129
    assert moved.var().item() == pytest.approx(expected, rel=0.3)  # 129 samples
    assert abs(moved.mean().item()) < 4 * (expected / 129) ** 0.5


def test_noise_with_adamw_is_called_a_heuristic(tmp_path, caplog):
    torch.manual_seed(0)
    cfg = cfg_of(optimizer="adamw", lr=1e-3)
    trainer = Trainer(Regressor(), cfg, regression_batches, None, tmp_path, loss_fn=mse)
    assert isinstance(trainer.optimizer, torch.optim.AdamW) and trainer.langevin is not None
    assert "noisy Adam, a heuristic" in caplog.text


def test_generator_is_its_own_stream():
    noise = LangevinNoise(1.0, seed=3, device=torch.device("cpu"))
    first = torch.randn(5, generator=noise.generator)
    assert not torch.equal(first, torch.randn(5, generator=torch.Generator().manual_seed(3)))
    noise.reseed()
    assert torch.equal(first, torch.randn(5, generator=noise.generator))
    assert noise_seed(3) != noise_seed(4)


def test_langevin_run_resumes_exactly(tmp_path):
    cfg = cfg_of(checkpoint_every=4)
    model_a, summary_a = fit(tmp_path / "a", cfg)

    def crashing(epoch, start_step):
        for step, batch in enumerate(regression_batches(epoch, start_step), start_step):
            if (epoch, step) == (1, 7):  # after global step 17: the last checkpoint at 16
                raise RuntimeError("node died")
            yield batch

    with pytest.raises(RuntimeError, match="node died"):
        fit(tmp_path / "b", cfg, batches=crashing)
    state = load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)
    assert state["global_step"] == 16 and "langevin_rng" in state
    torch.manual_seed(999)  # disturb the global RNG: the noise must not depend on it
    model_b, summary_b = fit(tmp_path / "b", cfg)
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(pa, pb)
    assert summary_b["history"] == summary_a["history"]
    # and the noise mattered: without it the weights differ
    model_c, _ = fit(tmp_path / "c", replace(cfg, langevin_temperature=0.0))
    assert not torch.equal(model_a.net[0].weight, model_c.net[0].weight)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_langevin_on_cuda_resumes(tmp_path):
    """The generator lives on the GPU; its state travels through the CPU checkpoint."""
    cfg = cfg_of(checkpoint_every=4, device="cuda")
    model_a, summary_a = fit(tmp_path / "a", cfg)

    def crashing(epoch, start_step):
        for step, batch in enumerate(regression_batches(epoch, start_step), start_step):
            if (epoch, step) == (1, 7):
                raise RuntimeError("node died")
            yield batch

    with pytest.raises(RuntimeError, match="node died"):
        fit(tmp_path / "b", cfg, batches=crashing)
    assert "langevin_rng" in load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)
    model_b, summary_b = fit(tmp_path / "b", cfg)
    assert all(p.is_cuda for p in model_b.parameters())
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)
    assert summary_b["steps"] == summary_a["steps"] == 30
