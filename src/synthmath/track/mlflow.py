"""MLflow logging: one experiment per study, one run per training job.

The training loop knows nothing about MLflow; :class:`MlflowCallback` plugs into it. The run
id is kept in ``<run_dir>/mlflow_run.json`` so that a killed and restarted job (or a later
evaluation job) logs to the same MLflow run instead of opening a second, half one.

Each run also records its datasets as MLflow dataset inputs (:meth:`Tracker.log_datasets`)
and its final weights as artifacts under ``model/`` (:meth:`Tracker.log_model`): the same
safetensors file as the run directory's, which :func:`download_model` fetches back.

SQLite is the default backend: the workflow creates the database in a first job
(:func:`init_tracking`) because several jobs creating a missing database at once crash. Calls
retry for a while when SQLite answers "database is locked".
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from synthmath.core.errors import ConfigError
from synthmath.core.files import write_json, write_text
from synthmath.runs.artifacts import MODEL_NAME, RunDir
from synthmath.runs.plan import DatasetSpec, RunSpec, stable_hash

log = logging.getLogger("synthmath.track.mlflow")
# the experiment kind MLflow 3's UI reads: experiments open on their runs table (model
# training), not on the GenAI overview (traces, latency)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


T = TypeVar("T")


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def retrying(fn: Callable[..., T], attempts: int = 30, delay: float = 0.5) -> Callable[..., T]:
    """Retry ``fn`` when SQLite is locked by another job."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for attempt in range(attempts):
            try:
                return fn(*args, **kwargs)
            except Exception as err:  # mlflow wraps the sqlalchemy error
                if "locked" not in str(err).lower() or attempt == attempts - 1:
                    raise
                time.sleep(delay * (1 + attempt % 5))
        raise AssertionError("unreachable")

    return wrapper


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts -> {"a.b.c": "value"} with values as strings (MLflow params)."""
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        text = json.dumps(obj) if isinstance(obj, list | tuple) else str(obj)
        out[prefix[:-1]] = text[:500]
    return out


_METRIC_NAME_BAD = re.compile(r"[^A-Za-z0-9_\-. :/]")


def metric_name(name: str) -> str:
    """``name`` with the characters MLflow does not allow in metric names replaced by ``_``."""
    return _METRIC_NAME_BAD.sub("_", name)


class Tracker:
    """A thin wrapper over ``MlflowClient`` with batching and lock retries."""

    def __init__(self, uri: str):
        _quiet_mlflow()
        from mlflow.tracking import MlflowClient

        if uri.startswith("sqlite:///"):
            Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)

    def experiment(self, name: str, description: str = "") -> str:
        """Id of the experiment ``name``, created if missing (race-safe), marked as a
        model-training experiment (:data:`EXPERIMENT_KIND`)."""
        exp = retrying(self.client.get_experiment_by_name)(name)
        if exp is not None:
            if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # made before the tag
                retrying(self.client.set_experiment_tag)(
                    exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                )
            return exp.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):  # beside the database: <results>/mlartifacts
            db = Path(self.uri[len("sqlite:///") :])
            location = (db.parent / "mlartifacts" / name).resolve().as_uri()
        tags = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        if description:
            tags["mlflow.note.content"] = description
        try:
            return retrying(self.client.create_experiment)(
                name, artifact_location=location, tags=tags
            )
        except Exception:
            exp = retrying(self.client.get_experiment_by_name)(name)
            if exp is None:
                raise
            return exp.experiment_id

    def open_run(self, experiment: str, name: str, run_dir: Path, tags: dict[str, str]) -> str:
        """Start the run of ``run_dir`` or reopen the one recorded there."""
        record = RunDir(run_dir).mlflow_record
        if record.exists():
            saved = json.loads(record.read_text())
            if saved.get("uri") == self.uri:
                try:
                    retrying(self.client.get_run)(saved["run_id"])
                    retrying(self.client.update_run)(saved["run_id"], status="RUNNING")
                    return saved["run_id"]
                except Exception:
                    log.warning("MLflow run %s in %s not found; starting a new one", saved, record)
        exp_id = self.experiment(experiment)
        run = retrying(self.client.create_run)(exp_id, run_name=name, tags=tags)
        write_json(record, {"uri": self.uri, "run_id": run.info.run_id})
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            try:
                retrying(self.client.log_batch)(run_id, params=items[i : i + 100])
            except Exception as err:  # params are immutable: a resumed run logs them again
                if "already" not in str(err).lower() and "changing" not in str(err).lower():
                    raise

    def log_metrics(self, run_id: str, metrics: Iterable[tuple[str, float, int]]) -> None:
        """Log ``(name, value, step)`` rows; characters MLflow refuses in a name (e.g. a
        group label ``<25``) become ``_``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(metric_name(k), float(v), now, int(s)) for k, v, s in metrics]
        for i in range(0, len(items), 1000):
            retrying(self.client.log_batch)(run_id, metrics=items[i : i + 1000])

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of each metric of ``run_id``."""
        return dict(retrying(self.client.get_run)(run_id).data.metrics)

    def last_logged_steps(self, run_id: str) -> dict[str, int]:
        """The highest step logged so far for each metric of ``run_id`` (empty for a new run).

        A resumed job replays the steps between its last checkpoint and the kill; its callback
        skips those already logged, so the metric history has each step once.
        """
        run = retrying(self.client.get_run)(run_id)
        last = {}
        for key in run.data.metrics:
            history = retrying(self.client.get_metric_history)(run_id, key)
            last[key] = max((m.step for m in history), default=-1)
        return last

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        retrying(self.client.log_batch)(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifacts(self, run_id: str, paths: Iterable[Path]) -> None:
        for p in paths:
            retrying(self.client.log_artifact)(run_id, str(p))

    def log_datasets(self, run_id: str, datasets: Iterable[tuple[str, DatasetSpec]]) -> None:
        """Log ``(context, dataset)`` pairs as the run's dataset inputs; pairs the run already
        has (a resumed job, an evaluation rerun) are not logged again."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        run = retrying(self.client.get_run)(run_id)
        have = {
            (d.dataset.name, d.dataset.digest, t.value)
            for d in (run.inputs.dataset_inputs if run.inputs else [])
            for t in d.tags
            if t.key == DATASET_CONTEXT
        }
        new = []
        for context, ds in datasets:
            digest = dataset_digest(ds)
            if (ds.id, digest, context) in have:
                continue
            have.add((ds.id, digest, context))
            profile = json.dumps({"num_rows": ds.size, "shards": ds.shards})
            dataset = Dataset(ds.id, digest, "local", _source(ds), profile=profile)
            new.append(DatasetInput(dataset, tags=[InputTag(DATASET_CONTEXT, context)]))
        if new:
            retrying(self.client.log_inputs)(run_id, datasets=new)

    def log_model(self, run_id: str, model_path: Path) -> None:
        """The final weights (``model.safetensors``: weights plus model settings, task and run
        spec as metadata; no pickle) and a README saying how to load them, under ``model/``."""
        with tempfile.TemporaryDirectory() as tmp:
            readme = Path(tmp) / "README.md"
            write_text(readme, MODEL_README.format(run_id=run_id, name=MODEL_NAME))
            for path in (model_path, readme):
                retrying(self.client.log_artifact)(run_id, str(path), MODEL_ARTIFACTS)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        retrying(self.client.set_terminated)(run_id, status=status)


DATASET_CONTEXT = "mlflow.data.context"
MODEL_ARTIFACTS = "model"
MODEL_README = """# synthmath model of MLflow run {run_id}

`{name}`: the final weights (safetensors) with the model settings, the task and the run spec
as JSON metadata. Loading it runs no code (no pickle).

    synthmath predict runs:/{run_id} -n 5

or in Python, after downloading this folder (`mlflow artifacts download -r {run_id} -a model`):

    from synthmath.runs.artifacts import load_trained
    model, task, spec = load_trained("<downloaded model folder>")
"""


def dataset_digest(ds: DatasetSpec) -> str:
    """A digest of a dataset's generator settings: the same settings make the same data."""
    return stable_hash({"task": ds.task, "params": ds.params, "size": ds.size, "seed": ds.seed})


def _source(ds: DatasetSpec) -> str:
    return json.dumps({"uri": str(ds.dir.resolve())})


def run_datasets(spec: RunSpec, tests: Iterable[str] | None = None) -> list[tuple[str, Any]]:
    """``(context, dataset)`` of a run: ``train``, ``prime`` (priming examples), ``valid`` and
    the named test sets (all of them when ``tests`` is None)."""
    out = [("train", spec.train_data), ("prime", spec.prime_data), ("valid", spec.valid_data)]
    names = spec.test_sets if tests is None else tests
    out += [(name, spec.test_sets[name]) for name in names]
    return [(context, ds) for context, ds in out if ds is not None]


def download_model(uri: str, dst: Path) -> Path:
    """Download the ``model/`` artifacts of ``runs:/<id>`` (tracking URI: $MLFLOW_TRACKING_URI,
    else the default results database) into ``dst``; returns the folder to load."""
    from synthmath.runs.plan import DEFAULT_TRACKING_URI

    run_id = uri[len("runs:/") :].strip("/").split("/")[0]
    if not run_id:
        raise ConfigError(f"{uri}: no run id (expected runs:/<mlflow run id>)")
    tracker = Tracker(os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI)
    try:
        path = retrying(tracker.client.download_artifacts)(run_id, MODEL_ARTIFACTS, str(dst))
    except Exception as err:
        raise FileNotFoundError(f"{uri}: no model artifacts in {tracker.uri} ({err})") from None
    return Path(path)


@contextlib.contextmanager
def system_metrics(uri: str, run_id: str) -> Iterator[None]:
    """Log CPU, memory, disk, network and GPU use as ``system/*`` metrics of ``run_id`` while
    the block runs, with MLflow's own monitor (the one ``mlflow.start_run(...,
    log_system_metrics=True)`` starts), attached to our client-created run. Sampling every
    $MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL seconds (MLflow's default: 10); a resumed job
    continues the steps."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, resume_logging=True, tracking_uri=uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()


def init_tracking(uri: str, experiments: dict[str, str]) -> None:
    """Create the database (and the experiments) once, before any logging job runs."""
    tracker = Tracker(uri)
    for name, description in experiments.items():
        tracker.experiment(name, description)


def run_tags(run_spec, rule: str) -> dict[str, str]:
    """Tags of a run's MLflow run; the ``mlflow.source.*`` ones fill the UI's Source column."""
    commit = git_commit()
    tags = {
        "mlflow.source.type": "JOB",
        "mlflow.source.name": f"synthmath {rule}",
        "study": run_spec.study,
        "task": run_spec.task,
        "run_id": run_spec.run_id,
        "git_commit": commit,
        "config_hash": run_spec.config_hash,
        "snakemake_rule": rule,
        "grid": json.dumps(run_spec.grid, sort_keys=True),
    }
    if commit != "unknown":
        tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
    return tags


def open_run_for(run_spec, rule: str = "train") -> tuple[Tracker, str] | None:
    """(tracker, mlflow run id) of a run spec, or None when tracking is off."""
    if not run_spec.tracking_uri:
        return None
    tracker = Tracker(run_spec.tracking_uri)
    tracker.experiment(run_spec.study)
    mlflow_id = tracker.open_run(
        run_spec.study, run_spec.run_id, run_spec.dir, run_tags(run_spec, rule)
    )
    return tracker, mlflow_id
