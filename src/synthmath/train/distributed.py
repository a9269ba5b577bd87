"""Data-parallel training inside one job (``training.devices: N``), with ``torch.distributed``.

Launch: :func:`launch` runs a function in N processes on this machine. The calling process is
rank 0 and the others are started with ``multiprocessing``'s ``spawn`` (no ``torchrun``
needed, so ``synthmath train`` and the Snakemake rule stay one command and rank 0 returns the
result to its caller). A job already started by ``torchrun`` (``WORLD_SIZE`` set) joins that
group instead (:func:`init_from_env`). Backend: nccl on CUDA (rank r uses ``cuda:r``), gloo on
CPU.

Division of work: every rank draws the same global batch and trains on its contiguous slice
(:func:`shard_batch`), so N processes see exactly the batches one process would; DDP averages
the gradients, and the trainer scales each rank's loss so that the average equals the mean
over all the global batch's tokens. Rank 0 alone evaluates, checkpoints and logs (files and
MLflow); the others get its evaluation metrics by broadcast. Dropout masks differ from a
single-process run (each rank draws its own), the rest matches up to reduction order.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger("synthmath.train.distributed")


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and logs."""
    return rank() == 0


def device_for_rank(name: str) -> str:
    """The device of this rank: ``cuda`` and ``auto`` (with CUDA) become ``cuda:<local rank>``."""
    local = int(os.environ.get("LOCAL_RANK", rank()))
    if is_distributed() and torch.cuda.is_available() and name in ("auto", "cuda"):
        return f"cuda:{local}"
    return name


def shard_batch(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """This rank's contiguous slice of a global batch (the whole batch in a single process)."""
    n_ranks = world_size()
    if n_ranks == 1:
        return batch
    size = batch[0].shape[0]
    if size % n_ranks:
        raise ValueError(f"batch of {size} rows does not split over {n_ranks} processes")
    per_rank = size // n_ranks
    start = rank() * per_rank
    return tuple(t[start : start + per_rank] for t in batch)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum ``values`` over the ranks (as float64; identity in a single process)."""
    if not is_distributed():
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def any_rank(flag: int, device: torch.device) -> int:
    """The largest ``flag`` over the ranks, so that they all act on one rank's signal at the
    same step (a rank that stops alone would leave the others waiting in a collective)."""
    if not is_distributed():
        return flag
    tensor = torch.tensor([flag], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. its evaluation metrics)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def backend(device_type: str) -> str:
    return "nccl" if device_type == "cuda" else "gloo"


def init_from_env(device_type: str) -> bool:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if device_type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend(device_type))
    return True


_GROUP_ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join_group(rank_: int, n_ranks: int, port: int, device_type: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank_),
        LOCAL_RANK=str(rank_),
        WORLD_SIZE=str(n_ranks),
    )
    if device_type == "cuda":
        torch.cuda.set_device(rank_)
    dist.init_process_group(backend(device_type), rank=rank_, world_size=n_ranks)


def _worker(
    rank_: int,
    n_ranks: int,
    port: int,
    device_type: str,
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
) -> None:
    from synthmath.core.errors import TrainingInterrupted

    _join_group(rank_, n_ranks, port, device_type)
    try:
        fn(*args, **kwargs)
    except TrainingInterrupted as err:  # rank 0 reports it; this rank only stops
        sys.exit(err.exit_code)
    finally:
        dist.destroy_process_group()


def launch(
    fn: Callable[..., Any], n_ranks: int, device_type: str, *args: Any, **kwargs: Any
) -> Any:
    """Run ``fn(*args, **kwargs)`` on ``n_ranks`` processes; return rank 0's result.

    This process is rank 0; ranks 1.. are spawned (``fn`` and its arguments must pickle). An
    error on rank 0 stops the others; a worker that fails while rank 0 succeeds is an error.
    """
    if n_ranks < 1:
        raise ValueError(f"n_ranks: expected an integer >= 1 (got {n_ranks!r})")
    if device_type == "cuda" and torch.cuda.device_count() < n_ranks:
        raise ValueError(
            f"training.devices: {n_ranks} requested but {torch.cuda.device_count()} CUDA "
            "device(s) are visible"
        )
    if n_ranks == 1 or dist.is_initialized():
        return fn(*args, **kwargs)
    saved_env = {k: os.environ.get(k) for k in _GROUP_ENV}
    try:
        return _launch(fn, n_ranks, device_type, args, kwargs)
    finally:  # this process stays usable for single-process work afterwards
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _launch(fn: Callable[..., Any], n_ranks: int, device_type: str, args: tuple, kwargs: dict):
    port = _free_port()
    context = mp.get_context("spawn")
    workers = [
        context.Process(
            target=_worker,
            args=(r, n_ranks, port, device_type, fn, args, kwargs),
            name=f"synthmath-rank{r}",
        )
        for r in range(1, n_ranks)
    ]
    for worker in workers:
        worker.start()
    try:
        _join_group(0, n_ranks, port, device_type)
        try:
            result = fn(*args, **kwargs)
        finally:
            dist.destroy_process_group()
    except BaseException:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        raise
    for worker in workers:
        worker.join()
    failed = [w.name for w in workers if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"data-parallel workers failed: {', '.join(failed)}")
    return result
