"""Config validation and study expansion."""

import copy
from pathlib import Path

import pytest
import yaml

from synthmath.core.errors import ConfigError
from synthmath.runs.config import load_config, validate_config
from synthmath.runs.plan import build_plan

ROOT = Path(__file__).resolve().parents[2]
CI = yaml.safe_load((ROOT / "configs" / "ci.yaml").read_text())


def with_change(path: list, value):
    config = copy.deepcopy(CI)
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return config


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            ["studies", "tiny_ops", "model", "n_layers"],
            3,
            "studies.tiny_ops.model.n_layers: unknown key",
        ),
        (
            ["studies", "tiny_ops", "model", "positions"],
            "rotaryx",
            "allowed: learned, sinusoidal, none",
        ),
        (
            ["studies", "tiny_ops", "training", "lr"],
            "fast",
            "studies.tiny_ops.training.lr: expected number",
        ),
        (["studies", "tiny_ops", "task"], "linalgx", "task: unknown task 'linalgx'; allowed:"),
        (
            ["studies", "tiny_ops", "params", "op"],
            "trace",
            "studies.tiny_ops.params.op: unknown value 'trace'",
        ),
        (["studies", "tiny_ops", "params", "encoding"], "P100", "allowed: P10, P1000, B1999, FP15"),
        (["studies", "tiny_ops", "grid", "params.op"], ["transpose", "det"], "unknown value 'det'"),
        (
            ["studies", "tiny_ood", "test_sets", "positive", "dist"],
            "cauchy",
            "studies.tiny_ood.test_sets.positive",
        ),
        (["studies", "tiny_ops", "report", "rows"], "params.dim", "report.rows: unknown value"),
        (["studies", "tiny_ops", "colour"], "red", "studies.tiny_ops.colour: unknown key"),
        (["trackin"], {}, "trackin: unknown key"),
        (["studies", "tiny_ops", "grid", "model.depth"], [1], "model.depth: unknown key"),
    ],
)
def test_bad_config_names_the_key(path, value, message):
    with pytest.raises(ConfigError) as err:
        validate_config(with_change(path, value))
    assert message in str(err.value)


def test_bad_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("studies:\n  a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_expansion_shares_datasets_between_encodings():
    config = copy.deepcopy(CI)
    config["studies"]["tiny_ops"]["grid"]["params.encoding"] = ["P10", "P1000", "FP15"]
    plan = build_plan(config)
    runs = plan.studies["tiny_ops"].runs
    assert len(runs) == 6
    assert len({r.run_id for r in runs}) == 6
    # same op, different encodings: one training set; different ops: different sets
    by_op = {}
    for run in runs:
        by_op.setdefault(run.params["op"], set()).add(run.train_data.id)
    assert all(len(ids) == 1 for ids in by_op.values())
    assert by_op["transpose"] != by_op["add"]
    # valid and test sets differ from the training set
    run = runs[0]
    assert len({run.train_data.id, run.valid_data.id, run.test_sets["id"].id}) == 3


def test_run_ids_are_readable_and_stable():
    a = build_plan(copy.deepcopy(CI))
    b = build_plan(copy.deepcopy(CI))
    assert list(a.runs) == list(b.runs)
    assert any(key.startswith("tiny_ops/op-transpose_encoding-P1000-") for key in a.runs)
    changed = with_change(["studies", "tiny_ops", "training", "lr"], 5e-4)
    c = build_plan(changed)
    assert set(c.runs) != set(a.runs)


def test_variants_overrides_and_init_from():
    config = copy.deepcopy(CI)
    config["studies"]["sizes"] = {
        "task": "linalg",
        "params": {"op": "eigenvalues"},
        "variants": {
            "fixed3": {"params.dim": 3},
            "mixed": {"params.dim_min": 2, "params.dim_max": 4},
        },
        "overrides": [{"when": {"variant": "mixed"}, "set": {"model.d_model": 48}}],
        "report": {"kind": "lines", "rows": "variant", "cols": "size"},
    }
    config["studies"]["grow"] = {
        "task": "linalg",
        "params": {"op": "eigenvalues", "dim": 4},
        "init_from": {"study": "sizes", "match": {"variant": "fixed3"}},
    }
    plan = build_plan(config)
    sizes = {r.grid["variant"]: r for r in plan.studies["sizes"].runs}
    assert sizes["fixed3"].params["dim"] == 3 and sizes["fixed3"].model["d_model"] == 32
    assert sizes["mixed"].params["dim_max"] == 4 and sizes["mixed"].model["d_model"] == 48
    (grow,) = plan.studies["grow"].runs
    assert grow.init_from == str(sizes["fixed3"].dir)
    config["studies"]["grow"]["init_from"]["match"] = {}
    with pytest.raises(ConfigError, match="selects 2 runs"):
        build_plan(config)


def test_repository_configs_are_valid():
    for path in [ROOT / "config.yaml", *sorted((ROOT / "configs").rglob("*.yaml"))]:
        plan = build_plan(load_config(path))
        assert plan.runs, path
