"""Datasets on disk and batches for training.

A dataset is a folder of ``shard-<i>.npz`` files holding *raw* problems (numbers, not
tokens), so one dataset serves every encoding. Shard ``i`` of a dataset with seed ``s`` is
drawn from ``np.random.default_rng([s, i])``: shards are independent jobs and the same spec
always gives the same bytes. Writes are atomic (temporary file + rename): a shard that exists
is whole.

Token ids are produced at load time by the task's vectorised encoders; batches are a
deterministic function of (seed, epoch, step), which is what makes resumed training exact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synthmath.core.files import atomic_save_npz
from synthmath.core.raw import concat_raw, sample_raw
from synthmath.core.task import RawBatch, Task
from synthmath.tasks.registry import make_task

META_KEY = "__meta__"


# ---- shards ------------------------------------------------------------------------------
def draw_shard(task: Task, size: int, seed: int, shard: int) -> RawBatch:
    """The examples of shard ``shard`` of a dataset with seed ``seed`` (one seeding convention
    for the files the workflow writes and the data made in memory outside it)."""
    return sample_raw(task, size, np.random.default_rng([seed, shard]))


def draw_dataset(task: Task, spec) -> RawBatch:
    """All shards of a :class:`~synthmath.runs.plan.DatasetSpec`, in memory."""
    return concat_raw(
        [draw_shard(task, spec.shard_size(i), spec.seed, i) for i in range(spec.shards)]
    )


def generate_shard(
    task_name: str, params: dict, size: int, seed: int, shard: int, path: str | os.PathLike
) -> Path:
    """Generate shard ``shard`` of a dataset and write it atomically to ``path``.

    The Snakemake rule and ``synthmath generate`` both call this, so they write the same bytes.
    """
    task = make_task(task_name, params)
    raw = draw_shard(task, size, seed, shard)
    meta = {
        "task": task_name,
        "params": task.generator_params(),
        "size": size,
        "seed": seed,
        "shard": shard,
        "format": 1,
    }
    atomic_save_npz(Path(path), {**raw, META_KEY: np.array(json.dumps(meta, sort_keys=True))})
    return Path(path)


def generate_dataset(
    task_name: str, params: dict, size: int, seed: int, out_dir: str | os.PathLike, shards: int = 1
) -> list[Path]:
    """Write a whole dataset (what the workflow's generate jobs write, one shard each)."""
    from synthmath.runs.plan import DatasetSpec

    spec = DatasetSpec("cli", task_name, params, size, seed, max(1, min(shards, size)), "cli")
    out = Path(out_dir)
    paths = []
    for i in range(spec.shards):
        paths.append(
            generate_shard(
                task_name, params, spec.shard_size(i), seed, i, out / spec.shard_path(i).name
            )
        )
    return paths


def read_shard(path: str | os.PathLike) -> tuple[RawBatch, dict]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files if k != META_KEY}
            meta = json.loads(str(z[META_KEY])) if META_KEY in z.files else {}
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: dataset shard not found (run the generate step)"
        ) from None
    except Exception as err:  # truncated or foreign file
        raise ValueError(f"{path}: not a readable dataset shard ({err})") from err
    return raw, meta


def load_dataset(paths: Sequence[str | os.PathLike]) -> tuple[RawBatch, dict]:
    """Read and concatenate shards; returns the raw batch and the first shard's metadata."""
    if not paths:
        raise ValueError("no dataset shards given")
    raws, metas = zip(*(read_shard(p) for p in sorted(map(str, paths))))
    for p, m in zip(paths, metas):
        if m.get("task") != metas[0].get("task") or m.get("params") != metas[0].get("params"):
            raise ValueError(f"{p}: shard belongs to another dataset than {paths[0]}")
    return concat_raw(list(raws)), dict(metas[0])


def load_dataset_dir(path: str | os.PathLike) -> tuple[RawBatch, dict]:
    paths = sorted(Path(path).glob("shard-*.npz"))
    if not paths:
        raise FileNotFoundError(f"{path}: no shard-*.npz files")
    return load_dataset(paths)
