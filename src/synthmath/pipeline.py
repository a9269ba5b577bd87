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
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from synthmath.config import RunSpec
from synthmath.data import EncodedSet, TrainBatches, concat_raw, draw_dataset, load_dataset
from synthmath.tasks.base import RawBatch, Task, make_task

log = logging.getLogger("synthmath.pipeline")


def write_json(path: str | os.PathLike, obj) -> None:
    """Atomic JSON write (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)


def _json_default(obj):
    if isinstance(obj, np.integer | np.floating | np.bool_):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_model(run: RunSpec, task: Task):
    from synthmath.model import ModelConfig, Transformer

    extra = {}
    if hasattr(task, "digit_token_ids"):  # abacus positions count digits inside numbers
        src_ids, tgt_ids = task.digit_token_ids()
        extra = {"src_digit_ids": list(src_ids), "tgt_digit_ids": list(tgt_ids)}
    cfg = ModelConfig(
        src_vocab_size=len(task.src_vocab()),
        tgt_vocab_size=len(task.tgt_vocab()),
        **run.model,
        **extra,
    )
    cfg.validate()
    return Transformer(cfg)


def save_model(path: Path, model, task: Task, run: RunSpec, extra: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    state = {
        "model_config": asdict(model.cfg),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "task": task.name,
        "params": task.params,
        "run": run.to_json(),
        **(extra or {}),
    }
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_trained(run_dir: str | os.PathLike, device: str = "cpu"):
    """(model, task, run spec) of a trained run directory (its ``model.pt``)."""
    from synthmath.model import ModelConfig, Transformer

    path = Path(run_dir) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model (train the run first)")
    state = torch.load(path, map_location=device, weights_only=False)
    model = Transformer(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["state_dict"])
    model.to(device).eval()
    task = make_task(state["task"], state["params"])
    return model, task, RunSpec.from_json(state["run"])


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
    from synthmath.jobs import tune_cpu_allocator

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
    (:mod:`synthmath.distributed`); rank 0 writes the files and returns the record.
    """
    from synthmath import distributed
    from synthmath.tracking import make_callback
    from synthmath.training import TrainConfig, Trainer, TrainingInterrupted

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
        from synthmath.evaluation import evaluate, teacher_forced_loss

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
        from synthmath.tracking import Tracker

        tracker = Tracker(run.tracking_uri)
        tracker.end_run(record["mlflow_run_id"])
    write_json(run_dir / "train.json", record)
    return record


def _end_mlflow_run(run: RunSpec, status: str) -> None:
    record_path = run.dir / "mlflow_run.json"
    if not record_path.exists():
        return
    from synthmath.tracking import Tracker

    try:
        Tracker(run.tracking_uri).end_run(json.loads(record_path.read_text())["run_id"], status)
    except Exception:  # never hide the error that stopped training
        log.warning("could not mark MLflow run of %s as %s", run.dir, status, exc_info=True)


def _plain(obj):
    return json.loads(json.dumps(obj, default=_json_default))


def evaluate_run(
    run_dir: str | os.PathLike,
    test_name: str,
    test_paths: list[str] | None = None,
    out_path: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    threads: int = 0,
) -> dict:
    """Evaluate a trained run on one of its test sets; writes eval/<test>.json and logs MLflow."""
    _set_threads(threads)
    run_dir = Path(run_dir)
    spec = RunSpec.from_json(json.loads((run_dir / "config.json").read_text()))
    device = pick_device(spec.training.get("device", "auto"))
    model, task, _ = load_trained(run_dir, device=str(device))
    if test_name not in spec.test_sets:
        raise KeyError(f"{run_dir}: no test set {test_name!r}; it has {', '.join(spec.test_sets)}")
    ds = spec.test_sets[test_name]
    test_task = make_task(spec.task, {**spec.params, **ds.params})
    raw = load_dataset(test_paths)[0] if test_paths else draw_dataset(test_task, ds)
    from synthmath.evaluation import evaluate

    t0 = time.time()
    summary = evaluate(
        model,
        test_task,
        raw,
        batch_size=spec.eval["batch_size"],
        beam_size=spec.eval["beam_size"],
        device=device,
        progress=progress,
    )
    summary.update(
        study=spec.study,
        run_id=spec.run_id,
        test_set=test_name,
        dataset=ds.id,
        grid=spec.grid,
        test_params=ds.params,
        beam_size=spec.eval["beam_size"],
        seconds=round(time.time() - t0, 2),
    )
    out_path = Path(out_path) if out_path else run_dir / "eval" / f"{test_name}.json"
    write_json(out_path, summary)
    _log_eval(spec, run_dir, test_name, summary)
    return summary


def _log_eval(spec: RunSpec, run_dir: Path, test_name: str, summary: dict) -> None:
    record = run_dir / "mlflow_run.json"
    if not spec.tracking_uri or not record.exists():
        return
    from synthmath.tracking import Tracker

    tracker = Tracker(spec.tracking_uri)
    mlflow_id = json.loads(record.read_text())["run_id"]
    rows = [
        (f"test/{test_name}/{k}", v, 0) for k, v in summary["metrics"].items() if np.isfinite(v)
    ]
    for group, per in summary["by_group"].items():
        for label, values in per.items():
            for k, v in values.items():
                if k != "n" and np.isfinite(v):
                    rows.append((f"test/{test_name}/{group}_{label}/{k}", v, 0))
    # an evaluation rerun (e.g. after its JSON was deleted) adds only the values that changed
    latest = tracker.latest_metrics(mlflow_id)
    rows = [row for row in rows if latest.get(row[0]) != float(row[1])]
    if rows:
        tracker.log_metrics(mlflow_id, rows)
