"""The workflow's jobs as library functions: train a run, evaluate it, load a trained model.

Snakemake scripts and the CLI both call these, so a run behaves the same inside and outside
the workflow. A run directory holds:

    config.json        the resolved run spec
    checkpoint.pt      the trainer's resumable state (kept across kills)
    best.pt            the best epoch's weights so far
    model.pt           the final model (best weights + model config + task), written last
    train.json         the training summary (history, best epoch, MLflow run id)
    eval/<test>.json   evaluation summaries
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from synthmath.core.files import _json_default, write_json
from synthmath.core.raw import concat_raw
from synthmath.core.task import RawBatch, Task
from synthmath.runs.artifacts import build_model, save_model
from synthmath.runs.datasets import draw_dataset, load_dataset
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
    train_raw = load_dataset(train_paths)[0] if train_paths else draw_dataset(task, run.train_data)
    if run.prime_data is None:
        return train_raw
    if prime_paths:
        prime_raw = load_dataset(prime_paths)[0]
    else:
        prime_task = make_task(run.task, {**run.params, **run.prime_data.params})
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
) -> dict:
    """Train one run (resuming if its checkpoint exists); writes model.pt and train.json.

    Shards not given (``train_paths``, ``valid_paths``, ``prime_paths``) are drawn in memory
    from the run spec. Priming examples (``run.prime_data``) join the training set.
    ``training.devices`` > 1 trains data-parallel in that many processes of this job
    (:mod:`synthmath.train.distributed`); rank 0 writes the files and returns the record.
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
            )
    is_main = distributed.is_main()
    run_dir = run.dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_main:
        write_json(run_dir / "config.json", run.to_json())
    _set_threads(tcfg.num_threads)  # also keeps large freed buffers mapped (CPU speed)
    device = pick_device(distributed.device_for_rank(tcfg.device))
    torch.manual_seed(tcfg.seed)
    task = make_task(run.task, run.params)
    model = build_model(run, task)
    if run.init_from:
        init_path = Path(run.init_from) / "model.pt"
        state = torch.load(init_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["state_dict"])
        log.info("initialised from %s", init_path)
    model.to(device)

    t0 = time.time()
    valid_raw = load_dataset(valid_paths)[0] if valid_paths else draw_dataset(task, run.valid_data)
    valid_set = EncodedSet(task, valid_raw)
    encoded = None
    if not run.data["online"]:
        encoded = EncodedSet(task, load_train_data(run, task, train_paths, prime_paths))
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
        out = {f"valid_{k}": v for k, v in summary["metrics"].items() if np.isfinite(v)}
        out["valid_loss"] = teacher_forced_loss(m, valid_set, run.eval["batch_size"], device)
        return out

    callback = make_callback(run) if is_main else None
    trainer = Trainer(
        model,
        tcfg,
        batches,
        validate,
        run_dir,
        main_metric=main,
        callbacks=[c for c in [callback] if c is not None],
        progress=progress,
    )
    try:
        summary = trainer.fit()
    except BaseException as err:
        # a preempted job (TrainingInterrupted) shows as KILLED until its rerun reopens it
        if callback is not None:
            _end_mlflow_run(run, "KILLED" if isinstance(err, TrainingInterrupted) else "FAILED")
        raise
    if not is_main:
        return summary
    best = run_dir / "best.pt"
    if best.exists():
        state = torch.load(best, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
    save_model(run_dir / "model.pt", model, task, run, {"summary": _plain(summary)})
    record = {"run_id": run.run_id, "study": run.study, **_plain(summary)}
    record_path = run_dir / "mlflow_run.json"
    if record_path.exists():
        record["mlflow_run_id"] = json.loads(record_path.read_text())["run_id"]
        from synthmath.track.mlflow import Tracker

        tracker = Tracker(run.tracking_uri)
        tracker.end_run(record["mlflow_run_id"])
    write_json(run_dir / "train.json", record)
    return record


def _end_mlflow_run(run: RunSpec, status: str) -> None:
    record_path = run.dir / "mlflow_run.json"
    if not record_path.exists():
        return
    from synthmath.track.mlflow import Tracker

    try:
        Tracker(run.tracking_uri).end_run(json.loads(record_path.read_text())["run_id"], status)
    except Exception:  # never hide the error that stopped training
        log.warning("could not mark MLflow run of %s as %s", run.dir, status, exc_info=True)


def _plain(obj):
    return json.loads(json.dumps(obj, default=_json_default))
