"""Feeding the trainer fast: batching by token budget and background (pinned-memory) loading.

Batching by token budget (``training.batch_tokens``). Fixed-size batches of variable-length
sequences waste compute on padding and leave the accelerator's memory half used by batches of
short sequences. With a budget, each epoch's examples (the same stream as fixed batches: the
epoch's permutation of the training set) are cut into *pools* of consecutive examples; a pool
is sorted by length and cut greedily into batches whose padded size stays within the budget::

    cost(batch) = n * max(src_len) + n * max(tgt_len)     (encoder-decoder)
    cost(batch) = n * max(src_len)                        (encoder-only: tgt is aligned)

and the order of the epoch's batches is then shuffled. Each example of the epoch is used once
(except fewer than ``multiple`` left over at the end of a pool, with ``multiple`` = data-parallel
processes so that every batch splits evenly). The plan is a pure function of (seed, epoch), so a
resumed run takes exactly the batches an uninterrupted one takes. The number of steps of an
epoch depends on the lengths drawn; the learning-rate schedule counts ``max_epochs`` times the
steps of epoch 0 (cosine then ends within a few steps of the true end, where it is flat).

Background loading (``training.prefetch``). :class:`Prefetcher` runs a batch iterator in a
thread, ``depth`` batches ahead of the training step, and on CUDA copies each batch to pinned
(page-locked) memory so that the host-to-device copy is asynchronous (``non_blocking=True``).
The order of the batches is unchanged, so results are identical with and without it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from synthmath.tasks.base import ConfigError

POOL_BATCHES = 64  # a pool holds about this many batches' worth of examples
_PLAN_TAG = 7_919  # rng key of the batch-order shuffle (distinct from the permutation keys)


def batch_cost(src_len: np.ndarray, tgt_len: np.ndarray | None) -> int:
    """Padded tokens of a batch with these lengths (``tgt_len`` None: encoder-only)."""
    n = len(src_len)
    cost = n * int(src_len.max())
    if tgt_len is not None:
        cost += n * int(tgt_len.max())
    return cost


def check_budget(
    src_len: np.ndarray, tgt_len: np.ndarray | None, budget: int, multiple: int = 1
) -> None:
    """Raise :class:`ConfigError` when the longest example, ``multiple`` times, exceeds it."""
    longest = int(src_len.max()) + (int(tgt_len.max()) if tgt_len is not None else 0)
    if longest * multiple > budget:
        per = f" x {multiple} devices" if multiple > 1 else ""
        raise ConfigError(
            f"training.batch_tokens: {budget} is smaller than the longest training example "
            f"({longest} tokens{per}); raise it to at least {longest * multiple}"
        )


def plan_pool(
    idx: np.ndarray,
    src_len: np.ndarray,
    tgt_len: np.ndarray | None,
    budget: int,
    multiple: int = 1,
) -> list[np.ndarray]:
    """Cut the examples ``idx`` (one pool) into batches of at most ``budget`` padded tokens.

    Examples are sorted by (source length, target length) and taken greedily; a batch's size is
    a multiple of ``multiple``. Fewer than ``multiple`` examples left at the end are dropped.
    """
    s = src_len[idx]
    t = tgt_len[idx] if tgt_len is not None else np.zeros_like(s)
    order = np.lexsort((t, s))
    idx, s, t = idx[order], s[order], t[order]
    batches: list[np.ndarray] = []
    start, n_items = 0, len(idx)
    while n_items - start >= multiple:
        max_s = max_t = 0
        end = start  # batch = idx[start:end]
        while end < n_items:
            ms, mt = max(max_s, int(s[end])), max(max_t, int(t[end]))
            if (end + 1 - start) * (ms + mt) > budget:
                break
            max_s, max_t, end = ms, mt, end + 1
        size = (end - start) // multiple * multiple
        if size == 0:
            raise ConfigError(
                f"training.batch_tokens: {budget} cannot hold {multiple} examples of "
                f"{int(s[start]) + int(t[start])} tokens"
            )
        batches.append(idx[start : start + size])
        start += size
    return batches


def plan_epoch(
    order: np.ndarray,
    src_len: np.ndarray,
    tgt_len: np.ndarray | None,
    budget: int,
    seed: int,
    epoch: int,
    multiple: int = 1,
    pool: int | None = None,
) -> list[np.ndarray]:
    """The batches (index arrays) of one epoch whose example stream is ``order``."""
    if pool is None:
        per_example = float(np.mean(src_len[order])) + (
            float(np.mean(tgt_len[order])) if tgt_len is not None else 0.0
        )
        pool = max(multiple, int(POOL_BATCHES * budget / max(per_example, 1.0)))
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        batches.extend(plan_pool(order[start : start + pool], src_len, tgt_len, budget, multiple))
    shuffle = np.random.default_rng([seed, epoch, _PLAN_TAG]).permutation(len(batches))
    return [batches[i] for i in shuffle]


def pin(item: Any) -> Any:
    """``item`` with every CPU tensor in it (tuples, lists, dicts) copied to pinned memory."""
    if isinstance(item, torch.Tensor):
        return item.pin_memory()
    if isinstance(item, tuple | list):
        return type(item)(pin(x) for x in item)
    if isinstance(item, dict):
        return {k: pin(v) for k, v in item.items()}
    return item


_DONE = object()


class Prefetcher:
    """Iterate over ``source`` in a background thread, up to ``depth`` items ahead.

    ``pin_memory=True`` pins every tensor of every item (use it when the consumer copies them to
    a CUDA device with ``non_blocking=True``). Items come out in order; an exception raised by
    the source is raised again by :meth:`__next__`. Call :meth:`close` (or use ``with``) to
    stop the thread early; it also closes the source when it is a generator.
    """

    def __init__(self, source: Iterable[Any], depth: int = 2, pin_memory: bool = False):
        if depth < 1:
            raise ValueError(f"prefetch depth must be >= 1 (got {depth})")
        self._source = iter(source)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._pin = pin_memory
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._work, name="synthmath-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        """Queue ``item`` unless stopped; False when the consumer went away."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._source:
                if self._stop.is_set() or not self._put(pin(item) if self._pin else item):
                    return
            self._put(_DONE)
        except BaseException as err:  # handed to the consumer
            self._put(err)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._finished = True
        self._thread.join()
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
