"""Helpers shared by test files (importable: pyproject sets pytest's ``pythonpath`` to tests/)."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

from synthmath.core.vocab import BOS, EOS

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@contextlib.contextmanager
def load_benchmark(name: str) -> Iterator[ModuleType]:
    """``benchmarks/<name>.py`` imported as module ``name`` (registered in sys.modules, as its
    own imports and dataclasses need); removed again afterwards, and torch's thread count,
    which a benchmark sets, put back."""
    threads = torch.get_num_threads()
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)
        torch.set_num_threads(threads)


def reverse_batch(n: int, gen: torch.Generator, vocab: int, max_len: int = 6):
    """Random strings of symbols 3..vocab-1 (1 to ``max_len`` long, padded with PAD) and their
    targets [BOS reversed EOS PAD..]: the string-reversal task of the decoding tests."""
    lengths = torch.randint(1, max_len + 1, (n,), generator=gen)
    real = torch.arange(max_len)[None, :] < lengths[:, None]
    src = torch.randint(3, vocab, (n, max_len), generator=gen) * real
    rev = src.gather(1, (lengths[:, None] - 1 - torch.arange(max_len)).clamp(min=0)) * real
    tgt = torch.zeros(n, max_len + 2, dtype=torch.long)
    tgt[:, 0] = BOS
    tgt[:, 1:-1] = rev
    tgt.scatter_(1, lengths[:, None] + 1, EOS)
    return src, tgt
