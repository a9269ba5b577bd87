"""The precision evaluation decodes in (``eval.precision``): fp32, bf16 or auto.

fp32 (the default) gives bit-identical, portable results. bf16 decodes with a bf16 copy of the
trained model's weights (the checkpoint is not touched); the decoders still take
log-probabilities and the argmax in fp32 (:mod:`synthmath.eval.decoding`), so bf16 changes an
answer only where the model's rounding in bf16 flips a near-tie. ``auto`` picks bf16 where it
is fast, as training's ``precision: auto`` does (:func:`synthmath.train.device.amp_dtype`):
on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX); elsewhere bf16 is emulated and slower
than fp32.
"""

from __future__ import annotations

import copy

import torch

from synthmath.train.device import amp_dtype

#: the values of ``eval.precision``
EVAL_PRECISIONS = ("fp32", "bf16", "auto")


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """``"fp32"`` or ``"bf16"``: what ``precision`` means on ``device``."""
    if precision not in EVAL_PRECISIONS:
        raise ValueError(
            f"eval.precision: unknown value {precision!r}; allowed: {', '.join(EVAL_PRECISIONS)}"
        )
    return "bf16" if amp_dtype(precision, torch.device(device)) == torch.bfloat16 else "fp32"


def model_in(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """``model`` itself for fp32; for bf16 a copy with every floating-point parameter and
    buffer in bf16 (the caller's model, e.g. one still training, is left as it is)."""
    if precision == "fp32":
        return model
    if precision != "bf16":
        raise ValueError(f"model_in: expected fp32 or bf16, got {precision!r}")
    return copy.deepcopy(model).to(torch.bfloat16)
