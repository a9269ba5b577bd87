"""The files of a run directory: the model it builds, the weights it saves and loads."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from synthmath.core.task import Task
from synthmath.runs.plan import RunSpec
from synthmath.tasks.registry import make_task


def build_model(run: RunSpec, task: Task):
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer

    extra: dict = {}
    if "digit_tokens" in task.capabilities:  # abacus positions count digits inside numbers
        src_ids, tgt_ids = task.digit_token_ids()
        extra = {"src_digit_ids": list(src_ids), "tgt_digit_ids": list(tgt_ids)}
    if task.input_kind != "tokens":  # numeric points: one embedded encoder position per point
        extra.update(input_embedder=task.input_kind, point_tokens=task.tokens_per_point())
    cfg = ModelConfig(
        src_vocab_size=len(task.src_vocab()),
        tgt_vocab_size=len(task.tgt_vocab()),
        **run.model,
        **extra,
    )
    cfg.validate()
    return Transformer(cfg)


def save_model(path: Path, model, task: Task, run: RunSpec, extra: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    state = {
        "model_config": asdict(model.cfg),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "task": task.name,
        "params": task.params,
        "run": run.to_json(),
        **(extra or {}),
    }
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_trained(run_dir: str | os.PathLike, device: str = "cpu"):
    """(model, task, run spec) of a trained run directory (its ``model.pt``)."""
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer

    path = Path(run_dir) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model (train the run first)")
    state = torch.load(path, map_location=device, weights_only=False)
    model = Transformer(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["state_dict"])
    model.to(device).eval()
    task = make_task(state["task"], state["params"])
    return model, task, RunSpec.from_json(state["run"])
