"""The ``baselines:`` section: expanded to the test sets the study's evaluate jobs read,
with each test set's full task parameters; bad settings are one-line errors naming the key.
Also reports as a list (``report: [...]``, each further one named)."""

import copy

import pytest

from synthmath.core.errors import ConfigError
from synthmath.runs.config import validate_config

TINY = {
    "defaults": {"model": {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 16, "n_heads": 2}},
    "studies": {
        "ode": {
            "task": "odeformer",
            "params": {"max_dim": 2, "max_points": 60, "min_points": 50, "rerank": True,
                       "max_answer_tokens": 100},
            "model": {"max_len": 128},
            "eval": {"size": 4, "beam_sizes": [1, 2]},
            "test_sets": {
                "id": {},
                "strogatz_n10_s50": {"benchmark": "strogatz", "noise": 0.01, "subsample": 0.5},
            },
        },
        "sr": {
            "task": "symreg",
            "params": {"max_dim": 2, "max_points": 20},
            "model": {"max_len": 512},
            "test_sets": {"id": {}, "strogatz": {"benchmark": "strogatz", "refine": "e2e"}},
        },
    },
    "baselines": {"ode": {"methods": ["sindy"]}, "sr": {"methods": ["operon"],
                                                        "test_sets": ["strogatz"]}},
}  # fmt: skip


def config(**changes) -> dict:
    out = copy.deepcopy(TINY)
    for key, value in changes.items():
        study, field = key.split("__")
        out["baselines"].setdefault(study, {"methods": ["sindy"]})[field] = value
    return out


def test_baselines_read_the_test_sets_of_the_study():
    plan = validate_config(config())
    spec = plan.baselines["ode/sindy"]
    run = plan.studies["ode"].runs[0]
    assert list(spec.test_sets) == ["id", "strogatz_n10_s50"]
    for name, ds in spec.test_sets.items():
        assert ds.id == run.test_sets[name].id  # the very shards the evaluate jobs read
    assert spec.beam_sizes == [1, 2]
    job = spec.job_json("strogatz_n10_s50")
    assert job["params"]["noise"] == 0.01 and job["params"]["rerank"] is True
    assert str(spec.eval_path("id")).endswith("baselines/ode/sindy/id.json")
    operon = plan.baselines["sr/operon"]
    assert list(operon.test_sets) == ["strogatz"]
    # a scoring option (not a data parameter) reaches the baseline's task
    assert operon.job_json("strogatz")["params"]["refine"] == "e2e"


def test_no_section_no_baselines():
    cfg = config()
    del cfg["baselines"]
    assert validate_config(cfg).baselines == {}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nope__methods": ["sindy"]}, "baselines.nope: unknown or disabled study 'nope'"),
        ({"ode__methods": ["operon"]}, r"baselines.ode.methods\[0\]: 'operon' is a baseline of"),
        ({"ode__methods": ["pysr"]}, "baselines.ode.methods.0: unknown value 'pysr'"),
        ({"ode__methods": []}, "baselines.ode.methods"),
        ({"ode__test_sets": ["id", "odebench"]}, "baselines.ode.test_sets: study 'ode' has no "
                                                 "test set 'odebench'; allowed: all, id"),
        ({"ode__size": 0}, "baselines.ode.size"),
        ({"ode__colour": 1}, "baselines.ode.colour"),
    ],
)  # fmt: skip
def test_bad_baseline_settings_name_the_key(changes, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(config(**changes))


def test_reports_as_a_list():
    cfg = config()
    cfg["studies"]["ode"]["report"] = [
        {"kind": "bars", "rows": "dim", "metric": "acc_r2_0.9"},
        {"name": "robust", "kind": "robustness", "rows": "subsample", "cols": "noise"},
    ]
    study = validate_config(cfg).studies["ode"]
    assert study.report["kind"] == "bars" and study.report["rows"] == "dim"
    robust = study.more_reports["robust"]
    assert robust["panels"] == "benchmark" and robust["metric"] == "acc_r2_0.9"
    assert study.report_files("robust")["md"].name == "table-robust.md"


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"kind": "bars"}, r"studies.ode.report\[1\].name: missing"),
        ({"name": "a b"}, "name"),
        ({"name": "r", "kind": "robustness", "rows": "dim", "cols": "noise"},
         r"studies.ode.report\[1\].rows: kind robustness needs a parameter of task"),
        ({"name": "r", "kind": "robustness", "rows": "noise", "cols": "noise"},
         "needs different rows, cols, panels"),
        ({"name": "r", "metric": "acc_r2_0.5"}, r"studies.ode.report\[1\].metric"),
    ],
)  # fmt: skip
def test_bad_report_lists_name_the_key(second, message):
    cfg = config()
    cfg["studies"]["ode"]["report"] = [{"kind": "bars", "rows": "dim"}, second]
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_scoring_options_of_a_test_set_reach_its_evaluation():
    """A non-data parameter of a test set (symreg's refine) is not part of its dataset; the
    run spec carries it for the evaluate job (and run specs without any are as before)."""
    plan = validate_config(config())
    run = plan.studies["sr"].runs[0]
    assert "refine" not in run.test_sets["strogatz"].params
    assert run.test_options == {"strogatz": {"refine": "e2e"}}
    assert run.test_params("strogatz")["refine"] == "e2e"
    assert run.test_params("id")["refine"] == "none"
    assert type(run).from_json(run.to_json()) == run
    ode = plan.studies["ode"].runs[0]
    assert ode.test_options == {} and "test_options" not in ode.to_json()
