"""Checkpoints of :class:`synthmath.training.Trainer`: the whole training state, written
atomically, and its exact restoration (split from :mod:`synthmath.training`)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, is_dataclass
from typing import Any

import torch
from torch import nn

from synthmath.checkpoint import CheckpointError, capture_rng_state, restore_rng_state, save_atomic

logger = logging.getLogger("synthmath.training")

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
