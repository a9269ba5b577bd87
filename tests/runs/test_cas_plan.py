"""The ``cas:`` section: expanded to the test sets the study's evaluate jobs read, and bad
settings are one-line errors naming the key."""

import copy
from pathlib import Path

import pytest

from synthmath.core.errors import ConfigError
from synthmath.runs.config import validate_config
from synthmath.runs.plan import CasSpec

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "defaults": {"model": {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 16, "n_heads": 2}},
    "studies": {
        "sym": {
            "task": "symbolic",
            "params": {"max_ops": 4, "max_len": 64},
            "model": {"max_len": 80},
            "grid": {"params.problem": ["prim_fwd", "prim_bwd", "ode1", "prim_bwd,ode1"]},
            "eval": {"size": 6, "beam_sizes": [1, 2]},
        },
        "lin": {"task": "linalg", "params": {"op": "transpose", "dim": 3}},
    },
    "cas": {"study": "sym", "size": 4, "timeouts": [1, 0.5], "workers": 1},
}


def config(**cas) -> dict:
    out = copy.deepcopy(TINY)
    out["cas"].update(cas)
    return out


def test_cas_reads_the_test_sets_of_the_study():
    plan = validate_config(config())
    cas = plan.cas
    runs = {r.params["problem"]: r for r in plan.studies["sym"].runs}
    # prim_fwd is not asked for by default, the mixed test set is not one problem
    assert list(cas.datasets) == ["prim_bwd", "ode1"]
    for problem in ("prim_bwd", "ode1"):
        assert cas.datasets[problem] == runs[problem].test_sets["id"]
        assert cas.datasets[problem].id in plan.datasets  # no new generation
        assert cas.runs[problem] == [f"sym/{runs[problem].run_id}"]
    assert cas.timeouts == [0.5, 1.0] and cas.size == 4 and cas.workers == 1
    assert str(cas.json_path) == "results/cas/sym.json"
    assert CasSpec.from_json(cas.to_json()) == cas
    assert "workers" not in cas.job_json() and "runs" not in cas.job_json()
    assert validate_config({k: v for k, v in TINY.items() if k != "cas"}).cas is None


def test_problems_select_the_test_sets():
    cas = validate_config(config(problems=["ode1", "prim_fwd", "ode2"])).cas
    assert list(cas.datasets) == ["ode1", "prim_fwd"]  # no ode2 run: skipped


@pytest.mark.parametrize(
    "change, message",
    [
        ({"study": "nope"}, "cas.study: 'nope' is unknown or disabled study; allowed"),
        ({"study": "lin"}, "cas.study: 'lin' is a linalg study; allowed (symbolic studies): sym"),
        ({"test_set": "ood"}, "cas.test_set: study 'sym' has no test set 'ood'; allowed: id"),
        ({"problems": ["ode2"]}, "cas.problems: no 'id' test set of study 'sym' is one of ode2"),
        ({"timeouts": [0]}, "cas.timeouts.0: 0 is less than or equal to the minimum of 0"),
        ({"size": 0}, "cas.size: 0 is less than the minimum of 1"),
        ({"problems": ["integrate"]}, "cas.problems.0: unknown value 'integrate'; allowed: prim"),
        ({"speed": 2}, "cas.speed: unknown key; allowed: problems, size"),
    ],
)
def test_bad_cas_settings_name_the_key(change, message):
    with pytest.raises(ConfigError) as err:
        validate_config(config(**change))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_runs_with_different_test_sets_of_one_problem_are_an_error():
    bad = config()
    bad["studies"]["sym"]["grid"]["params.max_ops"] = [3, 4]
    with pytest.raises(ConfigError, match="cas.study: the runs of 'sym' have different 'id'"):
        validate_config(bad)
    # a grid that leaves the test set alone shares it: one dataset, both runs
    ok = config()
    ok["studies"]["sym"]["grid"]["training.lr"] = [1e-3, 1e-4]
    cas = validate_config(ok).cas
    assert len(cas.runs["prim_bwd"]) == 2


def test_snakemake_validator_fills_cas_defaults_only_when_configured():
    from snakemake.utils import validate

    schema = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    with_cas = config()
    validate(with_cas, schema)
    assert with_cas["cas"]["test_set"] == "id" and with_cas["cas"]["size"] == 4
    without = {k: v for k, v in copy.deepcopy(TINY).items() if k != "cas"}
    validate(without, schema)
    assert "cas" not in without
