"""A run directory: its layout, its files and its status; the model a run builds and saves.

Every module asks this one for a run's file names::

    config.json           the resolved run spec
    checkpoint.pt         the trainer's resumable state (kept across kills; weights_only load)
    best.safetensors      the best epoch's weights so far
    model.safetensors     the final model: best weights, with model settings, task, run spec,
                          summary and what it was trained on as JSON metadata; written last
    train.json            the training summary (history, best epoch, MLflow run id)
    eval/<test>.json      evaluation summaries
    mlflow_run.json       the MLflow run of this run (written by the tracker)

Weights are safetensors and the checkpoint is read with ``weights_only=True``: no file in a
run directory can make a load run code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthmath.core.errors import CheckpointError
from synthmath.core.task import Task
from synthmath.runs.plan import RunSpec
from synthmath.tasks.registry import make_task
from synthmath.train.checkpoint import (
    BEST_NAME,
    CHECKPOINT_NAME,
    load_state_into,
    load_weights,
    plain_config,
    save_weights,
)

MODEL_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
TRAIN_NAME = "train.json"
MLFLOW_NAME = "mlflow_run.json"
EVAL_DIR = "eval"


@dataclass(frozen=True)
class RunDir:
    """The files of one run directory (paths only; nothing is read until asked)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def best(self) -> Path:
        return self.path / BEST_NAME

    @property
    def model(self) -> Path:
        return self.path / MODEL_NAME

    @property
    def train_record(self) -> Path:
        return self.path / TRAIN_NAME

    @property
    def mlflow_record(self) -> Path:
        return self.path / MLFLOW_NAME

    def eval(self, test: str) -> Path:
        return self.path / EVAL_DIR / f"{test}.json"

    def status(self) -> str:
        """``new`` (nothing yet), ``training`` (a checkpoint, no final model: running, killed
        or preempted), ``trained`` (final model and summary), ``evaluated`` (and every test
        set of its config), ``failed`` (a final model without its summary, or an unreadable
        config)."""
        if self.model.exists():
            if not self.train_record.exists():
                return "failed"
            try:
                tests = json.loads(self.config.read_text())["test_sets"]
            except (OSError, ValueError, KeyError, TypeError):
                return "failed"
            return "evaluated" if tests and all(self.eval(t).exists() for t in tests) else "trained"
        return "training" if self.checkpoint.exists() else "new"

    def read_spec(self) -> RunSpec:
        """The run spec in ``config.json``; a one-line error names a missing or bad file."""
        try:
            return RunSpec.from_json(json.loads(self.config.read_text()))
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.config}: no run config (not a run directory)") from None
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"{self.config}: not a run config ({err})") from None

    def read_mlflow_id(self) -> str | None:
        """The MLflow run id recorded for this run, if any."""
        if not self.mlflow_record.exists():
            return None
        return json.loads(self.mlflow_record.read_text())["run_id"]


def build_model(run: RunSpec, task: Task):
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer

    extra: dict = {}
    if "digit_tokens" in task.capabilities:  # abacus positions count digits inside numbers
        src_ids, tgt_ids = task.digit_token_ids()
        extra = {"src_digit_ids": list(src_ids), "tgt_digit_ids": list(tgt_ids)}
    if task.input_kind != "tokens":  # numeric points: one embedded encoder position per point
        extra.update(input_embedder=task.input_kind, point_tokens=task.tokens_per_point())
    grid = task.input_grid() if run.model.get("attention") == "gpsa" else None
    if grid is not None:  # 2-D layout of the input; BOS comes first in seq2seq sources
        bos = task.input_kind == "tokens" and task.model_kind == "encoder_decoder"
        extra["src_grid"] = [grid[0], grid[1], grid[2] + int(bos)]
    cfg = ModelConfig(
        src_vocab_size=len(task.src_vocab()),
        tgt_vocab_size=len(task.tgt_vocab()),
        **run.model,
        **extra,
    )
    cfg.validate()
    return Transformer(cfg)


def save_model(path: Path, model, task: Task, run: RunSpec, extra: dict | None = None) -> None:
    """The final model as safetensors; model settings, task, run spec and ``extra`` (summary,
    what it was trained on) as JSON metadata."""
    meta = {
        "model_config": plain_config(model.cfg),
        "task": task.name,
        "params": task.params,
        "run": run.to_json(),
        **(extra or {}),
    }
    save_weights(path, model, json.loads(json.dumps(meta, default=str)))


def read_model(path: str | os.PathLike, device: str = "cpu") -> tuple[Any, Task, RunSpec, dict]:
    """(model, task, run spec, metadata) of a :func:`save_model` file; a file that is not
    one (truncated, a pickle, weights of another shape) is a :class:`CheckpointError`."""
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer

    path = Path(path)
    state, meta = load_weights(path, device)
    try:
        model = Transformer(ModelConfig(**meta["model_config"]))
        task = make_task(meta["task"], meta["params"])
        spec = RunSpec.from_json(meta["run"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: not a synthmath model ({err})") from None
    load_state_into(model, state, path)
    model.to(device).eval()
    return model, task, spec, meta


def load_trained(run_dir: str | os.PathLike, device: str = "cpu"):
    """(model, task, run spec) of a trained run directory (its final model).

    The model must be this run's: one copied from another run (same shapes, other run id)
    is a :class:`CheckpointError`.
    """
    rd = RunDir(run_dir)
    if not rd.model.exists():
        raise FileNotFoundError(f"{rd.model}: no trained model (train the run first)")
    model, task, spec, _ = read_model(rd.model, device)
    if rd.config.exists():
        own = rd.read_spec()
        if (own.run_id, own.config_hash) != (spec.run_id, spec.config_hash):
            raise CheckpointError(
                f"{rd.model}: model of run {spec.run_id!r}, but {rd.config} is of run "
                f"{own.run_id!r}; delete the model to train this run again"
            )
    return model, task, spec
