"""Langevin noise after each optimizer step: theta <- theta + sqrt(2 lr(t) T) xi, xi ~ N(0, I).

With plain SGD (``optimizer: sgd``, momentum 0) this is the Euler-Maruyama discretisation of
Langevin dynamics at temperature T, the setting of d'Ascoli, Refinetti and Biroli (2022) on
learning-rate schedules; with AdamW it is a heuristic ("noisy Adam"), not a sampler.

The noise comes from its own ``torch.Generator``, seeded from the run seed through a
``SeedSequence`` (so its stream is not the one that initialised the weights) and saved in
checkpoints: a resumed run draws exactly the noise an uninterrupted one would. With T = 0
nothing is created or drawn, so runs without noise are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

_TAG = 0x4C414E47  # "LANG": separates this stream from every other one seeded by the run seed


def noise_seed(seed: int) -> int:
    """The Langevin generator's seed derived from the run seed."""
    return int(np.random.SeedSequence([seed, _TAG]).generate_state(1, np.uint64)[0])


class LangevinNoise:
    """Adds sqrt(2 lr T) N(0, I) to parameters, from a dedicated seeded generator."""

    def __init__(self, temperature: float, seed: int, device: torch.device):
        if not temperature > 0:
            raise ValueError(f"langevin_temperature must be > 0 here (got {temperature})")
        self.temperature, self.seed = float(temperature), seed
        self.generator = torch.Generator(device=device)
        self.reseed()

    def reseed(self) -> None:
        """Back to the start of the stream (a fresh run)."""
        self.generator.manual_seed(noise_seed(self.seed))

    @torch.no_grad()
    def apply(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        """One step's noise on every trainable parameter, for the learning rate ``lr`` that
        step used."""
        scale = math.sqrt(2.0 * lr * self.temperature)
        for p in params:
            if p.requires_grad:
                noise = torch.randn(
                    p.shape, generator=self.generator, device=p.device, dtype=p.dtype
                )
                p.add_(noise, alpha=scale)

    def get_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state.cpu())
