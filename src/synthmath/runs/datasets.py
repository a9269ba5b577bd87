"""Datasets on disk and batches for training.

A dataset is a folder of ``shard-<i>.npz`` files holding *raw* problems (numbers, not
tokens), so one dataset serves every encoding. Shard ``i`` of a dataset with seed ``s`` is
drawn from ``np.random.default_rng([s, i])``: shards are independent jobs and the same spec
always gives the same bytes. Writes are atomic (temporary file + rename): a shard that exists
is whole.

Each shard records its dataset's id (and task, generator parameters, seed): loading checks
it against the dataset the run expects and the array names against what the task draws, so a
shard of another dataset or of another format is an error naming the file, not a silent mix
or a bare ``KeyError`` later.

Token ids are produced at load time by the task's vectorised encoders; batches are a
deterministic function of (seed, epoch, step), which is what makes resumed training exact.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from synthmath.core.errors import DataError
from synthmath.core.files import atomic_save_npz
from synthmath.core.raw import concat_raw, raw_len, sample_raw, take
from synthmath.core.task import RawBatch, Task
from synthmath.tasks.registry import make_task

log = logging.getLogger(__name__)

META_KEY = "__meta__"
FORMAT = 2  # 1: no dataset id


# ---- shards ------------------------------------------------------------------------------
def draw_shard(
    task: Task, size: int, seed: int, shard: int, state_dir: Path | None = None
) -> tuple[RawBatch, dict]:
    """The examples of shard ``shard`` of a dataset with seed ``seed`` (one seeding convention
    for the files the workflow writes and the data made in memory outside it), and the
    generator's statistics (empty unless the task generates shards itself: slow generators
    run in a watched child process, resumable from ``state_dir``)."""
    rng = np.random.default_rng([seed, shard])
    if "generate_shard" in task.capabilities:
        return task.generate_shard(size, rng, state_dir)
    return sample_raw(task, size, rng), {}


def draw_dataset(task: Task, spec) -> RawBatch:
    """All shards of a :class:`~synthmath.runs.plan.DatasetSpec`, in memory."""
    return concat_raw(
        [draw_shard(task, spec.shard_size(i), spec.seed, i)[0] for i in range(spec.shards)]
    )


def generate_shard(
    task_name: str,
    params: dict,
    size: int,
    seed: int,
    shard: int,
    path: str | os.PathLike,
    dataset: str | None = None,
) -> Path:
    """Generate shard ``shard`` of dataset ``dataset`` (its id) and write it atomically to
    ``path``.

    The Snakemake rule and ``synthmath generate`` both call this, so they write the same arrays.
    """
    task = make_task(task_name, params)
    path = Path(path)
    state_dir = path.parent / f".{path.stem}.progress"  # a killed slow generator resumes here
    t0 = time.time()
    raw, stats = draw_shard(task, size, seed, shard, state_dir)
    if stats:
        log.info(
            "%s: %d examples in %.0f s; %s",
            path.name,
            size,
            time.time() - t0,
            ", ".join(f"{k}={v}" for k, v in stats.items()),
        )
    meta = {
        "task": task_name,
        "params": task.generator_params(),
        "size": size,
        "seed": seed,
        "shard": shard,
        "dataset": dataset,
        "format": FORMAT,
    }
    if stats:
        meta["generation"] = stats
    atomic_save_npz(path, {**raw, META_KEY: np.array(json.dumps(meta, sort_keys=True))})
    shutil.rmtree(state_dir, ignore_errors=True)
    return path


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
                task_name,
                params,
                spec.shard_size(i),
                seed,
                i,
                out / spec.shard_path(i).name,
                dataset=spec.id,
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
        raise DataError(f"{path}: not a readable dataset shard ({err})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: not a dataset shard (its metadata is not an object)")
    return raw, meta


def task_arrays(task: Task) -> set[str]:
    """The names of the arrays ``task`` draws (what its shards must hold)."""
    if task.RAW_ARRAYS is not None:
        return set(task.RAW_ARRAYS)
    return set(draw_shard(task, 1, 0, 0)[0])


def check_shard(
    path: str | os.PathLike, raw: RawBatch, meta: dict, expected, task: Task, wanted: set[str]
) -> None:
    """Raise :class:`DataError` naming ``path`` unless the shard belongs to dataset
    ``expected`` (a :class:`~synthmath.runs.plan.DatasetSpec`) and holds the arrays ``wanted``
    (:func:`task_arrays` of ``task``)."""
    dataset = meta.get("dataset")
    if dataset is None:
        raise DataError(
            f"{path}: the shard records no dataset id (written before shards carried one, or "
            f"not by synthmath); delete it and rerun the generate step of {expected.id}"
        )
    if dataset != expected.id:
        raise DataError(
            f"{path}: shard of dataset {dataset!r}, but this run expects {expected.id!r}"
        )
    if set(raw) != wanted:
        missing, extra = sorted(wanted - set(raw)), sorted(set(raw) - wanted)
        raise DataError(
            f"{path}: arrays do not match task {task.name!r} (missing: "
            f"{', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'})"
        )
    if len({len(v) for v in raw.values()}) > 1:
        raise DataError(f"{path}: arrays of different lengths")


def load_dataset(
    paths: Sequence[str | os.PathLike], expected=None, task: Task | None = None
) -> tuple[RawBatch, dict]:
    """Read and concatenate shards; returns the raw batch and the first shard's metadata.

    With ``expected`` (the :class:`~synthmath.runs.plan.DatasetSpec` the caller wants) and
    its ``task``, each shard is checked with :func:`check_shard`.
    """
    if not paths:
        raise DataError("no dataset shards given")
    paths = sorted(map(str, paths))
    raws, metas = zip(*(read_shard(p) for p in paths))
    checked = expected is not None and task is not None
    wanted = task_arrays(task) if checked else set()
    for p, raw, m in zip(paths, raws, metas):
        if checked:
            check_shard(p, raw, m, expected, task, wanted)
        if m.get("task") != metas[0].get("task") or m.get("params") != metas[0].get("params"):
            raise DataError(f"{p}: shard belongs to another dataset than {paths[0]}")
    return concat_raw(list(raws)), dict(metas[0])


def load_dataset_dir(path: str | os.PathLike) -> tuple[RawBatch, dict]:
    paths = sorted(Path(path).glob("shard-*.npz"))
    if not paths:
        raise FileNotFoundError(f"{path}: no shard-*.npz files")
    return load_dataset(paths)


def example_digests(task: Task, raw: RawBatch, answers: bool = False) -> list[bytes]:
    """One digest per example of its encoded input (what the model reads), and of its encoded
    answer too with ``answers``: equal digests, equal examples for the model."""

    def rows(ids: np.ndarray, lengths: np.ndarray) -> list[bytes]:
        return [row[:n].tobytes() for row, n in zip(ids, lengths)]

    parts = [rows(*task.encode_src(raw))]
    if answers:
        parts.append(rows(*task.encode_tgt(raw)))
    out = []
    for pieces in zip(*parts):
        h = hashlib.blake2b(digest_size=16)
        for piece in pieces:  # the length first: no two splits of one byte string collide
            h.update(len(piece).to_bytes(8, "little") + piece)
        out.append(h.digest())
    return out


def dedupe(task: Task, raw: RawBatch) -> tuple[RawBatch, int]:
    """``raw`` without its repeated examples (same encoded input and answer; the first is
    kept, the order is unchanged) and how many were dropped."""
    seen: set[bytes] = set()
    keep = np.zeros(raw_len(raw), dtype=bool)
    for i, digest in enumerate(example_digests(task, raw, answers=True)):
        keep[i] = digest not in seen
        seen.add(digest)
    dropped = int((~keep).sum())
    return (take(raw, keep) if dropped else raw), dropped


def data_digest(raws: Sequence[RawBatch]) -> str:
    """A short hash of the arrays of ``raws`` (names, dtypes, shapes and bytes): what a model
    was trained on, independent of the files' zip timestamps."""
    h = hashlib.sha256()
    for raw in raws:
        for key in sorted(raw):
            a = np.ascontiguousarray(raw[key])
            h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
        h.update(b"#")
    return h.hexdigest()[:16]
