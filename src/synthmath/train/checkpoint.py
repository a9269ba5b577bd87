"""Checkpoint and weight files of the trainer: writing, safe reading, RNG states.

The trainer owns its state (:meth:`~synthmath.train.trainer.Trainer.state_dict`); this
module only puts it into files and back:

- the resumable checkpoint (``checkpoint.pt``: trainer state, optimizer, RNG states) is a
  torch file of plain values (tensors, numbers, strings, lists, dicts, tuples) read with
  ``torch.load(..., weights_only=True)``, which unpickles no code: a planted pickle is a
  :class:`CheckpointError`, not a program run;
- weights (the best epoch's, a run's final model) are safetensors files with their
  settings as JSON in the file's metadata.

Writes are atomic (:mod:`synthmath.core.files`): a job killed mid-write leaves the old file
and at most a stray temporary file.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_save
from torch import nn

from synthmath.core.errors import CheckpointError
from synthmath.core.files import atomic_open, write_bytes

logger = logging.getLogger("synthmath.train.checkpoint")

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.safetensors"
FORMAT = 2  # 1: pickled best.pt / model.pt (unpickled on load)
META_KEY = "synthmath"  # the safetensors metadata entry holding the JSON settings


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically (temp file, fsync, ``os.replace``)."""
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; :class:`CheckpointError` names a file
    that is corrupt, truncated or holds anything but plain values (a pickle with code)."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # UnpicklingError, RuntimeError, EOFError, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: not a readable synthmath checkpoint ({type(err).__name__}: {reason}); "
            "delete it to train the run from scratch"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a synthmath checkpoint (got {type(obj).__name__})")
    return obj


def save_weights(path: str | os.PathLike[str], model: nn.Module, meta: dict[str, Any]) -> None:
    """Write ``model``'s weights as safetensors with ``meta`` (strict JSON) in the metadata."""
    tensors = {
        k: v.detach().cpu().contiguous() for k, v in unwrap_model(model).state_dict().items()
    }
    text = json.dumps({"format": FORMAT, **meta}, allow_nan=False, sort_keys=True)
    write_bytes(path, safetensors_save(tensors, metadata={META_KEY: text}))


def load_weights(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata) of a :func:`save_weights` file; :class:`CheckpointError` names a
    file that is not one (truncated, a pickle, another format)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})[META_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{path}: not a synthmath weights file (safetensors with settings): {err}"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown weights format {meta!r:.60}")
    return {k: v.to(device) for k, v in tensors.items()}, meta


def load_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a :func:`save_weights` file, without reading its tensors."""
    path = Path(path)
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})[META_KEY])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: not a synthmath weights file: {err}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: unknown weights format {meta!r:.60}")
    return meta


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """``model.load_state_dict(state)``; a mismatch is a :class:`CheckpointError` naming
    ``path`` (e.g. weights of a model with other settings)."""
    try:
        unwrap_model(model).load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit this model ({first})") from None


def stale_reason(
    state: dict[str, Any], fingerprint: dict[str, str] | None, path: Path
) -> str | None:
    """Why checkpoint ``state`` must not be resumed nor reused by a trainer whose inputs have
    ``fingerprint`` (``None`` when it may). A checkpoint of another ``run`` is an error."""
    saved = state.get("trained_on")
    if fingerprint is not None and isinstance(saved, dict):
        run, mine = saved.get("run"), fingerprint.get("run")
        if run is not None and mine is not None and run != mine:
            raise CheckpointError(
                f"{path}: checkpoint of run {run!r}, not of this run {mine!r}; delete it to "
                "train this run from scratch"
            )
    if state.get("format") != FORMAT:
        return f"it has checkpoint format {state.get('format')!r}, not {FORMAT}"
    if fingerprint is None or saved == fingerprint:
        return None
    saved = saved if isinstance(saved, dict) else {}
    changed = [k for k in fingerprint if saved.get(k) != fingerprint[k]] or ["settings"]
    return "it was trained on other " + ", ".join(
        f"{k} ({saved.get(k)} -> {fingerprint.get(k)})" for k in changed
    )


# config fields that may change between a run and its resumption without changing results
RUNTIME_FIELDS = {"device", "num_threads", "log_every", "checkpoint_every", "compile", "prefetch"}


def changed_settings(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"field: old -> new"`` for each setting that changed and changes results."""

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
            return list(a) == list(b)
        return a == b

    return [
        f"{k}: {v!r} -> {current[k]!r}"
        for k, v in saved.items()
        if k not in RUNTIME_FIELDS and k in current and not same(v, current[k])
    ]


def plain_config(cfg: Any) -> dict[str, Any]:
    """The settings of ``cfg`` (a dataclass or a pydantic model) as a plain dict."""
    if hasattr(cfg, "model_dump"):
        return cfg.model_dump()
    from dataclasses import asdict

    return asdict(cfg)


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """RNG states of python, numpy, torch CPU and (training on CUDA) every CUDA device, as
    plain values (loadable with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            logger.warning("checkpoint has CUDA RNG states of another device count; not restored")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module under DDP/DataParallel and ``torch.compile`` wrappers (for state dicts)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model
