"""Checkpoints of the trainer: its whole state in atomic files, and exact resumption.

Atomic checkpoint files: a reader sees the old file or the new one, never half of one.

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
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from synthmath.core.errors import CheckpointError

logger = logging.getLogger("synthmath.train.checkpoint")

_TMP_SUFFIX = ".tmp"


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


CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"

_FORMAT = 1
# config fields that may change between a run and its resumption without changing results
_RUNTIME_FIELDS = {"device", "num_threads", "log_every", "checkpoint_every", "compile", "prefetch"}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module under DDP/DataParallel and ``torch.compile`` wrappers (for state dicts)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


class CheckpointMixin:
    """Checkpoint writing and resumption; mixed into the trainer, whose state it reads."""

    def _train_time(self) -> float:
        return self._train_time_before + time.perf_counter() - self._time_origin

    def _save_checkpoint(self, summary: dict[str, Any] | None = None) -> None:
        self._gather_window()  # every rank takes part; rank 0 alone writes
        if not self.is_main:
            return
        state = {
            "format": _FORMAT,
            "done": summary is not None,
            "summary": summary,
            "cfg": asdict(self.cfg),
            "main_metric": self.main_metric,
            "torch_version": str(torch.__version__),
            "model": unwrap_model(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
            "history": self.history,
            "epoch_loss_sum": self._epoch_loss_sum,
            "epoch_tokens": self._epoch_tokens,
            "window": {
                "loss_sum": self._win_loss.item(),
                "tokens": self._win_tokens,
                "steps": self._win_steps,
                "time_s": self._window_time(),
                "last_lr": getattr(self, "_last_lr", self.cfg.lr),
            },
            "train_time_s": self._train_time(),
            "rng": capture_rng_state(self.device),
        }
        save_atomic(state, self.checkpoint_path)

    def _save_best(self, epoch: int, metrics: dict[str, float]) -> None:
        if not self.is_main:
            return
        inner = unwrap_model(self.model)
        model_cfg = getattr(inner, "cfg", None)
        state = {
            "format": _FORMAT,
            "model": inner.state_dict(),
            "model_cfg": asdict(model_cfg) if is_dataclass(model_cfg) else None,
            "cfg": asdict(self.cfg),
            "epoch": epoch,
            "metrics": dict(metrics),
            "main_metric": self.main_metric,
        }
        save_atomic(state, self.run_dir / BEST_NAME)

    def _restore(self, state: dict[str, Any]) -> None:
        path = self.checkpoint_path
        if state.get("format") != _FORMAT:
            raise CheckpointError(f"{path}: unknown checkpoint format {state.get('format')!r}")
        try:
            changed = [
                f"{k}: {v!r} -> {getattr(self.cfg, k)!r}"
                for k, v in state["cfg"].items()
                if k not in _RUNTIME_FIELDS
                and hasattr(self.cfg, k)
                and v != getattr(self.cfg, k)
                and not (k == "betas" and tuple(v) == tuple(self.cfg.betas))
            ]
            if changed:
                logger.warning(
                    "%s: resuming with a changed TrainConfig (%s); the run will differ from an "
                    "uninterrupted one",
                    path,
                    "; ".join(changed),
                )
            unwrap_model(self.model).load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
            self.global_step = state["global_step"]
            self.best_metric, self.best_epoch = state["best_metric"], state["best_epoch"]
            self.bad_epochs, self.stopped_early = state["bad_epochs"], state["stopped_early"]
            self.history = [dict(h) for h in state["history"]]
            self._epoch_loss_sum, self._epoch_tokens = (
                state["epoch_loss_sum"],
                state["epoch_tokens"],
            )
            win = state["window"]
            if self.is_main:  # rank 0 saved the whole window's sums; the others restart at 0
                self._reset_window(win["loss_sum"], win["tokens"], win["steps"], win["time_s"])
            else:
                self._reset_window(0.0, 0, win["steps"], win["time_s"])
            self._last_lr = win["last_lr"]
            self._train_time_before = state["train_time_s"]
            restore_rng_state(state["rng"], self.device)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{path}: cannot resume from checkpoint ({err})") from err
        self.resumed = True
        logger.info("resuming from %s at epoch %d, step %d", path, self.epoch, self.step_in_epoch)
