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
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from synthmath.loading import check_budget, plan_epoch
from synthmath.tasks.base import BOS, EOS, PAD, ConfigError, RawBatch, Task, make_task

META_KEY = "__meta__"
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


# ---- shards ------------------------------------------------------------------------------
def draw_shard(task: Task, size: int, seed: int, shard: int) -> RawBatch:
    """The examples of shard ``shard`` of a dataset with seed ``seed`` (one seeding convention
    for the files the workflow writes and the data made in memory outside it)."""
    return sample_raw(task, size, np.random.default_rng([seed, shard]))


def draw_dataset(task: Task, spec) -> RawBatch:
    """All shards of a :class:`~synthmath.config.DatasetSpec`, in memory."""
    return concat_raw(
        [draw_shard(task, spec.shard_size(i), spec.seed, i) for i in range(spec.shards)]
    )


def atomic_save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    from synthmath.config import DatasetSpec

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


# ---- token ids and batches ---------------------------------------------------------------
def add_bos_eos(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(n, L) ids without specials -> (n, L+2) with BOS first and EOS after the last token."""
    n, width = ids.shape
    out = np.full((n, width + 2), PAD, dtype=np.int64)
    out[:, 0] = BOS
    out[:, 1 : width + 1] = ids
    out[np.arange(n), lengths + 1] = EOS
    return out


def _check_aligned(task: Task, src: np.ndarray, src_len: np.ndarray, tgt: np.ndarray) -> None:
    """An encoder-only task's targets must be one per source position, PAD past the source."""
    if src.shape != tgt.shape:
        raise ValueError(
            f"task {task.name!r}: encode_tgt must align with encode_src (encoder-only), got "
            f"shapes {tgt.shape} and {src.shape}"
        )
    outside = np.arange(src.shape[1])[None, :] >= src_len[:, None]
    if (tgt[outside] != PAD).any():
        raise ValueError(f"task {task.name!r}: targets past the end of the source")


class EncodedSet:
    """Token ids of a raw batch, ready to be cut into batches.

    Sequence-to-sequence tasks (``task.model_kind == "encoder_decoder"``): src and tgt each get
    BOS/EOS. Encoder-only tasks: src and tgt are kept as the task encodes them, aligned
    position by position (same width and lengths, tgt PAD where there is no target), without
    specials; ``tgt != PAD`` marks the answer positions.
    """

    def __init__(self, task: Task, raw: RawBatch):
        self.task = task
        self.raw = raw
        src, src_len = task.encode_src(raw)
        tgt, tgt_len = task.encode_tgt(raw)
        src_len, tgt_len = np.asarray(src_len), np.asarray(tgt_len)
        if task.model_kind == "encoder_only":
            _check_aligned(task, src, src_len, tgt)
            self.src, self.tgt = src.astype(np.int64), tgt.astype(np.int64)
            self.src_len, self.tgt_len = src_len, src_len
        else:
            self.src = add_bos_eos(src, src_len)
            self.src_len = src_len + 2
            self.tgt = add_bos_eos(tgt, tgt_len)
            self.tgt_len = tgt_len + 2

    def __len__(self) -> int:
        return len(self.src)

    def batch(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.src_len[index].max())
        t = int(self.tgt_len[index].max())
        src = torch.from_numpy(np.ascontiguousarray(self.src[index, :s]))
        tgt = torch.from_numpy(np.ascontiguousarray(self.tgt[index, :t]))
        return src, tgt

    @property
    def max_src_len(self) -> int:
        return int(self.src_len.max()) if len(self) else 0

    @property
    def max_tgt_len(self) -> int:
        return int(self.tgt_len.max()) if len(self) else 0


class TrainBatches:
    """Deterministic training batches: ``batches(epoch, start_step)`` as the trainer expects.

    Stored data: each epoch walks a permutation drawn from ``rng([seed, epoch])``, wrapping
    around (with a fresh permutation) when an epoch is longer than the dataset. Online data:
    batch (epoch, step) is drawn from ``rng([seed, epoch, step])``.

    ``batch_tokens`` > 0 (stored data only): the epoch's ``batch_size * steps_per_epoch``
    examples are cut into batches of at most that many padded tokens, grouped by length
    (:func:`synthmath.loading.plan_epoch`); the number of steps of an epoch is then
    :meth:`steps_in_epoch`. Batch sizes are multiples of ``multiple`` (data-parallel ranks).
    """

    def __init__(
        self,
        task: Task,
        batch_size: int,
        steps_per_epoch: int,
        seed: int,
        encoded: EncodedSet | None = None,
        batch_tokens: int = 0,
        multiple: int = 1,
    ):
        self.task = task
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed
        self.encoded = encoded
        self.batch_tokens, self.multiple = batch_tokens, multiple
        self._perms: dict[tuple[int, int], np.ndarray] = {}
        self._plans: dict[int, list[np.ndarray]] = {}
        if encoded is not None and len(encoded) == 0:
            raise ValueError("the training set is empty")
        if batch_tokens:
            if encoded is None:
                raise ConfigError(
                    "training.batch_tokens: batching by token budget needs a stored training "
                    "set (data.online: false)"
                )
            check_budget(encoded.src_len, self._tgt_len(), batch_tokens, multiple)

    def _tgt_len(self) -> np.ndarray | None:
        """Target lengths that count in a batch's cost (None: aligned with the source)."""
        return None if self.task.model_kind == "encoder_only" else self.encoded.tgt_len

    def plan(self, epoch: int) -> list[np.ndarray]:
        """The example indices of each batch of ``epoch`` (token-budget batching)."""
        if epoch not in self._plans:
            if len(self._plans) > 1:
                self._plans.clear()
            order = self._order(epoch, 0, self.batch_size * self.steps_per_epoch)
            self._plans[epoch] = plan_epoch(
                order,
                self.encoded.src_len,
                self._tgt_len(),
                self.batch_tokens,
                self.seed,
                epoch,
                self.multiple,
            )
        return self._plans[epoch]

    def steps_in_epoch(self, epoch: int) -> int:
        """Optimizer steps of ``epoch`` (fixed unless batching by token budget)."""
        return len(self.plan(epoch)) if self.batch_tokens else self.steps_per_epoch

    def _perm(self, epoch: int, k: int) -> np.ndarray:
        key = (epoch, k)
        if key not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            n = len(self.encoded)
            self._perms[key] = np.random.default_rng([self.seed, epoch, k]).permutation(n)
        return self._perms[key]

    def _order(self, epoch: int, start: int, stop: int) -> np.ndarray:
        """Example indices [start, stop) of the epoch's stream (permutations, chained)."""
        n = len(self.encoded)
        first, last = start // n, (stop - 1) // n
        stream = np.concatenate([self._perm(epoch, k) for k in range(first, last + 1)])
        return stream[start - first * n : stop - first * n]

    def __call__(
        self, epoch: int, start_step: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        bs = self.batch_size
        if self.batch_tokens:
            for index in self.plan(epoch)[start_step:]:
                yield self.encoded.batch(index)
            return
        for step in range(start_step, self.steps_per_epoch):
            if self.encoded is not None:
                yield self.encoded.batch(self._order(epoch, step * bs, (step + 1) * bs))
            else:
                rng = np.random.default_rng([self.seed, epoch, step])
                enc = EncodedSet(self.task, self.task.sample(bs, rng))
                yield enc.batch(np.arange(bs))
