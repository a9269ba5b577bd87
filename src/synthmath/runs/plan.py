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
import functools
import hashlib
import itertools
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from synthmath.core.errors import ConfigError
from synthmath.core.settings import build
from synthmath.nn.config import ModelSettings
from synthmath.runs.checks import check_lengths, check_metric
from synthmath.runs.settings import (
    DEFAULT_EVAL_PRECISION,
    DEFAULT_RESULTS,
    SECTIONS,
    BaselineSettings,
    CasSettings,
    ConvitSettings,
    DataSettings,
    EvalSettings,
    TheorySettings,
)
from synthmath.tasks.registry import get_task_class, task_names
from synthmath.train.config import TrainConfig

#: the settings class of each section of a run
SECTION_CLASSES = {
    "model": ModelSettings,
    "training": TrainConfig,
    "data": DataSettings,
    "eval": EvalSettings,
}


def default_tracking_uri(results: str | os.PathLike = DEFAULT_RESULTS) -> str:
    """The embedded MLflow database of a results root."""
    return f"sqlite:///{Path(results).as_posix()}/mlflow.db"


DEFAULT_TRACKING_URI = default_tracking_uri()


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
    results: str = DEFAULT_RESULTS  # the results root

    @property
    def dir(self) -> Path:
        return Path(self.results) / "data" / self.id

    def shard_path(self, i: int) -> Path:
        return self.dir / f"shard-{i:04d}.npz"

    def shard_paths(self) -> list[Path]:
        return [self.shard_path(i) for i in range(self.shards)]

    def shard_size(self, i: int) -> int:
        base, extra = divmod(self.size, self.shards)
        return base + (1 if i < extra else 0)


def changed(values: dict, default: dict) -> dict:
    """The entries of ``values`` that differ from ``default`` (what run and dataset ids hash:
    a new setting with a default leaves every existing id as it was)."""
    missing = object()
    return {k: v for k, v in values.items() if default.get(k, missing) != v}


def task_param_changes(task: str, params: dict) -> dict:
    """Task parameters that differ from the task's declared defaults."""
    declared = get_task_class(task).PARAMS
    return changed(params, {k: p.default for k, p in declared.items()})


def make_dataset(
    task: str,
    params: dict,
    size: int,
    seed: int,
    shards: int,
    role: str,
    results: str = DEFAULT_RESULTS,
) -> DatasetSpec:
    gen = get_task_class(task)(**params).generator_params()
    shaping = [task, task_param_changes(task, gen), size, seed, shards]
    ident = f"{task}-{role}-{stable_hash(shaping, 10)}"
    return DatasetSpec(ident, task, gen, size, seed, min(shards, size), role, str(results))


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
    results: str = DEFAULT_RESULTS  # the results root
    #: per test set, its task parameters that are not data parameters and differ from the
    #: run's (scoring options such as symreg's refine): the test set's DatasetSpec holds only
    #: the data parameters, the evaluation applies these on top
    test_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return Path(self.results) / self.study / self.run_id

    def to_json(self) -> dict:
        out = asdict(self)
        if not out["test_options"]:  # run specs without options read as before the field
            del out["test_options"]
        return out

    #: fields that only evaluation reads: changing them (new test sets, eval settings, MLflow)
    #: must re-run evaluations, never training (see :meth:`same_training`)
    EVALUATION_FIELDS = ("eval", "test_sets", "test_options", "tracking_uri")

    @classmethod
    def same_training(cls, a: dict, b: dict) -> bool:
        """Whether two run-spec JSONs train the same model: equal but for EVALUATION_FIELDS."""
        drop = set(cls.EVALUATION_FIELDS)
        return {k: v for k, v in a.items() if k not in drop} == {
            k: v for k, v in b.items() if k not in drop
        }

    def evaluation_json(self, test: str) -> dict:
        """What evaluating on ``test`` reads besides the trained run: the evaluate job's
        params, so that a change re-runs that evaluation (not the training)."""
        return {
            "eval": self.eval,
            "test_set": asdict(self.test_sets[test]),
            "test_options": self.test_options.get(test, {}),
            "tracking_uri": self.tracking_uri,
        }

    def with_evaluation(self, test: str, evaluation: dict) -> RunSpec:
        """This spec with ``evaluation`` (an :meth:`evaluation_json`) for test set ``test``."""
        options = {k: v for k, v in self.test_options.items() if k != test}
        if evaluation["test_options"]:
            options[test] = evaluation["test_options"]
        return replace(
            self,
            eval=evaluation["eval"],
            test_sets={**self.test_sets, test: DatasetSpec(**evaluation["test_set"])},
            test_options=options,
            tracking_uri=evaluation["tracking_uri"],
        )

    def test_params(self, test: str) -> dict[str, Any]:
        """The task parameters of test set ``test``: the run's, the test set's data
        parameters, its scoring options."""
        return {**self.params, **self.test_sets[test].params, **self.test_options.get(test, {})}

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
    results: str = DEFAULT_RESULTS
    #: further reports of the same evaluations (config ``report:`` as a list), by name
    more_reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return Path(self.results) / self.name

    def report_files(self, name: str | None = None) -> dict[str, Path]:
        """The files of the main report (``name`` None) or of a named further one."""
        tail = f"-{name}" if name else ""
        return {
            "csv": self.dir / f"table{tail}.csv",
            "md": self.dir / f"table{tail}.md",
            "png": self.dir / f"figure{tail}.png",
            "all": self.dir / f"results{tail}.csv",
        }


@dataclass
class CasSpec:
    """The CAS baseline (config ``cas:``): SymPy on the test sets of one symbolic study, the
    very datasets its evaluate jobs read; ``results/cas/<study>.json`` and ``.md``."""

    study: str
    test_set: str
    size: int
    timeouts: list[float]
    datasets: dict[str, DatasetSpec]  # problem -> the test set solved
    workers: int = 1
    # problem -> "<study>/<run_id>" of the runs tested on it (the model rows of the report)
    runs: dict[str, list[str]] = field(default_factory=dict)
    results: str = DEFAULT_RESULTS

    @property
    def json_path(self) -> Path:
        return Path(self.results) / "cas" / f"{self.study}.json"

    @property
    def md_path(self) -> Path:
        return Path(self.results) / "cas" / f"{self.study}.md"

    def to_json(self) -> dict:
        return asdict(self)

    def job_json(self) -> dict:
        """What shapes the CAS result (the job's params: no workers, no runs)."""
        return {k: v for k, v in self.to_json().items() if k not in ("workers", "runs")}

    @classmethod
    def from_json(cls, obj: dict) -> CasSpec:
        obj = dict(obj)
        obj["datasets"] = {k: DatasetSpec(**v) for k, v in obj["datasets"].items()}
        return cls(**obj)


@dataclass
class BaselineSpec:
    """A classic baseline of a study (config ``baselines:``): one method answers the study's
    test sets (the very datasets its evaluate jobs read), scored by the task with the test
    set's parameters; ``results/baselines/<study>/<method>/<test>.json``, an evaluation
    summary like a run's."""

    study: str
    method: str
    task: str
    test_sets: dict[str, DatasetSpec]
    test_params: dict[str, dict[str, Any]]  # the full task parameters of each test set
    size: int | None = None
    max_time: int = 10
    seed: int = 0
    select: bool = True
    beam_sizes: list[int] = field(default_factory=list)  # the runs' eval.beam_sizes
    results: str = DEFAULT_RESULTS

    @property
    def dir(self) -> Path:
        return Path(self.results) / "baselines" / self.study / self.method

    def eval_path(self, test: str) -> Path:
        return self.dir / f"{test}.json"

    def job_json(self, test: str) -> dict:
        """What shapes one test set's result (the job's params)."""
        return {
            "study": self.study, "method": self.method, "task": self.task, "test_set": test,
            "dataset": asdict(self.test_sets[test]), "params": self.test_params[test],
            "size": self.size, "max_time": self.max_time, "seed": self.seed,
            "select": self.select, "beam_sizes": self.beam_sizes,
        }  # fmt: skip


@dataclass
class Plan:
    studies: dict[str, StudySpec] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    runs: dict[str, RunSpec] = field(default_factory=dict)  # key "<study>/<run_id>"
    tracking_uri: str = DEFAULT_TRACKING_URI
    tracking_enabled: bool = True
    system_metrics: bool = False  # tracking.system_metrics: not part of a run's spec
    results: str = DEFAULT_RESULTS  # every output lives under this folder
    cas: CasSpec | None = None  # the CAS baseline, when configured
    baselines: dict[str, BaselineSpec] = field(default_factory=dict)  # "<study>/<method>"
    theory: dict | None = None  # the theory figures' settings (all keys), when configured

    @property
    def results_dir(self) -> Path:
        return Path(self.results)


# ---- expansion ---------------------------------------------------------------------------
def _defaults(section: str) -> dict:
    """The default settings of a section, as JSON values (a fresh copy: callers may edit it)."""
    return copy.deepcopy(_default_values(SECTION_CLASSES[section]))


@functools.cache
def _default_values(cls: type) -> dict:
    return _json(cls, cls())


def _json(cls: type, obj: Any) -> dict:
    """A settings object as plain JSON values (tuples become lists)."""
    return TypeAdapter(cls).dump_python(obj, mode="json")


def resolve_tracking_uri(config: dict) -> str:
    uri = (config.get("tracking") or {}).get("uri")
    results = config.get("results") or DEFAULT_RESULTS
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(results)


def build_plan(config: dict) -> Plan:
    """Expand validated config into studies, runs and the datasets they share."""
    plan = Plan(
        tracking_uri=resolve_tracking_uri(config),
        tracking_enabled=(config.get("tracking") or {}).get("enabled", True),
        system_metrics=bool((config.get("tracking") or {}).get("system_metrics", False)),
        results=str(config.get("results") or DEFAULT_RESULTS),
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
    if config.get("cas") is not None:
        plan.cas = _expand_cas(config["cas"], plan)
    for name, given in (config.get("baselines") or {}).items():
        for spec in _expand_baselines(name, given, plan):
            plan.baselines[f"{name}/{spec.method}"] = spec
    if config.get("theory") is not None:
        given = config["theory"]
        if isinstance(given, dict) and isinstance(given.get("convit"), dict):
            convit = build(ConvitSettings, given["convit"], "theory.convit")
            given = {**given, "convit": convit}
        plan.theory = _json(TheorySettings, build(TheorySettings, given, "theory"))
    return plan


def _expand_cas(cas: dict, plan: Plan) -> CasSpec:
    """``cas:`` -> the test datasets of the chosen study, one per problem: the datasets of the
    runs' ``cas.test_set`` whose ``problem`` is one problem of ``cas.problems``."""
    settings = _json(CasSettings, build(CasSettings, cas, "cas"))
    name, test = settings["study"], settings["test_set"]
    symbolic = [s for s, spec in plan.studies.items() if spec.task == "symbolic"]
    study = plan.studies.get(name)
    if study is None or study.task != "symbolic":
        what = "unknown or disabled study" if study is None else f"a {study.task} study"
        raise ConfigError(
            f"cas.study: {name!r} is {what}; allowed (symbolic studies): "
            f"{', '.join(symbolic) or '(none)'}"
        )
    if test not in study.test_sets:
        raise ConfigError(
            f"cas.test_set: study {name!r} has no test set {test!r}; "
            f"allowed: {', '.join(study.test_sets)}"
        )
    datasets: dict[str, DatasetSpec] = {}
    runs: dict[str, list[str]] = {}
    for run in study.runs:
        ds = run.test_sets[test]
        problem = ds.params.get("problem")
        if problem not in settings["problems"]:  # mixed test sets ("a,b" or a list) too
            continue
        if datasets.setdefault(problem, ds).id != ds.id:
            raise ConfigError(
                f"cas.study: the runs of {name!r} have different {test!r} test sets of "
                f"{problem} (their test parameters differ); the CAS solves one per problem"
            )
        runs.setdefault(problem, []).append(f"{name}/{run.run_id}")
    if not datasets:
        raise ConfigError(
            f"cas.problems: no {test!r} test set of study {name!r} is one of "
            f"{', '.join(settings['problems'])}"
        )
    order = [p for p in settings["problems"] if p in datasets]
    return CasSpec(
        study=name,
        test_set=test,
        size=settings["size"],
        timeouts=sorted(settings["timeouts"]),
        workers=settings["workers"],
        datasets={p: datasets[p] for p in order},
        runs={p: runs[p] for p in order},
        results=plan.results,
    )


def _expand_baselines(name: str, given: dict, plan: Plan) -> list[BaselineSpec]:
    """``baselines.<study>`` -> one spec per method over the chosen test sets of the study,
    the datasets its runs are tested on (the runs must share them)."""
    from synthmath.tasks.regression.baseline_methods import check_method

    where = f"baselines.{name}"
    settings = _json(BaselineSettings, build(BaselineSettings, given or {}, where))
    study = plan.studies.get(name)
    if study is None:
        raise ConfigError(
            f"{where}: unknown or disabled study {name!r}; allowed: "
            f"{', '.join(plan.studies) or '(none)'}"
        )
    for i, method in enumerate(settings["methods"]):
        check_method(method, study.task, f"{where}.methods[{i}]")
    chosen = study.test_sets if settings["test_sets"] == "all" else settings["test_sets"]
    for test in chosen:
        if test not in study.test_sets:
            raise ConfigError(
                f"{where}.test_sets: study {name!r} has no test set {test!r}; "
                f"allowed: all, {', '.join(study.test_sets)}"
            )
    datasets: dict[str, DatasetSpec] = {}
    params: dict[str, dict] = {}
    for run in study.runs:
        for test in chosen:
            full = run.test_params(test)
            ds = run.test_sets[test]
            if datasets.setdefault(test, ds).id != ds.id or params.setdefault(test, full) != full:
                raise ConfigError(
                    f"{where}.test_sets: the runs of {name!r} have different {test!r} test "
                    "sets (their parameters differ); a baseline answers one per test set"
                )
    beams = (study.runs[0].eval.get("beam_sizes") or []) if study.runs else []
    return [
        BaselineSpec(
            study=name,
            method=method,
            task=study.task,
            test_sets=datasets,
            test_params=params,
            size=settings["size"],
            max_time=settings["max_time"],
            seed=settings["seed"],
            select=settings["select"],
            beam_sizes=list(beams),
            results=plan.results,
        )  # fmt: skip
        for method in settings["methods"]
    ]


def _expand_study(name: str, study: dict, defaults: dict, plan: Plan) -> StudySpec:
    where = f"studies.{name}"
    if not study.get("task"):
        raise ConfigError(f"{where}.task: empty; allowed: {', '.join(task_names())}")
    task_cls = get_task_class(study["task"])
    base_params = dict(study.get("params") or {})
    task_cls.validate_params(base_params, f"{where}.params")
    sections = {
        s: {**_defaults(s), **(defaults.get(s) or {}), **(study.get(s) or {})} for s in SECTIONS
    }
    grid = study.get("grid") or {}
    test_sets = study.get("test_sets") or {"id": {}}
    variants = study.get("variants") or {}
    keys = list(grid) + (["variant"] if variants else [])
    _check_grid(where, grid, study.get("overrides") or [], keys)
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
                allowed = _defaults(section)
                if sub not in allowed:
                    raise ConfigError(
                        f"{where}: {key}: unknown key; allowed: {', '.join(sorted(allowed))}"
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
        for s, cls in SECTION_CLASSES.items():  # types, ranges and cross-field checks
            secs[s] = _json(cls, build(cls, secs[s], f"{where}.{s}"))
        if secs["eval"]["precision"] == DEFAULT_EVAL_PRECISION:
            del secs["eval"]["precision"]  # spec files and train jobs' params as before it
        if secs["model"]["attention"] == "gpsa" and task_cls(**full).input_grid() is None:
            raise ConfigError(
                f"{where}.model.attention: gpsa needs inputs on a 2-D grid; task "
                f"{study['task']!r} with these parameters has none (Task.input_grid; linalg: "
                "one fixed square size, FP15 inputs)"
            )
        # the run id hashes what differs from the defaults: new settings keep old ids
        model_default = {**_defaults("model"), "arch": task_cls.model_kind}
        shaping = [
            study["task"],
            task_param_changes(study["task"], full),
            changed(secs["model"], model_default),
            changed(secs["training"], _defaults("training")),
            changed(secs["data"], _defaults("data")),
            # the starting run as <study>/<run id>: the results root is not part of a run
            Path(init_dir).relative_to(plan.results).as_posix() if init_dir else None,
        ]
        run_hash = stable_hash(shaping, 6)
        slug = "_".join(f"{k.split('.')[-1]}-{_slug(v)}" for k, v in point.items()) or "run"
        run_id = f"{slug}-{run_hash}"
        data = secs["data"]
        if data["online"] and secs["training"].get("batch_tokens"):
            raise ConfigError(
                f"{where}.training.batch_tokens: batching by token budget needs a stored "
                "training set (data.online: false)"
            )
        if data["online"] and data["dedupe"]:
            raise ConfigError(
                f"{where}.data.dedupe: deduplication needs a stored training set "
                "(data.online: false)"
            )
        root = plan.results
        train_data = None
        if not data["online"]:
            train_data = make_dataset(
                study["task"], full, data["train_size"], data["seed"], data["shards"], "train", root
            )
        valid_data = make_dataset(
            study["task"], full, data["valid_size"], data["seed"] + 1, 1, "valid", root
        )
        prime_data = _prime_dataset(study["task"], full, data, where, root)
        tests = {}
        test_params = {}
        test_options: dict[str, dict] = {}
        for test_name, overrides in test_sets.items():
            tparams = {**full, **(overrides or {})}
            test_params[test_name] = task_cls.validate_params(
                tparams, f"{where}.test_sets.{test_name}"
            )
            ev = secs["eval"]
            tests[test_name] = make_dataset(
                study["task"], tparams, ev["size"], ev["seed"], 1, "test", root
            )
            options = {
                k: v
                for k, v in test_params[test_name].items()
                if not task_cls.PARAMS[k].data and v != full[k]
            }
            if options:
                test_options[test_name] = options
        check_lengths(where, study["task"], full, test_params, secs["model"], secs["training"])
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
            results=root,
            test_options=test_options,
        )
        runs.append(run)
        plan.runs[f"{name}/{run_id}"] = run
        for ds in [train_data, prime_data, valid_data, *tests.values()]:
            if ds is not None:
                plan.datasets[ds.id] = ds
    first = task_cls(**(runs[0].params if runs else base_params))
    given = study.get("report") or {}
    reports = [
        _report(f"{where}.report" + (f"[{i}]" if isinstance(given, list) else ""), one or {},
                keys, task_cls, first, list(test_sets))
        for i, one in enumerate(given if isinstance(given, list) else [given])
    ]  # fmt: skip
    extra: dict[str, dict] = {}
    for i, report in enumerate(reports[1:], start=1):
        if not report.get("name"):
            raise ConfigError(f"{where}.report[{i}].name: missing (every report after the first)")
        if report["name"] in extra:
            raise ConfigError(f"{where}.report[{i}].name: {report['name']!r} is used twice")
        extra[report["name"]] = report
    return StudySpec(
        name=name,
        task=study["task"],
        description=study.get("description", ""),
        grid_keys=keys,
        runs=runs,
        report=reports[0],
        test_sets=list(test_sets),
        results=plan.results,
        more_reports=extra,
    )


def _report(
    where: str, given: dict, keys: list[str], task_cls: type, task, test_sets: list[str]
) -> dict:
    """One report of a study with its defaults filled in, checked."""
    report = {
        "kind": "bars",
        "cols": "test_set",
        "metric": task.main_metric(),  # the task's own, e.g. acc_tol5 or acc
        **given,
    }
    if "rows" not in report:
        report["rows"] = keys[0] if keys else "test_set"
    _check_report(where, report, keys, task_cls, test_sets)
    check_metric(f"{where}.metric", task, report["metric"])
    for i, extra in enumerate(report.get("more_metrics") or ()):
        check_metric(f"{where}.more_metrics[{i}]", task, extra)
    return report


def _check_report(
    where: str, report: dict, keys: list[str], task_cls: type, test_sets: list[str]
) -> None:
    """Report axes must be grid keys, ``test_set``, ``method`` or one of the task's
    breakdowns; kind robustness: task parameters."""
    if report["kind"] == "robustness":
        report.setdefault("panels", "benchmark")
        report["panels"] = report["panels"] or "benchmark"
        for axis in ("rows", "cols", "panels"):
            if report[axis] not in task_cls.PARAMS:
                raise ConfigError(
                    f"{where}.{axis}: kind robustness needs a parameter of task "
                    f"{task_cls.name!r}, got {report[axis]!r}; allowed: {', '.join(task_cls.PARAMS)}"
                )
        if len({report["rows"], report["cols"], report["panels"]}) < 3:
            raise ConfigError(f"{where}: kind robustness needs different rows, cols, panels")
        return
    axes = [*keys, "test_set", "method", *task_cls.group_names]
    for axis in ("rows", "cols"):
        if report[axis] not in axes:
            raise ConfigError(
                f"{where}.{axis}: unknown value {report[axis]!r}; allowed: {', '.join(axes)}"
            )
    if report.get("seeds") is not None:
        if report["seeds"] not in keys:
            raise ConfigError(
                f"{where}.seeds: {report['seeds']!r} is not a grid key; "
                f"allowed: {', '.join(keys) or '(no grid keys)'}"
            )
        if report["seeds"] in (report["rows"], report["cols"]):
            raise ConfigError(f"{where}.seeds: {report['seeds']!r} is also a table axis")
    if report.get("test_set") is not None and report["test_set"] not in test_sets:
        raise ConfigError(
            f"{where}.test_set: unknown test set {report['test_set']!r}; "
            f"allowed: {', '.join(test_sets)}"
        )
    if report["kind"] == "curves" and report["rows"] not in keys:
        raise ConfigError(
            f"{where}.rows: kind curves draws one line per value of a grid key; "
            f"{report['rows']!r} is not one (allowed: {', '.join(keys) or '(no grid keys)'})"
        )
    if report["kind"] == "threshold" and report["rows"] == report["cols"]:
        raise ConfigError(f"{where}: kind threshold needs different rows and cols")


def _check_grid(where: str, grid: dict, overrides: list, keys: list[str]) -> None:
    """Each grid value once per axis; ``overrides.when`` names grid keys (or ``variant``)."""
    for key, axis in grid.items():
        seen = []
        for value in axis:
            if value in seen:
                raise ConfigError(
                    f"{where}.grid.{key}: duplicate value {value!r} (each value of an axis once)"
                )
            seen.append(value)
    for i, override in enumerate(overrides):
        for key in override["when"]:
            if key not in keys:
                raise ConfigError(
                    f"{where}.overrides.{i}.when.{key}: unknown key (it would never match); "
                    f"allowed: {', '.join(keys) or '(no grid keys)'}"
                )


def _prime_dataset(
    task: str, params: dict, data: dict, where: str, results: str = DEFAULT_RESULTS
) -> DatasetSpec | None:
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
    return make_dataset(task, full, size, data["seed"] + 2, 1, "prime", results)


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
