"""Device, precision and CPU runtime choices of training and evaluation."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import torch

from synthmath.core.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"TrainConfig.device: {name!r} requested but CUDA is not available")
    return torch.device(name)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 matrix instructions (AVX512-BF16, AMX), where bf16 autocast
    roughly doubles training speed; elsewhere bf16 is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and (
        device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
    ):
        return torch.bfloat16
    return None


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def tune_cpu_allocator() -> bool:
    """Keep large freed buffers in the heap instead of unmapping them (glibc only).

    CPU training frees and reallocates the same large tensors every step (logits over a big
    vocabulary, embedding gradients); by default glibc returns each one to the OS and the
    next step page-faults it back, which showed as minutes of system time per run. Returns
    whether the setting was applied.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(
            m_trim_threshold, (1 << 31) - 1
        )
        return bool(ok)
    except (OSError, AttributeError):
        return False
