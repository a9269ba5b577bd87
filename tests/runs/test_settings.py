"""Settings declared once: the generated schema, run ids that survive new settings, the
cross-field checks at config time and the results root."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import Field

from synthmath.core.errors import ConfigError
from synthmath.core.settings import settings_class
from synthmath.core.task import Param
from synthmath.nn.config import ModelSettings
from synthmath.runs import plan as plan_module
from synthmath.runs.config import load_config, load_plan, validate_config
from synthmath.runs.plan import RunSpec, build_plan
from synthmath.runs.settings import DataSettings, schema_yaml
from synthmath.tasks.registry import get_task_class
from synthmath.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CI = yaml.safe_load((ROOT / "configs" / "ci.yaml").read_text())
CONFIGS = [ROOT / "config.yaml", *sorted((ROOT / "configs").rglob("*.yaml"))]


def changed(change: dict) -> dict:
    """configs/ci.yaml with ``{"dotted.path": value}`` changes."""
    config = copy.deepcopy(CI)
    for path, value in change.items():
        node = config
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return config


# ---- the schema ----------------------------------------------------------------------------
def test_committed_schema_is_generated_from_the_settings():
    committed = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    assert not committed.is_symlink()
    assert committed.read_text() == schema_yaml(), (
        "run: python -m synthmath.runs.settings --schema > workflow/schemas/config.schema.yaml"
    )


def test_schema_command_prints_the_schema():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-m", "synthmath.runs.settings", "--schema"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    schema = yaml.safe_load(out)
    model = schema["$defs"]["ModelSettings"]["properties"]
    assert model["positions"]["default"] == "learned" and "rotary" in model["positions"]["enum"]
    assert model["dropout"]["exclusiveMaximum"] == 1 and model["dropout"]["description"]


def test_snakemake_validator_accepts_every_config_and_fills_defaults():
    from snakemake.utils import validate

    schema = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    for path in CONFIGS:
        validate(yaml.safe_load(path.read_text()), schema, set_default=False)
    config = {"studies": {"a": {"task": "linalg"}}}
    validate(config, schema)
    assert config["results"] == "results" and config["studies"]["a"]["enabled"] is True


# ---- run ids hash what differs from the defaults ---------------------------------------------
def all_ids() -> dict[Path, tuple[list, list]]:
    out = {}
    for path in CONFIGS:
        plan = load_plan(path)
        out[path] = (sorted(plan.runs), sorted(plan.datasets))
    return out


def test_new_settings_with_defaults_keep_every_run_and_dataset_id(monkeypatch):
    before = all_ids()

    @settings_class
    class NewModel(ModelSettings):
        new_knob: int = Field(default=7, description="A setting added later.")

    @settings_class
    class NewTraining(TrainConfig):
        new_flag: bool = False

    @settings_class
    class NewData(DataSettings):
        new_size: int = 3

    monkeypatch.setitem(plan_module.SECTION_CLASSES, "model", NewModel)
    monkeypatch.setitem(plan_module.SECTION_CLASSES, "training", NewTraining)
    monkeypatch.setitem(plan_module.SECTION_CLASSES, "data", NewData)
    for name in ("linalg", "metabolic", "arithmetic"):
        params = get_task_class(name).PARAMS
        monkeypatch.setitem(params, "new_param", Param(0, "A parameter added later.", int))
    assert all_ids() == before
    plan = build_plan(changed({"studies.tiny_ops.model.new_knob": 8}))
    runs = {k for k in plan.runs if k.startswith("tiny_ops/")}
    assert runs and runs.isdisjoint(before[ROOT / "configs" / "ci.yaml"][0])
    plan = build_plan(changed({"studies.tiny_ops.params.new_param": 1}))
    assert set(plan.datasets) != set(before[ROOT / "configs" / "ci.yaml"][1])


def test_changing_a_value_changes_the_id_and_the_default_value_does_not():
    base = set(build_plan(copy.deepcopy(CI)).runs)
    assert set(build_plan(changed({"studies.tiny_ops.training.clip_grad": 1.0})).runs) != base
    # spelling out a default is the same run
    assert set(build_plan(changed({"studies.tiny_ops.training.clip_grad": 5.0})).runs) == base
    assert set(build_plan(changed({"studies.tiny_ops.model.arch": "encoder_decoder"})).runs) == base


# ---- cross-field checks at config time --------------------------------------------------------
BAD = [
    ({"studies.tiny_ops.model.n_heads": 3}, "studies.tiny_ops.model.n_heads: must divide d_model"),
    ({"studies.tiny_ops.model.n_enc_layers": 0}, "studies.tiny_ops.model.n_enc_layers"),
    ({"studies.tiny_ops.model.n_dec_layers": 0}, "studies.tiny_ops.model.n_dec_layers"),
    ({"studies.tiny_ops.model.dropout": 1.0}, "studies.tiny_ops.model.dropout"),
    ({"studies.tiny_ops.training.betas": [0.9, 1.0]}, "studies.tiny_ops.training.betas"),
    ({"studies.tiny_ops.training.min_lr": 0.1}, "studies.tiny_ops.training.min_lr"),
    ({"studies.tiny_ops.training.devices": 3}, "tiny_ops.training.batch_size: must be a multiple"),
    ({"studies.tiny_ops.training.batch_size": 128}, "studies.tiny_ops.training.epoch_size"),
    ({"studies.tiny_metab.training.batch_tokens": 30}, "tiny_metab.training.batch_tokens: 30 is"),
    ({"studies.tiny_metab.model.max_len": 40}, "studies.tiny_metab.model.max_len: 40 is shorter"),
    ({"studies.tiny_ood.model.max_len": 8}, "studies.tiny_ood.model.max_len: 8 is shorter"),
    ({"studies.tiny_ops.report.metric": "accuracy"}, "tiny_ops.report.metric: unknown metric"),
    (
        {"studies.tiny_arith.overrides": [{"when": {"data.prime_sise": 5}, "set": {}}]},
        "studies.tiny_arith.overrides.0.when.data.prime_sise: unknown key",
    ),
    ({"studies.tiny_ops.grid.params.op": ["add", "add"]}, "duplicate value 'add'"),
    ({"studies.tiny_ops.task": ""}, "studies.tiny_ops.task"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_cross_field_checks_name_the_key(change, message):
    if "studies.tiny_ops.grid.params.op" in change:  # a dotted grid key
        config = copy.deepcopy(CI)
        config["studies"]["tiny_ops"]["grid"]["params.op"] = change.pop(
            "studies.tiny_ops.grid.params.op"
        )
    else:
        config = changed(change)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    if "n_enc_layers" not in message:  # the schema stops that one; the plan checks the rest
        with pytest.raises(ConfigError, match="studies."):
            build_plan(config)


def test_metrics_a_report_may_show():
    plan = build_plan(changed({"studies.tiny_ood.report.metric": "median_rel_error"}))
    assert plan.studies["tiny_ood"].report["metric"] == "median_rel_error"
    with pytest.raises(ConfigError, match="allowed: .*acc"):
        build_plan(changed({"studies.tiny_arith.report.metric": "acc_tol5"}))


# ---- the results root ----------------------------------------------------------------------
def test_results_root_from_the_config(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    plan = build_plan(changed({"results": "elsewhere/out"}))
    root = Path("elsewhere/out")
    assert plan.results_dir == root
    assert plan.tracking_uri == "sqlite:///elsewhere/out/mlflow.db"
    for study in plan.studies.values():
        assert study.dir == root / study.name
    for run in plan.runs.values():
        assert run.dir.parent.parent == root
        assert RunSpec.from_json(run.to_json()).dir == run.dir
    for dataset in plan.datasets.values():
        assert dataset.dir.parent == root / "data"
    # the root is no setting of a run: its ids stay the same
    assert sorted(plan.runs) == sorted(build_plan(copy.deepcopy(CI)).runs)
    assert build_plan(copy.deepcopy(CI)).tracking_uri == "sqlite:///results/mlflow.db"


# ---- config files that are not config files --------------------------------------------------
def test_directory_or_binary_config_is_a_one_line_error(tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="model.bin: not a text file"):
        load_config(binary)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for path in (tmp_path, binary):
        proc = subprocess.run(
            [sys.executable, "-m", "synthmath.cli", "runs", "--config", str(path)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr and str(path) in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_empty_task_is_a_one_line_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(changed({"studies.tiny_ops.task": ""})))
    with pytest.raises(ConfigError, match="studies.tiny_ops.task"):
        load_config(config)
    with pytest.raises(ConfigError, match="studies.tiny_ops.task: empty; allowed: .*linalg"):
        build_plan(changed({"studies.tiny_ops.task": ""}))


# ---- eval.precision ----------------------------------------------------------------------------
def test_eval_precision_is_checked_and_left_out_of_specs_at_its_default():
    with pytest.raises(ConfigError, match=r"studies\.tiny_ops\.eval\.precision: unknown value"):
        validate_config(changed({"studies.tiny_ops.eval.precision": "fp16"}))
    base = build_plan(copy.deepcopy(CI))
    assert all("precision" not in run.eval for run in base.runs.values())  # specs as before
    spelled = build_plan(changed({"defaults.eval.precision": "fp32"}))
    assert {k: r.to_json() for k, r in spelled.runs.items()} == {
        k: r.to_json() for k, r in base.runs.items()
    }
    bf16 = build_plan(changed({"studies.tiny_ops.eval.precision": "bf16"}))
    assert set(bf16.runs) == set(base.runs)  # an evaluation setting: same runs, same ids
    for key, run in bf16.runs.items():
        assert run.eval.get("precision") == ("bf16" if key.startswith("tiny_ops/") else None)


def test_evaluation_fields_change_no_training():
    """New test sets, eval settings and tracking leave every run's id and training spec as
    they were (the workflow then re-runs evaluations only); a training setting does not."""
    before = build_plan(CI)
    config = changed({"defaults.eval.beam_size": 3, "tracking.enabled": False})
    config["studies"]["tiny_ops"].setdefault("test_sets", {"id": {}})["later"] = {"dim": 4}
    after = build_plan(config)
    assert set(after.runs) == set(before.runs)
    for key, run in after.runs.items():
        old = before.runs[key]
        assert run.to_json() != old.to_json()
        assert RunSpec.same_training(run.to_json(), old.to_json())
    run = after.runs[next(k for k in after.runs if k.startswith("tiny_ops/"))]
    again = before.runs[f"tiny_ops/{run.run_id}"].with_evaluation(
        "later", run.evaluation_json("later")
    )
    assert again.evaluation_json("later") == run.evaluation_json("later")
    assert again.test_params("later") == run.test_params("later")
    trained = dict(run.to_json(), training={**run.training, "lr": 0.5})
    assert not RunSpec.same_training(trained, run.to_json())
