"""Configuration: validate a config file and expand its studies into runs and datasets.

A *study* names a task, fixed parameters and a grid of varied values; every combination of
the grid is a *run* (one training job). Runs that need the same generated data (same task,
generator parameters, size and seed) share one *dataset*, so data is generated once.

    plan = build_plan(load_config("config.yaml"))
    for run in plan.runs.values(): print(run.study, run.run_id, run.train_data.id)

Run ids are a readable slug of the run's grid values plus a short hash of everything that
shapes its training, so changing a setting gives a new run instead of a stale one.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthmath.core.errors import ConfigError
from synthmath.runs.schema import load_schema
from synthmath.tasks.registry import get_task_class

RESULTS = Path("results")


DEFAULT_TRACKING_URI = "sqlite:///results/mlflow.db"


SECTIONS = ("model", "training", "data", "eval")


# training keys added after the first runs, with their defaults (left out of run hashes)
_LATER_DEFAULTS = {"devices": 1, "compile": "off", "batch_tokens": 0, "prefetch": 2}


_NO = object()


# ---- specs -------------------------------------------------------------------------------
def stable_hash(obj: Any, n: int = 8) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _slug(value: Any) -> str:
    text = str(value).replace(",", "+")
    return re.sub(r"[^A-Za-z0-9.+-]+", "", text)[:24] or "x"


@dataclass
class DatasetSpec:
    """One generated dataset: ``results/data/<id>/shard-<i>.npz``."""

    id: str
    task: str
    params: dict[str, Any]
    size: int
    seed: int
    shards: int
    role: str

    @property
    def dir(self) -> Path:
        return RESULTS / "data" / self.id

    def shard_path(self, i: int) -> Path:
        return self.dir / f"shard-{i:04d}.npz"

    def shard_paths(self) -> list[Path]:
        return [self.shard_path(i) for i in range(self.shards)]

    def shard_size(self, i: int) -> int:
        base, extra = divmod(self.size, self.shards)
        return base + (1 if i < extra else 0)


def make_dataset(
    task: str, params: dict, size: int, seed: int, shards: int, role: str
) -> DatasetSpec:
    gen = get_task_class(task)(**params).generator_params()
    ident = f"{task}-{role}-{stable_hash([task, gen, size, seed, shards], 10)}"
    return DatasetSpec(ident, task, gen, size, seed, min(shards, size), role)


@dataclass
class RunSpec:
    """One training job and its evaluations."""

    study: str
    run_id: str
    task: str
    params: dict[str, Any]
    grid: dict[str, Any]
    model: dict[str, Any]
    training: dict[str, Any]
    data: dict[str, Any]
    eval: dict[str, Any]
    train_data: DatasetSpec | None
    valid_data: DatasetSpec
    test_sets: dict[str, DatasetSpec]
    init_from: str | None = None  # run dir of the starting model
    tracking_uri: str | None = None
    config_hash: str = ""
    prime_data: DatasetSpec | None = None  # priming examples mixed into the training set

    @property
    def dir(self) -> Path:
        return RESULTS / self.study / self.run_id

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> RunSpec:
        obj = dict(obj)
        obj["train_data"] = DatasetSpec(**obj["train_data"]) if obj.get("train_data") else None
        obj["valid_data"] = DatasetSpec(**obj["valid_data"])
        obj["test_sets"] = {k: DatasetSpec(**v) for k, v in obj["test_sets"].items()}
        obj["prime_data"] = DatasetSpec(**obj["prime_data"]) if obj.get("prime_data") else None
        return cls(**obj)


@dataclass
class StudySpec:
    name: str
    task: str
    description: str
    grid_keys: list[str]
    runs: list[RunSpec]
    report: dict[str, Any]
    test_sets: list[str]

    @property
    def dir(self) -> Path:
        return RESULTS / self.name


@dataclass
class Plan:
    studies: dict[str, StudySpec] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    runs: dict[str, RunSpec] = field(default_factory=dict)  # key "<study>/<run_id>"
    tracking_uri: str = DEFAULT_TRACKING_URI
    tracking_enabled: bool = True


# ---- expansion ---------------------------------------------------------------------------
def _defaults(section: str) -> dict:
    props = load_schema()["$defs"][section]["properties"]
    return {k: copy.deepcopy(v["default"]) for k, v in props.items() if "default" in v}


def resolve_tracking_uri(config: dict) -> str:
    uri = (config.get("tracking") or {}).get("uri")
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def build_plan(config: dict) -> Plan:
    """Expand validated config into studies, runs and the datasets they share."""
    plan = Plan(
        tracking_uri=resolve_tracking_uri(config),
        tracking_enabled=(config.get("tracking") or {}).get("enabled", True),
    )
    defaults = config.get("defaults") or {}
    studies = config.get("studies") or {}
    # studies referenced by init_from are expanded first
    order = sorted(studies, key=lambda s: 1 if (studies[s] or {}).get("init_from") else 0)
    for name in order:
        study = studies[name]
        if study.get("enabled", True) is False:
            continue
        plan.studies[name] = _expand_study(name, study, defaults, plan)
    return plan


def _expand_study(name: str, study: dict, defaults: dict, plan: Plan) -> StudySpec:
    where = f"studies.{name}"
    task_cls = get_task_class(study["task"]) if study["task"] else None
    base_params = dict(study.get("params") or {})
    task_cls.validate_params(base_params, f"{where}.params")
    sections = {
        s: {**_defaults(s), **(defaults.get(s) or {}), **(study.get(s) or {})} for s in SECTIONS
    }
    grid = study.get("grid") or {}
    test_sets = study.get("test_sets") or {"id": {}}
    variants = study.get("variants") or {}
    keys = list(grid) + (["variant"] if variants else [])
    axes = [grid[k] for k in grid] + ([list(variants)] if variants else [])
    runs = []
    for values in itertools.product(*axes):
        point = dict(zip(keys, values))
        params = dict(base_params)
        secs = copy.deepcopy(sections)
        settings = {k: v for k, v in point.items() if k != "variant"}
        if variants:
            settings.update(variants[point["variant"]])
        for override in study.get("overrides") or []:
            if all(_matches(point.get(k), v) for k, v in override["when"].items()):
                settings.update(override["set"])
        for key, value in settings.items():
            section, sub = key.split(".", 1)
            if section == "params":
                params[sub] = value
            else:
                props = load_schema()["$defs"][section]["properties"]
                if sub not in props:
                    raise ConfigError(
                        f"{where}: {key}: unknown key; allowed: {', '.join(sorted(props))}"
                    )
                secs[section][sub] = value
        full = task_cls.validate_params(params, f"{where}.grid" if point else f"{where}.params")
        init_dir = _resolve_init(name, study.get("init_from"), point, plan)
        if secs["model"].get("arch") is None:
            secs["model"]["arch"] = task_cls.model_kind
        if task_cls.model_kind == "encoder_only" and secs["model"]["arch"] != "encoder_only":
            raise ConfigError(
                f"{where}.model.arch: task {study['task']!r} predicts aligned outputs and needs "
                f"encoder_only (got {secs['model']['arch']!r})"
            )
        data_shaping = _shaping_data(secs["data"])
        # keys added later are left out at their defaults: run ids from before them stay valid
        training_shaping = {
            k: v for k, v in secs["training"].items() if _LATER_DEFAULTS.get(k, _NO) != v
        }
        # task parameters added later are left out where they change nothing (same run ids)
        hashed = getattr(task_cls, "hash_params", lambda p: p)(full)
        shaping = [study["task"], hashed, secs["model"], training_shaping, data_shaping, init_dir]
        run_hash = stable_hash(shaping, 6)
        slug = "_".join(f"{k.split('.')[-1]}-{_slug(v)}" for k, v in point.items()) or "run"
        run_id = f"{slug}-{run_hash}"
        data = secs["data"]
        if data["online"] and secs["training"].get("batch_tokens"):
            raise ConfigError(
                f"{where}.training.batch_tokens: batching by token budget needs a stored "
                "training set (data.online: false)"
            )
        train_data = None
        if not data["online"]:
            train_data = make_dataset(
                study["task"], full, data["train_size"], data["seed"], data["shards"], "train"
            )
        valid_data = make_dataset(
            study["task"], full, data["valid_size"], data["seed"] + 1, 1, "valid"
        )
        prime_data = _prime_dataset(study["task"], full, data, where)
        tests = {}
        for test_name, overrides in test_sets.items():
            tparams = {**full, **(overrides or {})}
            task_cls.validate_params(tparams, f"{where}.test_sets.{test_name}")
            ev = secs["eval"]
            tests[test_name] = make_dataset(
                study["task"], tparams, ev["size"], ev["seed"], 1, "test"
            )
        run = RunSpec(
            study=name,
            run_id=run_id,
            task=study["task"],
            params=full,
            grid=point,
            model=secs["model"],
            training=secs["training"],
            data=data,
            eval=secs["eval"],
            train_data=train_data,
            valid_data=valid_data,
            test_sets=tests,
            init_from=init_dir,
            tracking_uri=plan.tracking_uri if plan.tracking_enabled else None,
            config_hash=stable_hash(shaping, 12),
            prime_data=prime_data,
        )
        runs.append(run)
        plan.runs[f"{name}/{run_id}"] = run
        for ds in [train_data, prime_data, valid_data, *tests.values()]:
            if ds is not None:
                plan.datasets[ds.id] = ds
    first = task_cls(**(runs[0].params if runs else base_params))
    report = {
        "kind": "bars",
        "cols": "test_set",
        "metric": first.main_metric(),  # the task's own, e.g. acc_tol5 or acc
        **(study.get("report") or {}),
    }
    if "rows" not in report:
        report["rows"] = keys[0] if keys else "test_set"
    _check_report(where, report, keys, task_cls.group_names, list(test_sets))
    return StudySpec(
        name=name,
        task=study["task"],
        description=study.get("description", ""),
        grid_keys=keys,
        runs=runs,
        report=report,
        test_sets=list(test_sets),
    )


def _check_report(
    where: str, report: dict, keys: list[str], groups: tuple[str, ...], test_sets: list[str]
) -> None:
    """Report axes must be grid keys, ``test_set`` or one of the task's breakdowns."""
    axes = [*keys, "test_set", *groups]
    for axis in ("rows", "cols"):
        if report[axis] not in axes:
            raise ConfigError(
                f"{where}.report.{axis}: unknown value {report[axis]!r}; allowed: {', '.join(axes)}"
            )
    if report.get("seeds") is not None:
        if report["seeds"] not in keys:
            raise ConfigError(
                f"{where}.report.seeds: {report['seeds']!r} is not a grid key; "
                f"allowed: {', '.join(keys) or '(no grid keys)'}"
            )
        if report["seeds"] in (report["rows"], report["cols"]):
            raise ConfigError(f"{where}.report.seeds: {report['seeds']!r} is also a table axis")
    if report.get("test_set") is not None and report["test_set"] not in test_sets:
        raise ConfigError(
            f"{where}.report.test_set: unknown test set {report['test_set']!r}; "
            f"allowed: {', '.join(test_sets)}"
        )
    if report["kind"] == "threshold" and report["rows"] == report["cols"]:
        raise ConfigError(f"{where}.report: kind threshold needs different rows and cols")


def _shaping_data(data: dict) -> dict:
    """The data settings that shape a run: priming keys only when priming is on, so that runs
    without priming keep the ids they had before priming existed."""
    if data.get("prime_size", 0) > 0:
        return data
    return {k: v for k, v in data.items() if k not in ("prime_size", "prime_params")}


def _prime_dataset(task: str, params: dict, data: dict, where: str) -> DatasetSpec | None:
    """The priming examples of a run (``data.prime_size`` > 0): the run's task parameters with
    ``data.prime_params`` on top, seed ``data.seed + 2`` (train: seed, valid: seed + 1)."""
    overrides = dict(data.get("prime_params") or {})
    task_cls = get_task_class(task)
    prime_where = f"{where}.data.prime_params"
    full = task_cls.validate_params({**params, **overrides}, prime_where)
    for key in overrides:
        if not task_cls.PARAMS[key].data:
            raise ConfigError(
                f"{prime_where}.{key}: not a generator parameter (priming examples are encoded "
                "like the training set); allowed: "
                + ", ".join(k for k, p in task_cls.PARAMS.items() if p.data)
            )
    size = data.get("prime_size", 0)
    if size == 0:
        return None
    if data["online"]:
        raise ConfigError(
            f"{where}.data.prime_size: priming needs a stored training set (data.online: false)"
        )
    return make_dataset(task, full, size, data["seed"] + 2, 1, "prime")


def _matches(value: Any, wanted: Any) -> bool:
    return value in wanted if isinstance(wanted, list) else value == wanted


def _resolve_init(name: str, init: dict | None, point: dict, plan: Plan) -> str | None:
    if not init:
        return None
    where = f"studies.{name}.init_from"
    source = plan.studies.get(init["study"])
    if source is None:
        raise ConfigError(
            f"{where}.study: unknown or disabled study {init['study']!r}; "
            f"allowed: {', '.join(plan.studies) or '(none)'}"
        )
    match = dict(init.get("match") or {})
    candidates = [r for r in source.runs if all(r.grid.get(k) == v for k, v in match.items())]
    if len(candidates) != 1:
        raise ConfigError(
            f"{where}.match: selects {len(candidates)} runs of study {init['study']!r}, "
            f"need exactly one; its runs: {', '.join(str(r.grid) for r in source.runs)}"
        )
    return str(candidates[0].dir)
