"""Background loading (``training.prefetch``). :class:`Prefetcher` runs a batch iterator in a
thread, ``depth`` batches ahead of the training step, and on CUDA copies each batch to pinned
(page-locked) memory so that the host-to-device copy is asynchronous (``non_blocking=True``).
The order of the batches is unchanged, so results are identical with and without it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import torch


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
