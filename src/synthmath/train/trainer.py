"""A model-agnostic training loop with exact resume (minGPT-style; MLflow plugs in as a callback).

The trainer knows models only through ``loss_fn(model, batch)`` and the data only through
``train_batches(epoch, start_step)``, which must yield the batches of ``epoch`` from
``start_step`` on as a deterministic function of ``(epoch, step)``. With that, a run killed at
any point (SLURM preemption, SIGTERM) and restarted with the same arguments resumes from
``run_dir/checkpoint.pt`` and ends, on CPU, with bit-identical weights and metric history.
The trainer owns its state (:meth:`Trainer.state_dict`, :meth:`Trainer.load_state_dict`);
:mod:`synthmath.train.checkpoint` only writes and reads the files.

A ``fingerprint`` (e.g. hashes of the run's settings and training data, and its run id)
is stored in the checkpoint: a checkpoint with another fingerprint is not resumed nor reused
(training starts from scratch, with a warning), and one recording another ``run`` is an
error, so a forced rerun after the data changed never keeps a stale model.

An "epoch" is ``epoch_size`` examples (Charton's convention for generated data), i.e.
``epoch_size // batch_size`` optimizer steps; each epoch ends with ``evaluate(model)``. Epochs
are numbered from 0. Model selection keeps the epoch whose ``main_metric`` is *highest*
(accuracies; negate a loss in ``evaluate`` to select on it).

Seeding: :meth:`Trainer.fit` seeds ``random``, ``numpy`` and ``torch`` from ``cfg.seed``
before training, but the model is built by the caller: seed before constructing it (e.g.
``torch.manual_seed(cfg.seed)``) for a reproducible initialisation. A resumed run takes its
weights and RNG states from the checkpoint, so initialisation then does not matter. Langevin
noise (``langevin_temperature`` > 0) draws from its own generator (:mod:`synthmath.train.langevin`),
also checkpointed.

``train_rule: dfa`` (:mod:`synthmath.train.dfa_transformer`) hooks direct-feedback-alignment
points into the model and replaces ``loss.backward()`` by ``dfa.backward(loss)``; every
``dfa_align_every`` steps a backprop pass on the step's batch (with the RNG states put back
after it) measures the gradient alignment, sent to the callbacks' ``on_log`` as
``alignment/<point>`` records and kept in the summary. With ``bp`` (the default) none of
this exists.

Callbacks see each log window and each epoch at least once: they run before the checkpoint
that covers them is written, so work redone after a kill is reported again.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from synthmath.core.errors import CheckpointError, ConfigError, TrainingInterrupted
from synthmath.core.files import finite_json, remove_stale_temp_files
from synthmath.train import distributed
from synthmath.train.checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    FORMAT,
    capture_rng_state,
    changed_settings,
    load_checkpoint,
    load_state_into,
    plain_config,
    restore_rng_state,
    save_atomic,
    save_weights,
    stale_reason,
    unwrap_model,
)
from synthmath.train.config import TrainConfig
from synthmath.train.device import amp_dtype, resolve_device
from synthmath.train.langevin import LangevinNoise
from synthmath.train.loss import Batch, sequence_loss
from synthmath.train.milestones import milestones
from synthmath.train.prefetch import Prefetcher
from synthmath.train.schedule import lr_factor

logger = logging.getLogger("synthmath.train.trainer")


class Callback:
    """Hooks into :class:`Trainer`; all no-ops. MLflow logging and Snakemake glue live here."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Training (or its resumption: ``trainer.resumed``) is about to start."""

    def on_log(self, trainer: Trainer, records: list[dict[str, Any]]) -> None:
        """Loss points since the last call: ``{"step", "epoch", "loss", "lr", "tokens_per_s"}``."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        """Epoch ``epoch`` ended: ``train_loss`` (mean per token), ``lr`` (of its last step) and
        the metrics of ``evaluate``."""

    def on_train_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        """Training finished (max_epochs or early stopping) with :meth:`Trainer.fit`'s summary."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def compile_model(model: nn.Module, mode: str) -> nn.Module:
    """``torch.compile(model)`` in ``mode`` ("default" or a torch mode name).

    Sequence lengths vary between batches: after the first recompilation torch marks them
    dynamic, so a run compiles a few times at its start and then reuses the graphs. The
    compiled module shares its parameters with ``model``; state dicts are taken from
    :func:`unwrap_model` and carry no ``_orig_mod`` prefix.
    """
    return torch.compile(model, mode=None if mode == "default" else mode)


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW (or plain SGD, momentum 0, for Langevin dynamics); weight decay on tensors of
    rank >= 2 only (not on biases and norm gains): decoupled for AdamW, L2 for SGD."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.0)
    kwargs: dict[str, Any] = {"lr": cfg.lr, "betas": tuple(cfg.betas)}
    if device.type == "cuda":
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


class Trainer:
    """Trains ``model`` for ``cfg.max_epochs`` epochs of ``cfg.epoch_size`` examples.

    ``train_batches(epoch, start_step)`` yields ``(src, tgt)`` batches of ``epoch`` from step
    ``start_step`` on (at least ``steps_per_epoch - start_step`` of them), deterministically.
    ``evaluate(model)`` (called in eval mode under ``torch.no_grad``) returns metrics such as
    ``{"valid_acc": 0.93}``; ``main_metric`` (higher is better) selects the best weights
    (``run_dir/best.safetensors``) and drives
    early stopping. A ``train_batches`` with a ``steps_in_epoch(epoch)`` method (token-budget
    batching) sets the number of steps of each epoch; otherwise it is ``cfg.steps_per_epoch``. One trainer per ``run_dir`` at a time. With ``cfg.devices`` > 1 it must
    run in each process of a group started by :func:`synthmath.train.distributed.launch` (or
    ``torchrun``): the model is wrapped in DDP, each rank trains on its slice of every batch,
    and rank 0 alone evaluates, checkpoints and calls the callbacks.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        train_batches: Callable[[int, int], Iterator[Batch]],
        evaluate: Callable[[nn.Module], dict[str, float]] | None,
        run_dir: str | Path,
        main_metric: str = "valid_acc",
        callbacks: Sequence[Callback] = (),
        loss_fn: Callable[[nn.Module, Batch], tuple[torch.Tensor, int]] = sequence_loss,
        progress: bool = True,
        fingerprint: dict[str, str] | None = None,
    ):
        cfg.validate()
        if cfg.devices != distributed.world_size():
            raise ConfigError(
                f"TrainConfig.devices: {cfg.devices} but this process group has "
                f"{distributed.world_size()} process(es); start training through "
                "synthmath.train.distributed.launch or torchrun"
            )
        if cfg.patience and evaluate is None:
            raise ConfigError("TrainConfig.patience: early stopping needs an evaluate function")
        self.cfg = cfg
        self.device = resolve_device(distributed.device_for_rank(cfg.device))
        self.amp_dtype = amp_dtype(cfg.precision, self.device)
        self.model = model.to(self.device)
        if cfg.compile != "off":
            self.model = compile_model(self.model, cfg.compile)
        if distributed.is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.is_main = distributed.is_main()
        self.train_batches, self.evaluate = train_batches, evaluate
        self.run_dir = Path(run_dir)
        self.main_metric = main_metric
        self.fingerprint = dict(fingerprint) if fingerprint is not None else None
        self.callbacks = list(callbacks) if self.is_main else []
        self.loss_fn, self.progress = loss_fn, progress and self.is_main
        steps_in = getattr(train_batches, "steps_in_epoch", None)
        self.steps_in_epoch: Callable[[int], int] = (
            steps_in if callable(steps_in) else lambda epoch: cfg.steps_per_epoch
        )
        self.steps_per_epoch = self.steps_in_epoch(0)  # of epoch 0 (all, unless by token budget)
        self.total_steps = cfg.max_epochs * self.steps_per_epoch
        self.optimizer = build_optimizer(self.model, cfg, self.device)
        self.langevin = (
            LangevinNoise(cfg.langevin_temperature, cfg.seed, self.device)
            if cfg.langevin_temperature > 0
            else None
        )
        if self.langevin is not None and cfg.optimizer != "sgd":
            logger.warning(
                "langevin_temperature %g with optimizer %s: noisy Adam, a heuristic; Langevin "
                "dynamics needs optimizer: sgd",
                cfg.langevin_temperature,
                cfg.optimizer,
            )
        self.dfa = None
        if cfg.train_rule == "dfa":
            from synthmath.train.dfa_transformer import attach_dfa

            self.dfa = attach_dfa(
                unwrap_model(self.model),
                cfg.seed,
                cfg.dfa_points,
                cfg.dfa_feedback,
                cfg.encoder_feedback,
            ).to(self.device)
        self.alignment: list[dict[str, float]] = []
        total = self.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(cfg, step, total)
        )
        # progress, all saved in the checkpoint
        self.epoch = self.step_in_epoch = self.global_step = 0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.history: list[dict[str, float]] = []
        self.resumed = False
        self._epoch_loss_sum, self._epoch_tokens = 0.0, 0
        self._reset_window()
        self._train_time_before = 0.0
        self._time_origin = time.perf_counter()
        self._last_lr = cfg.lr
        self._stop_signal: int | None = None
        self._checkpoint: tuple[dict[str, Any] | None, str | None] | None = None

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    # ---- the loop -----------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train (resuming from ``run_dir/checkpoint.pt`` if present) and return the summary.

        Raises :class:`TrainingInterrupted` after saving a checkpoint on SIGTERM/SIGUSR1.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT_NAME, BEST_NAME) if self.is_main else ():
            for tmp in remove_stale_temp_files(self.run_dir, name):
                logger.warning("removed %s left by an interrupted save", tmp)
        if self.cfg.num_threads:
            torch.set_num_threads(self.cfg.num_threads)
        seed_everything(self.cfg.seed)
        if self.langevin is not None:
            self.langevin.reseed()
        state = self._usable_checkpoint()
        if state is not None and state.get("done"):
            load_state_into(self.model, state["model"], self.checkpoint_path)
            logger.info(
                "%s: run already finished on the same data; not training again",
                self.checkpoint_path,
            )
            return state["summary"]
        if state is not None:
            self._resume(state)
        self._time_origin = time.perf_counter()
        self._stop_signal = None
        old_handlers = self._install_signal_handlers()
        try:
            self.model.train()
            for cb in self.callbacks:
                cb.on_train_start(self)
            while True:
                summary = self._run_epoch()
                if summary is not None:
                    return summary
        finally:
            for signum, handler in old_handlers.items():
                signal.signal(signum, handler)

    def _run_epoch(self) -> dict[str, Any] | None:
        epoch, start, spe = self.epoch, self.step_in_epoch, self.steps_in_epoch(self.epoch)
        started = time.perf_counter()
        if start < spe:
            batches = self.train_batches(epoch, start)
            if self.cfg.prefetch:
                batches = Prefetcher(
                    batches, self.cfg.prefetch, pin_memory=self.device.type == "cuda"
                )
            bar = tqdm(total=spe, initial=start, desc=f"epoch {epoch}", disable=not self.progress)
            try:
                iterator = iter(batches)
                for step in range(start, spe):
                    try:
                        batch = next(iterator)
                    except StopIteration:
                        raise RuntimeError(
                            f"train_batches({epoch}, {start}) ran out after {step - start} "
                            f"batches; {spe - start} needed"
                        ) from None
                    self._train_step(batch)
                    self.step_in_epoch, self.global_step = step + 1, self.global_step + 1
                    bar.update(1)
                    if self.global_step % self.cfg.log_every == 0:
                        self._log_point()
                        bar.set_postfix(loss=f"{self._last_record['loss']:.4f}", refresh=False)
                    if self._stop_requested():
                        self._interrupt()
                    every = self.cfg.checkpoint_every
                    if every and self.global_step % every == 0 and step + 1 < spe:
                        self._save_checkpoint()
            finally:
                bar.close()
                if hasattr(batches, "close"):
                    batches.close()
        return self._end_epoch(epoch, time.perf_counter() - started)

    def _train_step(self, batch: Batch) -> None:
        src, tgt = (t.to(self.device, non_blocking=True) for t in distributed.shard_batch(batch))
        if self.dfa is not None and self.cfg.dfa_align_every:
            if self.global_step % self.cfg.dfa_align_every == 0:
                self._measure_alignment(src, tgt)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss, n_tokens = self.loss_fn(self.model, (src, tgt))
        if self.dfa is not None:
            self.dfa.backward(loss)
        elif distributed.is_distributed():
            # DDP averages gradients over ranks: weigh each rank's mean by its share of the
            # global batch's tokens, so the average is the gradient of the global token mean
            (n_global,) = distributed.all_reduce_sum([float(n_tokens)], self.device)
            (loss * (n_tokens * distributed.world_size() / max(n_global, 1.0))).backward()
        else:
            loss.backward()
        if self.cfg.clip_grad > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
        self._last_lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        if self.langevin is not None:
            self.langevin.apply(unwrap_model(self.model).parameters(), self._last_lr)
        self.scheduler.step()
        n = int(n_tokens)
        self._win_loss = self._win_loss + loss.detach().float() * n  # no sync until a log point
        self._win_tokens += n
        self._win_steps += 1

    def _measure_alignment(self, src: torch.Tensor, tgt: torch.Tensor) -> None:
        """Gradient alignment on this batch before its update; the dropout and position draws
        of the backprop pass are undone (the RNG states are put back)."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self._autocast():
            values = self.dfa.gradient_alignment(lambda: self.loss_fn(self.model, (src, tgt))[0])
        record = {"step": self.global_step, **{f"alignment/{k}": v for k, v in values.items()}}
        self.alignment.append(record)
        for cb in self.callbacks:
            cb.on_log(self, [dict(record, epoch=self.epoch)])

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _end_epoch(self, epoch: int, elapsed: float) -> dict[str, Any] | None:
        self._log_point()  # the partial window, so windows never span epochs
        metrics = {
            "train_loss": self._epoch_loss_sum / max(self._epoch_tokens, 1),
            "lr": self._last_lr,  # of the epoch's last step
        }
        metrics.update(self._run_evaluate())
        self.history.append({"epoch": epoch, "step": self.global_step, **metrics})
        improved = self.evaluate is None  # without evaluation, the best is the last epoch
        if self.evaluate is not None:
            if self.main_metric not in metrics:
                raise KeyError(
                    f"main_metric {self.main_metric!r} is not among the metrics of evaluate: "
                    f"{', '.join(sorted(metrics))}"
                )
            value = metrics[self.main_metric]
            improved = not math.isnan(value) and (
                self.best_metric is None or value > self.best_metric
            )
            if improved:
                self.best_metric = value
        if improved:
            self.best_epoch, self.bad_epochs = epoch, 0
            if self.is_main:
                meta = {"epoch": epoch, "metrics": dict(metrics), "main_metric": self.main_metric}
                save_weights(self.run_dir / BEST_NAME, self.model, finite_json(meta))
        else:
            self.bad_epochs += 1
        self.stopped_early = bool(self.cfg.patience and self.bad_epochs >= self.cfg.patience)
        done = self.stopped_early or epoch + 1 >= self.cfg.max_epochs
        self.epoch, self.step_in_epoch = epoch + 1, 0
        self._epoch_loss_sum, self._epoch_tokens = 0.0, 0
        for cb in self.callbacks:
            cb.on_epoch_end(self, epoch, dict(metrics))
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        logger.info(
            "epoch %d (%d/%d): %s [%.1fs]", epoch, epoch + 1, self.cfg.max_epochs, shown, elapsed
        )
        if self.stopped_early:
            logger.info("early stopping: %d epochs without improvement", self.bad_epochs)
        if done:
            summary = self.summary()
            for cb in self.callbacks:
                cb.on_train_end(self, summary)
            self._save_checkpoint(summary=summary)
            return summary
        self._save_checkpoint()
        if self._stop_requested():
            self._interrupt(save=False)
        return None

    def _run_evaluate(self) -> dict[str, float]:
        if self.evaluate is None:
            return {}
        metrics = None
        if self.is_main:  # on the bare model: a DDP forward on one rank would wait for the rest
            self.model.eval()
            try:
                with torch.no_grad():
                    raw = self.evaluate(unwrap_model(self.model))
            finally:
                self.model.train()
            metrics = {str(k): float(v) for k, v in raw.items()}
        return distributed.broadcast_from_main(metrics)

    def summary(self) -> dict[str, Any]:
        extra = {"alignment": [dict(a) for a in self.alignment]} if self.dfa is not None else {}
        return {
            **extra,
            "main_metric": self.main_metric if self.evaluate is not None else None,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.history),
            "steps": self.global_step,
            "stopped_early": self.stopped_early,
            "train_time_s": self._train_time(),
            "history": [dict(h) for h in self.history],
            **milestones(self.history, self.main_metric if self.evaluate is not None else None),
        }

    # ---- state and checkpoints ----------------------------------------------------------
    def state_dict(self, summary: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything a resumption needs but the RNG states, as plain values; ``summary``
        marks a finished run."""
        state = {
            "done": summary is not None,
            "summary": summary,
            "cfg": plain_config(self.cfg),
            "main_metric": self.main_metric,
            "trained_on": self.fingerprint,
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
            "history": [dict(h) for h in self.history],
            "epoch_loss_sum": self._epoch_loss_sum,
            "epoch_tokens": self._epoch_tokens,
            "window": {
                "loss_sum": self._win_loss.item(),
                "tokens": self._win_tokens,
                "steps": self._win_steps,
                "time_s": self._window_time(),
                "last_lr": self._last_lr,
            },
            "train_time_s": self._train_time(),
        }
        if self.langevin is not None:
            state["langevin_rng"] = self.langevin.get_state()
        if self.dfa is not None:
            state["dfa"] = self.dfa.state_dict()
            state["alignment"] = [dict(a) for a in self.alignment]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict` (model, optimizer, scheduler, progress, log window,
        Langevin noise generator, DFA feedback matrices and alignment curve)."""
        unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step = state["global_step"]
        self.best_metric, self.best_epoch = state["best_metric"], state["best_epoch"]
        self.bad_epochs, self.stopped_early = state["bad_epochs"], state["stopped_early"]
        self.history = [dict(h) for h in state["history"]]
        step = 0
        for h in self.history:  # checkpoints written before history entries had their step
            step += self.steps_in_epoch(h["epoch"])
            h.setdefault("step", step)
        self._epoch_loss_sum, self._epoch_tokens = state["epoch_loss_sum"], state["epoch_tokens"]
        win = state["window"]
        if self.is_main:  # rank 0 saved the whole window's sums; the others restart at 0
            self._reset_window(win["loss_sum"], win["tokens"], win["steps"], win["time_s"])
        else:
            self._reset_window(0.0, 0, win["steps"], win["time_s"])
        self._last_lr = win["last_lr"]
        self._train_time_before = state["train_time_s"]
        if self.langevin is not None and "langevin_rng" in state:
            self.langevin.set_state(state["langevin_rng"])
        if self.dfa is not None and "dfa" in state:
            self.dfa.load_state_dict(state["dfa"])
            self.alignment = [dict(a) for a in state["alignment"]]

    def _train_time(self) -> float:
        return self._train_time_before + time.perf_counter() - self._time_origin

    def _save_checkpoint(self, summary: dict[str, Any] | None = None) -> None:
        self._gather_window()  # every rank takes part; rank 0 alone writes
        if self.is_main:
            state = {"format": FORMAT, "torch_version": str(torch.__version__)}
            state.update(self.state_dict(summary), rng=capture_rng_state(self.device))
            save_atomic(state, self.checkpoint_path)

    def stale_checkpoint(self) -> str | None:
        """Why the run directory's checkpoint will not be resumed nor reused (another
        fingerprint or format), or ``None``; raises :class:`CheckpointError` for a checkpoint
        that cannot be read or is of another run. Callers may ask before :meth:`fit` (e.g. to
        open a new MLflow run for a fresh start); the checkpoint is read once."""
        if self._checkpoint is None:
            state = None
            if self.checkpoint_path.exists():
                state = load_checkpoint(self.checkpoint_path)
            why = (
                None
                if state is None
                else stale_reason(state, self.fingerprint, self.checkpoint_path)
            )
            self._checkpoint = (state, why)
        return self._checkpoint[1]

    def _usable_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint to resume or reuse; ``None`` when there is none or it is stale
        (training starts from scratch and says why)."""
        why = self.stale_checkpoint()
        state, self._checkpoint = self._checkpoint[0], None
        if why is None:
            return state
        logger.warning("%s: not resuming: %s; training from scratch", self.checkpoint_path, why)
        if self.is_main:
            (self.run_dir / BEST_NAME).unlink(missing_ok=True)
        return None

    def _resume(self, state: dict[str, Any]) -> None:
        path = self.checkpoint_path
        try:
            changed = changed_settings(state["cfg"], plain_config(self.cfg))
            if changed:
                logger.warning(
                    "%s: resuming with a changed TrainConfig (%s); the run will differ from an "
                    "uninterrupted one",
                    path,
                    "; ".join(changed),
                )
            self.load_state_dict(state)
            restore_rng_state(state["rng"], self.device)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"{path}: cannot resume from checkpoint ({err})") from None
        self.resumed = True
        logger.info("resuming from %s at epoch %d, step %d", path, self.epoch, self.step_in_epoch)

    # ---- logging ------------------------------------------------------------------------
    def _reset_window(self, loss_sum: float = 0.0, tokens: int = 0, steps: int = 0, t: float = 0.0):
        self._win_loss = torch.tensor(loss_sum, dtype=torch.float32, device=self.device)
        self._win_tokens, self._win_steps = tokens, steps
        self._win_time_before, self._win_start = t, time.perf_counter()

    def _window_time(self) -> float:
        return self._win_time_before + time.perf_counter() - self._win_start

    def _gather_window(self) -> None:
        """Sum the window's loss and tokens over the ranks into rank 0's (others keep 0)."""
        if not distributed.is_distributed():
            return
        loss_sum, tokens = distributed.all_reduce_sum(
            [self._win_loss.item(), self._win_tokens], self.device
        )
        if not self.is_main:
            loss_sum, tokens = 0.0, 0
        self._win_loss = torch.tensor(loss_sum, dtype=torch.float32, device=self.device)
        self._win_tokens = int(tokens)

    def _log_point(self) -> None:
        if self._win_steps == 0:
            return
        loss_sum, tokens = distributed.all_reduce_sum(
            [self._win_loss.item(), self._win_tokens], self.device
        )
        tokens = int(tokens)
        self._epoch_loss_sum += loss_sum
        self._epoch_tokens += tokens
        self._last_record = {
            "step": self.global_step,
            "epoch": self.epoch,
            "loss": loss_sum / max(tokens, 1),
            "lr": self._last_lr,
            "tokens_per_s": tokens / max(self._window_time(), 1e-9),
        }
        self._reset_window()
        for cb in self.callbacks:
            cb.on_log(self, [dict(self._last_record)])

    # ---- signals ------------------------------------------------------------------------
    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for name in ("SIGTERM", "SIGUSR1"):
            signum = getattr(signal, name, None)
            if signum is not None:
                old[signum] = signal.signal(signum, self._on_signal)
        return old

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop_signal = signum  # acted on after the current step

    def _stop_requested(self) -> bool:
        """Whether a signal reached this process or (data-parallel) any other rank."""
        signum = distributed.any_rank(self._stop_signal or 0, self.device)
        if signum:
            self._stop_signal = signum
        return bool(signum)

    def _interrupt(self, save: bool = True) -> None:
        signum = self._stop_signal
        assert signum is not None
        logger.warning(
            "%s received: checkpointing at epoch %d step %d and stopping",
            signal.Signals(signum).name,
            self.epoch,
            self.step_in_epoch,
        )
        if save:
            self._save_checkpoint()
        raise TrainingInterrupted(signum, self.checkpoint_path)
