# Study expansion and input helpers. The config is validated here, before any job runs.
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from synthmath.runs.artifacts import EVAL_DIR, MODEL_NAME, TRAIN_NAME, RunDir
from synthmath.runs.config import validate_config
from synthmath.runs.plan import RunSpec
from synthmath.core.errors import ConfigError
from synthmath.report.theory import FIGURE_NAMES as THEORY_FIGURES
from synthmath.report.theory import FIGURE_PNGS as THEORY_PNGS
from synthmath.report.theory import REPORT_NAME as THEORY_REPORT

CONFIG_FILES = [str(p) for p in workflow.config_settings.configfiles] or ["config.yaml"]
try:
    # one-line errors naming the key and the allowed values, then the cross-field checks
    PLAN = validate_config(config)
except ConfigError as err:
    raise WorkflowError(
        f"invalid configuration in {', '.join(CONFIG_FILES)}: {err}"
    ) from None
# The same schema as Snakemake reads it (generated from synthmath.runs.settings). Defaults
# are not filled in: a study's sections inherit from `defaults:` key by key, which filling
# every key of a section would undo (the plan above already holds every default).
validate(config, "../schemas/config.schema.yaml", set_default=False)

# every output lives under the config's results root (default: results/)
RESULTS = Path(PLAN.results)

TRACKING_READY = str(RESULTS / ".tracking" / "ready.json")


wildcard_constraints:
    dataset=r"[A-Za-z0-9_.+-]+",
    shard=r"\d{4}",
    study=r"[A-Za-z][A-Za-z0-9_]*",
    run=r"[A-Za-z0-9_.+-]+",
    test=r"[A-Za-z0-9_-]+",
    method=r"[a-z]+",
    name=r"[A-Za-z0-9_-]+",


def all_outputs():
    outs = [str(RESULTS / "README.md")]
    for study in PLAN.studies.values():
        outs += [
            str(study.dir / name) for name in ("table.csv", "table.md", "figure.png")
        ]
        for name in study.more_reports:  # config `report:` as a list
            files = study.report_files(name)
            outs += [str(files[k]) for k in ("csv", "md", "png")]
    if PLAN.cas:
        outs += [str(PLAN.cas.json_path), str(PLAN.cas.md_path)]
    if PLAN.theory is not None:
        outs += [str(RESULTS / "theory" / name) for name in THEORY_FIGURES]
    return outs


def tracking_inputs():
    return [TRACKING_READY] if PLAN.tracking_enabled else []


def get_dataset(wildcards):
    if wildcards.dataset not in PLAN.datasets:
        raise WorkflowError(
            f"unknown dataset {wildcards.dataset!r} (not in the current config)"
        )
    return PLAN.datasets[wildcards.dataset]


def get_generate_params(wildcards):
    ds = get_dataset(wildcards)
    shard = int(wildcards.shard)
    return {
        "dataset": ds.id,
        "task": ds.task,
        "params": ds.params,
        "seed": ds.seed,
        "shard": shard,
        "size": ds.shard_size(shard),
    }


def get_run(wildcards):
    key = f"{wildcards.study}/{wildcards.run}"
    if key not in PLAN.runs:
        raise WorkflowError(f"unknown run {key!r} (not in the current config)")
    return PLAN.runs[key]


def get_train_json(wildcards):
    # The train job's params, so a changed spec retrains. A run already trained keeps the spec
    # it recorded (config.json) while only evaluation fields differ (new test sets, eval
    # settings, tracking: RunSpec.EVALUATION_FIELDS): those re-run its evaluations only.
    # (raw JSON, not RunDir.read_spec: the recorded dict must equal the params Snakemake stored)
    run = get_run(wildcards)
    current = run.to_json()
    recorded = RunDir(run.dir).config
    if recorded.exists():
        try:
            stored = json.loads(recorded.read_text())
        except ValueError:
            return current  # a damaged record: the job rewrites it
        if isinstance(stored, dict) and RunSpec.same_training(stored, current):
            return stored
    return current


def get_eval_json(wildcards):
    # the evaluate job's params: what it reads besides the trained run (a change re-evaluates)
    return get_run(wildcards).evaluation_json(wildcards.test)


def get_train_threads(wildcards):
    # training.num_threads > 0 pins a small model to that many cores, so runs share the machine
    n = get_run(wildcards).training.get("num_threads", 0)
    cores = workflow.cores  # None under cluster executors (profiles set `set-threads`)
    if n > 0:
        return min(n, cores) if cores else n
    return cores or 1


def get_train_gpus(wildcards):
    # one GPU per data-parallel process (training.devices); none for runs pinned to the CPU.
    # The slurm profile turns `gpu` into `sbatch --gpus=N`; local runs do not limit it.
    training = get_run(wildcards).training
    return 0 if training.get("device") == "cpu" else max(1, training.get("devices", 1))


def get_train_inputs(wildcards):
    run = get_run(wildcards)
    inputs = {
        "train": (
            [str(p) for p in run.train_data.shard_paths()] if run.train_data else []
        ),
        "valid": [str(p) for p in run.valid_data.shard_paths()],
        "prime": (
            [str(p) for p in run.prime_data.shard_paths()] if run.prime_data else []
        ),
        "tracking": tracking_inputs(),
    }
    if run.init_from:
        inputs["init"] = str(RunDir(run.init_from).model)
    return inputs


def get_test_inputs(wildcards):
    run = get_run(wildcards)
    if wildcards.test not in run.test_sets:
        raise WorkflowError(
            f"run {wildcards.study}/{wildcards.run} has no test set {wildcards.test!r}"
        )
    inputs = {
        "model": str(RunDir(run.dir).model),
        "test": [str(p) for p in run.test_sets[wildcards.test].shard_paths()],
        "tracking": tracking_inputs(),
    }
    if run.eval.get("drop_train_overlap") and run.train_data:
        inputs["train"] = [str(p) for p in run.train_data.shard_paths()]
    return inputs


def get_study(wildcards):
    return PLAN.studies[wildcards.study]


def get_study_evals(wildcards):
    # the runs' evaluations, then the baselines' (config `baselines:`), if any
    study = get_study(wildcards)
    evals = [
        str(RunDir(run.dir).eval(t)) for run in study.runs for t in study.test_sets
    ]
    for spec in PLAN.baselines.values():
        if spec.study == study.name:
            evals += [str(spec.eval_path(t)) for t in spec.test_sets]
    return evals


def get_baseline(wildcards):
    key = f"{wildcards.study}/{wildcards.method}"
    spec = PLAN.baselines.get(key)
    if spec is None or wildcards.test not in spec.test_sets:
        raise WorkflowError(
            f"no baseline {wildcards.method!r} of test set {wildcards.test!r} of study "
            f"{wildcards.study!r} in the current config (baselines:)"
        )
    return spec


def get_baseline_inputs(wildcards):
    # the test shards the study's evaluate jobs read
    spec = get_baseline(wildcards)
    return [str(p) for p in spec.test_sets[wildcards.test].shard_paths()]


def get_baseline_params(wildcards):
    return get_baseline(wildcards).job_json(wildcards.test)


def get_report_params(wildcards):
    study = get_study(wildcards)
    name = getattr(wildcards, "name", None)
    if name is not None and name not in study.more_reports:
        raise WorkflowError(f"study {study.name!r} has no report named {name!r}")
    return {
        "report": study.more_reports[name] if name else study.report,
        "description": study.description,
        "tracking_uri": PLAN.tracking_uri if PLAN.tracking_enabled else None,
    }


def get_summary_params(wildcards):
    out = {
        name: {
            "description": s.description,
            "paper": s.report.get("paper", ""),
            "task": s.task,
        }
        for name, s in PLAN.studies.items()
    }
    for name, s in PLAN.studies.items():
        if s.more_reports:  # further reports: (name, paper), shown after the main table
            out[name]["more"] = [
                (n, r.get("paper") or "") for n, r in s.more_reports.items()
            ]
    return out


def get_summary_inputs(wildcards):
    return {
        "tables": [str(s.dir / "table.md") for s in PLAN.studies.values()],
        "more_tables": [
            str(s.report_files(n)["md"])
            for s in PLAN.studies.values()
            for n in s.more_reports
        ],
        "cas": [str(PLAN.cas.md_path)] if PLAN.cas else [],
        # the ConViT / T-CNN report, then the theory figures (linked with their captions)
        "theory_report": (
            [str(RESULTS / "theory" / THEORY_REPORT)] if PLAN.theory is not None else []
        ),
        "theory": (
            [str(RESULTS / "theory" / name) for name in THEORY_PNGS]
            if PLAN.theory is not None
            else []
        ),
    }


def get_cas(wildcards):
    if PLAN.cas is None or wildcards.study != PLAN.cas.study:
        raise WorkflowError(
            f"no CAS baseline of study {wildcards.study!r} in the current config (cas.study)"
        )
    return PLAN.cas


def get_cas_inputs(wildcards):
    # the test shards the evaluate jobs read, one named list per problem
    cas = get_cas(wildcards)
    return {p: [str(x) for x in ds.shard_paths()] for p, ds in cas.datasets.items()}


def get_cas_params(wildcards):
    return get_cas(wildcards).job_json()


def get_cas_threads(wildcards):
    cores = workflow.cores  # None under cluster executors
    n = PLAN.cas.workers if PLAN.cas else 1
    return min(n, cores) if cores else n


def get_cas_evals(wildcards):
    cas = get_cas(wildcards)
    return [
        str(RunDir(PLAN.runs[key].dir).eval(cas.test_set))
        for keys in cas.runs.values()
        for key in keys
    ]
