"""Atomic checkpoint files: a reader sees the old file or the new one, never half of one.

A save writes a hidden temporary file in the same directory (``.<name>.<pid>.<random>.tmp``),
flushes and fsyncs it, then ``os.replace``s it over the target, which is atomic on POSIX and
Windows. A job killed mid-write (SLURM preemption, out-of-memory) therefore leaves at most a
stray temporary file, which is never loaded and is removed by :func:`remove_stale_temp_files`.

Loading uses ``torch.load(..., weights_only=False)``: only for files this package wrote
itself (run directories under ``results/``), never for downloaded checkpoints, because
unpickling can run code. The payloads are plain (tensors, numbers, strings, lists, dicts),
so they also load under newer torch versions whose default is ``weights_only=True``.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("synthmath.checkpoint")

_TMP_SUFFIX = ".tmp"


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read; the message names the file."""


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}")


def _fsync_dir(directory: Path) -> None:
    # make the rename itself durable; not possible on every platform (e.g. Windows)
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically (temp file, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint this package wrote; :class:`CheckpointError` names a corrupt file.

    ``weights_only=False`` because our payloads may hold numpy RNG state and configs; do not
    point this at files from elsewhere.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise CheckpointError(
            f"{path}: cannot read checkpoint ({type(err).__name__}: {err}); the file is "
            "corrupt or truncated: delete it to restart the run from scratch"
        ) from err
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a synthmath checkpoint (got {type(obj).__name__})")
    return obj


def remove_stale_temp_files(directory: str | os.PathLike[str], name: str) -> list[Path]:
    """Delete temporary files that an interrupted :func:`save_atomic` of ``name`` left behind.

    Call it only when no other process is saving into ``directory`` (one trainer per run
    directory).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for tmp in directory.glob(f".{name}.*{_TMP_SUFFIX}"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """RNG states of python, numpy, torch CPU and (training on CUDA) every CUDA device."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (name, keys.tolist(), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            logger.warning("checkpoint has CUDA RNG states of another device count; not restored")
