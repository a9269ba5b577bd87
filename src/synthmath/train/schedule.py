"""The learning-rate schedule: linear warmup, then cosine, inverse square root, constant or a
power law t^-beta (d'Ascoli, Refinetti, Biroli 2022), optionally after a constant phase."""

from __future__ import annotations

import math

from synthmath.train.config import TrainConfig


def lr_factor(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Multiplier of ``cfg.lr`` used by optimizer step ``step`` (0-based).

    Linear warmup reaches ``lr`` at step ``warmup_steps - 1``. Then ``constant`` stays there,
    ``cosine`` decays to ``min_lr`` at ``total_steps`` and ``inverse_sqrt`` decays as
    ``sqrt(warmup_steps / (step + 1))`` (continuous with the warmup), floored at ``min_lr``.
    ``power`` decays as ``(t0 / (step + 1))^power_beta`` with ``t0 = warmup_steps``, or, with
    ``power_switch_step`` S > 0, stays constant until step S and then decays with ``t0 = S``
    (explore with a large rate, then converge); floored at ``min_lr``.
    """
    warmup = cfg.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "constant":
        return 1.0
    floor = cfg.min_lr / cfg.lr
    if cfg.schedule == "cosine":
        progress = min((step - warmup) / max(total_steps - warmup, 1), 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "power":
        switch = cfg.power_switch_step
        if switch and step < switch:
            return 1.0
        t0 = switch or max(warmup, 1)
        return max(floor, (t0 / (step + 1)) ** cfg.power_beta)
    return max(floor, math.sqrt(max(warmup, 1) / (step + 1)))
