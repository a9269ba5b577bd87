"""The workflow's jobs as library functions: train a run, evaluate it, load a trained model.

Snakemake scripts and the CLI both call these, so a run behaves the same inside and outside
the workflow. The files of a run directory are :class:`synthmath.runs.artifacts.RunDir`'s.

A finished model records what it was trained on (``trained_on``: the run id, the hash of its
settings and a digest of its training and validation data). A rerun whose data or settings
differ (``snakemake --forcerun train`` after the shards changed) trains from scratch instead
of keeping the stale model; one with the same inputs reuses the finished checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time

import numpy as np
import torch

from synthmath.core.errors import CheckpointError
from synthmath.core.files import _json_default, finite_json, write_json
from synthmath.core.raw import concat_raw, raw_len
from synthmath.core.task import RawBatch, Task
from synthmath.runs.artifacts import RunDir, build_model, read_model, save_model
from synthmath.runs.datasets import data_digest, dedupe, draw_dataset, load_dataset
from synthmath.runs.plan import RunSpec
from synthmath.tasks.registry import make_task
from synthmath.train.batches import EncodedSet, TrainBatches
from synthmath.train.device import pick_device

log = logging.getLogger("synthmath.jobs.train")


def load_train_data(
    run: RunSpec,
    task: Task,
    train_paths: list[str] | None = None,
    prime_paths: list[str] | None = None,
) -> RawBatch:
    """The stored training set of a run, with its priming examples (``run.prime_data``) after
    the others: read from the shard paths, or drawn in memory where none are given."""
    if train_paths:
        train_raw = load_dataset(train_paths, run.train_data, task)[0]
    else:
        train_raw = draw_dataset(task, run.train_data)
    if run.data.get("dedupe"):
        train_raw, dropped = dedupe(task, train_raw)
        log.info("data.dedupe: dropped %d repeated training examples, %d left", dropped,
                 raw_len(train_raw))  # fmt: skip
    if run.prime_data is None:
        return train_raw
    prime_task = make_task(run.task, {**run.params, **run.prime_data.params})
    if prime_paths:
        prime_raw = load_dataset(prime_paths, run.prime_data, prime_task)[0]
    else:
        prime_raw = draw_dataset(prime_task, run.prime_data)
    return concat_raw([train_raw, prime_raw])


def _set_threads(n: int) -> None:
    from synthmath.train.device import tune_cpu_allocator

    tune_cpu_allocator()
    if n > 0:
        torch.set_num_threads(n)


def train_run(
    run: RunSpec,
    train_paths: list[str] | None = None,
    valid_paths: list[str] | None = None,
    *,
    progress: bool = True,
    rule: str = "train",
    threads: int = 0,
    prime_paths: list[str] | None = None,
    system_metrics: bool = False,
) -> dict:
    """Train one run (resuming if its checkpoint exists); writes the final model and
    train.json.

    Shards not given (``train_paths``, ``valid_paths``, ``prime_paths``) are drawn in memory
    from the run spec. Priming examples (``run.prime_data``) join the training set.
    ``training.devices`` > 1 trains data-parallel in that many processes of this job
    (:mod:`synthmath.train.distributed`); rank 0 writes the files and returns the record.
    ``system_metrics`` (``tracking.system_metrics``) logs the machine's CPU, memory and GPU use
    to the MLflow run while training.
    """
    from synthmath.core.errors import TrainingInterrupted
    from synthmath.track.callback import make_callback
    from synthmath.train import distributed
    from synthmath.train.config import TrainConfig
    from synthmath.train.trainer import Trainer

    tcfg = TrainConfig(**{**run.training, "betas": tuple(run.training["betas"])})
    if tcfg.num_threads == 0 and threads:
        tcfg.num_threads = max(1, threads // tcfg.devices)  # the job's cores, shared by ranks
    tcfg.validate()
    device_type = pick_device(tcfg.device).type
    if tcfg.devices > 1 and not distributed.is_distributed():
        if not distributed.init_from_env(device_type):  # else: started by torchrun
            return distributed.launch(
                train_run,
                tcfg.devices,
                device_type,
                run,
                train_paths,
                valid_paths,
                progress=progress,
                rule=rule,
                threads=threads,
                prime_paths=prime_paths,
                system_metrics=system_metrics,
            )
    is_main = distributed.is_main()
    run_dir = run.dir
    files = RunDir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_main:
        write_json(files.config, run.to_json())
    _set_threads(tcfg.num_threads)  # also keeps large freed buffers mapped (CPU speed)
    device = pick_device(distributed.device_for_rank(tcfg.device))
    torch.manual_seed(tcfg.seed)
    task = make_task(run.task, run.params)
    model = build_model(run, task)
    init_digest = _init_from(model, RunDir(run.init_from)) if run.init_from else None
    model.to(device)

    t0 = time.time()
    if valid_paths:
        valid_raw = load_dataset(valid_paths, run.valid_data, task)[0]
    else:
        valid_raw = draw_dataset(task, run.valid_data)
    valid_set = EncodedSet(task, valid_raw)
    encoded = train_raw = None
    if not run.data["online"]:
        train_raw = load_train_data(run, task, train_paths, prime_paths)
        encoded = EncodedSet(task, train_raw)
    trained_on = {
        "run": run.run_id,
        "settings": run.config_hash,
        "data": data_digest([r for r in (train_raw, valid_raw) if r is not None]),
    }
    if init_digest is not None:
        trained_on["init"] = init_digest  # a retrained starting model retrains this run
    steps = max(1, tcfg.epoch_size // tcfg.batch_size)
    batches = TrainBatches(
        task,
        tcfg.batch_size,
        steps,
        run.data["seed"],
        encoded,
        batch_tokens=tcfg.batch_tokens,
        multiple=tcfg.devices,
    )
    log.info(
        "data ready in %.1fs (%s training examples)",
        time.time() - t0,
        len(encoded) if encoded else "online",
    )

    main = f"valid_{task.main_metric()}"

    def validate(m) -> dict[str, float]:
        from synthmath.eval.summary import evaluate, teacher_forced_loss

        summary = evaluate(m, task, valid_raw, batch_size=run.eval["batch_size"], device=device)
        out = {
            f"valid_{k}": v
            for k, v in summary["metrics"].items()
            if v is not None and np.isfinite(v)
        }
        out["valid_loss"] = teacher_forced_loss(m, valid_set, run.eval["batch_size"], device)
        return out

    trainer = Trainer(
        model,
        tcfg,
        batches,
        validate,
        run_dir,
        main_metric=main,
        progress=progress,
        fingerprint=trained_on,
    )
    callback = None
    if is_main:
        if trainer.stale_checkpoint() is not None:
            # training starts again from scratch: in a new MLflow run (the old one stays)
            files.mlflow_record.unlink(missing_ok=True)
        callback = make_callback(run)
        trainer.callbacks = [callback] if callback is not None else []
    monitor = contextlib.nullcontext()
    if callback is not None and system_metrics:
        from synthmath.track.mlflow import system_metrics as monitor_system

        monitor = monitor_system(run.tracking_uri, files.read_mlflow_id())
    try:
        with monitor:
            summary = trainer.fit()
    except BaseException as err:
        # a preempted job (TrainingInterrupted) shows as KILLED until its rerun reopens it
        if callback is not None:
            _end_mlflow_run(run, "KILLED" if isinstance(err, TrainingInterrupted) else "FAILED")
        raise
    if not is_main:
        return summary
    if files.best.exists():
        from synthmath.train.checkpoint import load_state_into, load_weights

        load_state_into(model, load_weights(files.best)[0], files.best)
    extra = {"summary": _plain(summary), "trained_on": trained_on}
    save_model(files.model, model, task, run, extra)
    record = {"run_id": run.run_id, "study": run.study, **_plain(summary)}
    mlflow_id = files.read_mlflow_id()
    if mlflow_id is not None:
        record["mlflow_run_id"] = mlflow_id
        from synthmath.track.mlflow import Tracker

        tracker = Tracker(run.tracking_uri)
        tracker.log_model(mlflow_id, files.model)
        tracker.end_run(mlflow_id)
    write_json(files.train_record, record)
    return record


def _init_from(model, source: RunDir) -> str:
    """Start from the final weights of the run in ``source`` (its run id must match the
    directory's name: a model copied in from elsewhere is an error); returns a digest of
    those weights."""
    start, _, spec, _ = read_model(source.model)
    if spec.run_id != source.path.name:
        raise CheckpointError(
            f"{source.model}: model of run {spec.run_id!r}, not of {source.path.name!r}"
        )
    from synthmath.train.checkpoint import load_state_into

    weights = {  # the raw bytes of every tensor, whatever its dtype
        k: v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        for k, v in start.state_dict().items()
    }
    load_state_into(model, start.state_dict(), source.model)
    log.info("initialised from %s", source.model)
    return data_digest([weights])


def _end_mlflow_run(run: RunSpec, status: str) -> None:
    from synthmath.track.mlflow import Tracker

    try:
        mlflow_id = RunDir(run.dir).read_mlflow_id()
        if mlflow_id is not None:
            Tracker(run.tracking_uri).end_run(mlflow_id, status)
    except Exception:  # never hide the error that stopped training
        log.warning("could not mark MLflow run of %s as %s", run.dir, status, exc_info=True)


def _plain(obj):
    """``obj`` as plain JSON values; non-finite floats (a diverged loss) as ``None``."""
    return finite_json(json.loads(json.dumps(obj, default=_json_default)))
