"""Settings of one training run (:class:`TrainConfig`), declared once: type, default, allowed
values and a one-line doc per field (the config schema's ``training`` section is generated
from them)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from synthmath.core.errors import ConfigError
from synthmath.core.settings import SettingProblem, revalidate, settings_class

SCHEDULES = ("cosine", "inverse_sqrt", "constant", "power")


OPTIMIZERS = ("adamw", "sgd")


PRECISIONS = ("auto", "fp32", "bf16")


COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


TRAIN_RULES = ("bp", "dfa")


_DEVICE = r"^(auto|cpu|cuda(:[0-9]+)?)$"


_Unit = Annotated[float, Field(ge=0, lt=1)]


def _doc(text: str, **constraints) -> Field:
    return Field(description=text, **constraints)


@settings_class
class TrainConfig:
    """Optimisation, schedule, evaluation cadence and runtime settings of one training run."""

    where = "TrainConfig"  # prefix of its error messages

    batch_size: Annotated[int, _doc("Examples per step (all devices together).", ge=1)] = 64
    epoch_size: Annotated[
        int, _doc("Examples per epoch: epoch_size // batch_size steps.", ge=1)
    ] = 300_000
    max_epochs: Annotated[int, _doc("Epochs to train.", ge=1)] = 100
    lr: Annotated[float, _doc("Peak learning rate.", gt=0, allow_inf_nan=False)] = 1e-4
    min_lr: Annotated[
        float, _doc("Learning rate at the end of the schedule (<= lr).", ge=0, allow_inf_nan=False)
    ] = 0.0
    weight_decay: Annotated[
        float,
        _doc(
            "Decoupled (AdamW), on weight matrices and embeddings only.", ge=0, allow_inf_nan=False
        ),
    ] = 0.0
    betas: Annotated[tuple[_Unit, _Unit], _doc("Adam betas, two numbers in [0, 1).")] = (
        0.9,
        0.999,
    )
    warmup_steps: Annotated[int, _doc("Steps of linear warmup.", ge=0)] = 10_000
    schedule: Annotated[Literal[SCHEDULES], _doc("Learning rate after the warmup.")] = "cosine"
    power_beta: Annotated[
        float,
        _doc(
            "schedule power: after the warmup the multiplier is (t0 / (step + 1))^power_beta, "
            "t0 = warmup_steps (0.5 = inverse_sqrt, 0 = constant), floored at min_lr.",
            ge=0,
            allow_inf_nan=False,
        ),
    ] = 0.5
    power_switch_step: Annotated[
        int,
        _doc(
            "schedule power, two phases: constant until this step, then "
            "(power_switch_step / (step + 1))^power_beta; 0 = off (decay from the warmup's end).",
            ge=0,
        ),
    ] = 0
    optimizer: Annotated[
        Literal[OPTIMIZERS],
        _doc(
            "adamw (decoupled weight decay) or sgd (plain SGD, momentum 0, weight_decay as L2: "
            "with langevin_temperature > 0 it is Langevin dynamics)."
        ),
    ] = "adamw"
    langevin_temperature: Annotated[
        float,
        _doc(
            "T > 0 adds sqrt(2 lr(t) T) N(0, I) to every parameter after each step (own seeded "
            "generator, checkpointed). With sgd: Euler-Maruyama Langevin dynamics; with adamw "
            "a heuristic (noisy Adam). 0 = off.",
            ge=0,
            allow_inf_nan=False,
        ),
    ] = 0.0
    train_rule: Annotated[
        Literal[TRAIN_RULES],
        _doc(
            "bp: backpropagation; dfa: direct feedback alignment (fixed random projections of "
            "the error at the final hidden state train the blocks below the top one)."
        ),
    ] = "bp"
    dfa_points: Annotated[
        Literal["macro", "micro"],
        _doc(
            "train_rule dfa: feedback points at block outputs (macro) or also after attention "
            "and the feed-forward activation (micro)."
        ),
    ] = "macro"
    dfa_feedback: Annotated[
        Literal["gaussian", "uniform"],
        _doc(
            "train_rule dfa: feedback matrices N(0, 1) or uniform [-1, 1], scaled by "
            "1/sqrt(d_model), one per point, drawn from a generator seeded by the run seed."
        ),
    ] = "gaussian"
    encoder_feedback: Annotated[
        Literal["bp", "mean", "none"],
        _doc(
            "train_rule dfa, encoder-decoder models: the encoder learns by backprop through "
            "cross-attention (bp, a hybrid), from the target-averaged error (mean), or not "
            "at all (none)."
        ),
    ] = "bp"
    dfa_align_every: Annotated[
        int,
        _doc(
            "train_rule dfa: steps between gradient-alignment measurements (cosine of the "
            "DFA signal and the backprop gradient at each point, an extra backprop pass); "
            "0 = off.",
            ge=0,
        ),
    ] = 100
    clip_grad: Annotated[
        float, _doc("Largest gradient norm; 0 = off.", ge=0, allow_inf_nan=False)
    ] = 5.0
    patience: Annotated[
        int, _doc("Early stopping after this many epochs without improvement; 0 = off.", ge=0)
    ] = 0
    seed: Annotated[int, _doc("Seed of initialisation, dropout and batch order.", ge=0)] = 0
    device: Annotated[
        str, _doc("auto, cpu, cuda or cuda:N (auto: CUDA when available).", pattern=_DEVICE)
    ] = "auto"
    precision: Annotated[
        Literal[PRECISIONS],
        _doc(
            "auto: bf16 autocast on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX), else fp32."
        ),
    ] = "auto"
    num_threads: Annotated[
        int,
        _doc(
            "CPU threads of a training job (and the cores Snakemake reserves for it, so small "
            "models train side by side); 0 = every core Snakemake gives the job.",
            ge=0,
        ),
    ] = 0
    log_every: Annotated[int, _doc("Steps between logged loss points.", ge=1)] = 50
    checkpoint_every: Annotated[
        int, _doc("Extra checkpoints every N steps; 0 = at the end of each epoch only.", ge=0)
    ] = 0
    devices: Annotated[
        int,
        _doc(
            "Data-parallel training processes in one job (DDP: nccl on GPUs, one GPU each; gloo "
            "on CPU); batch_size stays the global batch and must be a multiple of it.",
            ge=1,
        ),
    ] = 1
    compile: Annotated[
        Literal[COMPILE_MODES],
        _doc("torch.compile the training model (a torch mode name, or default); eval stays eager."),
    ] = "off"
    batch_tokens: Annotated[
        int,
        _doc(
            "Batching by token budget: > 0 cuts each epoch's examples into batches of at most "
            "this many padded tokens (source plus target), grouped by length. Needs stored "
            "data. 0 = fixed batches of batch_size.",
            ge=0,
        ),
    ] = 0
    prefetch: Annotated[
        int,
        _doc("Batches built ahead of the training step in a background thread; 0 = off.", ge=0),
    ] = 2

    @field_validator("betas", mode="before")
    @classmethod
    def _two_numbers(cls, value: Any) -> Any:
        ok = (
            isinstance(value, tuple | list)
            and len(value) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in value)
            and all(0 <= b < 1 for b in value)
        )
        if not ok:
            raise SettingProblem("betas", f"expected two numbers in [0, 1) (got {value!r})")
        return tuple(float(b) for b in value)

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> Any:
        if not isinstance(value, str) or not re.match(_DEVICE, value):
            raise SettingProblem("device", f"allowed: auto, cpu, cuda, cuda:N (got {value!r})")
        return value

    @model_validator(mode="after")
    def _cross_checks(self):
        if self.batch_size % self.devices:
            raise SettingProblem(
                "batch_size",
                f"must be a multiple of devices={self.devices} (got {self.batch_size})",
            )
        if self.epoch_size < self.batch_size:
            raise SettingProblem(
                "epoch_size", f"must be >= batch_size={self.batch_size} (got {self.epoch_size})"
            )
        if self.power_switch_step and self.schedule != "power":
            raise SettingProblem(
                "power_switch_step", f"only with schedule: power (got schedule {self.schedule})"
            )
        if self.power_switch_step and self.power_switch_step < self.warmup_steps:
            raise SettingProblem(
                "power_switch_step",
                f"must be 0 or >= warmup_steps={self.warmup_steps} (got {self.power_switch_step})",
            )
        if self.train_rule == "dfa" and (self.devices > 1 or self.compile != "off"):
            raise SettingProblem(
                "train_rule", "dfa runs on one device without compile (devices: 1, compile: off)"
            )
        if self.min_lr > self.lr:
            raise SettingProblem(
                "min_lr", f"expected a number in [0, lr={self.lr}] (got {self.min_lr})"
            )
        return self

    def validate(self) -> None:
        """Raise :class:`ConfigError` (a ValueError) naming the field and the allowed values."""
        revalidate(self)

    @property
    def steps_per_epoch(self) -> int:
        return self.epoch_size // self.batch_size

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of ``dataclasses.asdict`` (unknown keys are an error naming them)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"TrainConfig.{unknown[0]}: unknown field; allowed: {sorted(known)}")
        return cls(**values)
