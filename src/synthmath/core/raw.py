"""Raw batches: ``dict[str, np.ndarray]`` whose arrays share their first dimension (examples)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthmath.core.task import RawBatch, Task

GEN_CHUNK = 4096  # examples per generator call: bounds memory, and cache-sized batches run fastest


# ---- raw batches -------------------------------------------------------------------------
def concat_raw(parts: Sequence[RawBatch]) -> RawBatch:
    """Concatenate raw batches, zero-padding trailing dimensions to the largest part."""
    parts = [p for p in parts if p]
    if not parts:
        return {}
    out = {}
    for key in parts[0]:
        arrays = [p[key] for p in parts]
        ndim = arrays[0].ndim
        if ndim > 1:
            shape = [max(a.shape[d] for a in arrays) for d in range(1, ndim)]
            padded = []
            for a in arrays:
                if list(a.shape[1:]) != shape:
                    pad = [(0, 0)] + [(0, s - a.shape[d + 1]) for d, s in enumerate(shape)]
                    a = np.pad(a, pad)
                padded.append(a)
            arrays = padded
        out[key] = np.concatenate(arrays)
    return out


def take(raw: RawBatch, index) -> RawBatch:
    return {k: v[index] for k, v in raw.items()}


def raw_len(raw: RawBatch) -> int:
    return len(next(iter(raw.values()))) if raw else 0


def sample_raw(task: Task, n: int, rng: np.random.Generator) -> RawBatch:
    """Draw n examples in chunks (bounded memory for large shards)."""
    parts = []
    done = 0
    while done < n:
        k = min(GEN_CHUNK, n - done)
        parts.append(task.sample(k, rng))
        done += k
    return concat_raw(parts)
