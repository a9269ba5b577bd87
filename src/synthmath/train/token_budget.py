"""Batching by token budget (``training.batch_tokens``). Fixed-size batches of variable-length
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
"""

from __future__ import annotations

import numpy as np

from synthmath.core.errors import ConfigError

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
