"""Settings of one training run (:class:`TrainConfig`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from synthmath.core.errors import ConfigError

SCHEDULES = ("cosine", "inverse_sqrt", "constant")


PRECISIONS = ("auto", "fp32", "bf16")


COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


@dataclass
class TrainConfig:
    """Optimisation, schedule, evaluation cadence and runtime settings of one training run."""

    batch_size: int = 64
    epoch_size: int = 300_000  # examples per epoch: epoch_size // batch_size steps
    max_epochs: int = 100
    lr: float = 1e-4
    min_lr: float = 0.0
    weight_decay: float = 0.0  # decoupled (AdamW), on weight matrices and embeddings only
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 10_000
    schedule: str = "cosine"  # after linear warmup: cosine | inverse_sqrt | constant
    clip_grad: float = 5.0  # max gradient norm, 0 = off
    patience: int = 0  # stop after this many epochs without improvement, 0 = off
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = (
        "auto"  # auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16
    )
    num_threads: int = 0  # torch CPU threads, 0 = leave as is
    log_every: int = 50  # steps between logged loss points
    checkpoint_every: int = 0  # extra checkpoints every N steps, 0 = end of epoch only
    devices: int = 1  # data-parallel processes (synthmath.train.distributed); batch_size is global
    compile: str = "off"  # torch.compile the training model: off | default | reduce-overhead | ...
    batch_tokens: int = (
        0  # > 0: batches of at most this many padded tokens (synthmath.train.token_budget)
    )
    prefetch: int = 2  # batches built ahead in a background thread (pinned on CUDA); 0 = off

    def validate(self) -> None:
        """Raise :class:`ConfigError` (a ValueError) naming the field and the allowed values."""

        def bad(name: str, allowed: str) -> ConfigError:
            return ConfigError(f"TrainConfig.{name}: {allowed} (got {getattr(self, name)!r})")

        def is_int(v: Any) -> bool:
            return isinstance(v, int | np.integer) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return isinstance(v, int | float | np.number) and not isinstance(v, bool)

        for name in ("batch_size", "epoch_size", "max_epochs", "log_every", "devices"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise bad(name, "expected an integer >= 1")
        for name in (
            "warmup_steps",
            "patience",
            "seed",
            "num_threads",
            "checkpoint_every",
            "batch_tokens",
            "prefetch",
        ):
            if not is_int(getattr(self, name)) or getattr(self, name) < 0:
                raise bad(name, "expected an integer >= 0")
        if self.batch_size % self.devices:
            raise bad("batch_size", f"must be a multiple of devices={self.devices}")
        if self.epoch_size < self.batch_size:
            raise bad("epoch_size", f"must be >= batch_size={self.batch_size}")
        if not is_num(self.lr) or not self.lr > 0 or not math.isfinite(self.lr):
            raise bad("lr", "expected a finite number > 0")
        if not is_num(self.min_lr) or not 0 <= self.min_lr <= self.lr:
            raise bad("min_lr", f"expected a number in [0, lr={self.lr}]")
        for name in ("weight_decay", "clip_grad"):
            value = getattr(self, name)
            if not is_num(value) or not 0 <= value < math.inf:
                raise bad(name, "expected a finite number >= 0 (0 = off)")
        betas = self.betas
        if (
            not isinstance(betas, tuple | list)
            or len(betas) != 2
            or not all(is_num(b) and 0 <= b < 1 for b in betas)
        ):
            raise bad("betas", "expected two numbers in [0, 1)")
        if self.schedule not in SCHEDULES:
            raise bad("schedule", f"allowed: {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"allowed: {', '.join(PRECISIONS)}")
        if self.compile not in COMPILE_MODES:
            raise bad("compile", f"allowed: {', '.join(COMPILE_MODES)}")
        device = self.device
        if not isinstance(device, str) or not (
            device in ("auto", "cpu", "cuda")
            or (device.startswith("cuda:") and device[5:].isdigit())
        ):
            raise bad("device", "allowed: auto, cpu, cuda, cuda:N")

    @property
    def steps_per_epoch(self) -> int:
        return self.epoch_size // self.batch_size

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of ``dataclasses.asdict`` (unknown keys are an error naming them)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"TrainConfig.{unknown[0]}: unknown field; allowed: {sorted(known)}")
        values = dict(values)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)
