"""The ``theory:`` section: absent means no theory figures; given, every setting is filled in
and a bad value is a one-line error naming the key."""

import pytest

from synthmath.core.errors import ConfigError
from synthmath.runs.config import validate_config

TINY = {"studies": {"lin": {"task": "linalg", "params": {"op": "transpose", "dim": 3}}}}


def test_theory_settings_are_filled_in():
    assert validate_config(TINY).theory is None
    plan = validate_config({**TINY, "theory": {"pspin_n": 40}})
    convit = plan.theory.pop("convit")
    assert plan.theory == {
        "d": 100,
        "grid": 20,
        "pspin_n": 40,
        "steps": 3000,
        "dfa_epochs": 400,
        "dfa_restarts": 8,
    }
    assert convit["fractions"] == [0.05, 0.1, 0.25, 0.5, 1.0] and convit["seeds"] == 3
    plan = validate_config({**TINY, "theory": {"convit": {"seeds": 1, "steps": 5}}})
    assert plan.theory["convit"]["seeds"] == 1 and plan.theory["convit"]["gpsa_layers"] == 1


@pytest.mark.parametrize(
    "theory, key",
    [
        ({"pspin_n": 1000}, "pspin_n"),
        ({"d": 1}, "d"),
        ({"seeds": 3}, "seeds"),
        ({"convit": {"fractions": [0.0]}}, "convit.fractions.0"),
        ({"convit": {"gpsa_layers": 3}}, "convit.gpsa_layers"),
        ({"convit": {"tcnn_gates": []}}, "convit.tcnn_gates"),
        ({"convit": {"epochs": 3}}, "convit.epochs"),
        ({"convit": 3}, "convit"),
    ],
)
def test_bad_theory_settings_name_the_key(theory, key):
    with pytest.raises(ConfigError, match=rf"theory\.{key}"):
        validate_config({**TINY, "theory": theory})
