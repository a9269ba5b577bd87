"""Token ids of raw problems (:class:`EncodedSet`) and deterministic training batches (:class:`TrainBatches`).

Token ids are produced at load time by the task's vectorised encoders; batches are a
deterministic function of (seed, epoch, step), which is what makes resumed training exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from synthmath.core.errors import ConfigError
from synthmath.core.task import RawBatch, Task
from synthmath.core.vocab import BOS, EOS, PAD
from synthmath.train.token_budget import check_budget, plan_epoch


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


def _check_points(task: Task, src: np.ndarray, src_len: np.ndarray) -> None:
    """A points task's inputs: (n, P, tokens_per_point), all-PAD rows past the point count."""
    width = task.tokens_per_point()
    if src.ndim != 3 or src.shape[2] != width:
        raise ValueError(
            f"task {task.name!r}: encode_src of a points input must be (n, points, {width}), "
            f"got shape {src.shape}"
        )
    if task.model_kind != "encoder_decoder":
        raise ValueError(f"task {task.name!r}: points inputs need an encoder_decoder model")
    inside = np.arange(src.shape[1])[None, :] < src_len[:, None]
    padding = (src == PAD).all(axis=2)
    if (padding & inside).any() or (~padding & ~inside).any():
        raise ValueError(
            f"task {task.name!r}: a point within the count is all PAD, or one past it is not"
        )


class EncodedSet:
    """Token ids of a raw batch, ready to be cut into batches.

    Sequence-to-sequence tasks (``task.model_kind == "encoder_decoder"``): src and tgt each get
    BOS/EOS. Encoder-only tasks: src and tgt are kept as the task encodes them, aligned
    position by position (same width and lengths, tgt PAD where there is no target), without
    specials; ``tgt != PAD`` marks the answer positions.

    Points inputs (``task.input_kind`` points / point_set): src is ``(n, P, tokens_per_point)``
    as the task encodes it (no BOS/EOS: one encoder position per point), ``src_len`` the number
    of points; the targets are token sequences as above.
    """

    def __init__(self, task: Task, raw: RawBatch):
        self.task = task
        self.raw = raw
        src, src_len = task.encode_src(raw)
        tgt, tgt_len = task.encode_tgt(raw)
        src_len, tgt_len = np.asarray(src_len), np.asarray(tgt_len)
        if task.input_kind != "tokens":
            _check_points(task, src, src_len)
            self.src, self.src_len = src.astype(np.int64), src_len
            self.tgt = add_bos_eos(tgt, tgt_len)
            self.tgt_len = tgt_len + 2
        elif task.model_kind == "encoder_only":
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
    (:func:`synthmath.train.token_budget.plan_epoch`); the number of steps of an epoch is then
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
