"""The shipped classic sequences and the classical recurrence finders."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from synthmath.core.errors import ConfigError
from synthmath.tasks.recurrence.baselines import (
    evaluate_baselines,
    find_polynomial_recurrence,
    sympy_linear,
)
from synthmath.tasks.recurrence.known import classic_sequences, load_sequences, primes

#: first terms from the OEIS entries (checked by hand), for the definitions in the file
OEIS_TERMS = {
    "fibonacci": [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89],
    "lucas": [2, 1, 3, 4, 7, 11, 18, 29, 47, 76, 123, 199],
    "pell": [0, 1, 2, 5, 12, 29, 70, 169, 408, 985, 2378, 5741],
    "jacobsthal": [0, 1, 1, 3, 5, 11, 21, 43, 85, 171, 341, 683],
    "tribonacci": [0, 0, 1, 1, 2, 4, 7, 13, 24, 44, 81, 149],
    "padovan": [1, 0, 0, 1, 0, 1, 1, 1, 2, 2, 3, 4],
    "catalan": [1, 1, 2, 5, 14, 42, 132, 429, 1430, 4862, 16796, 58786],
    "motzkin": [1, 1, 2, 4, 9, 21, 51, 127, 323, 835, 2188, 5798],
    "factorials": [1, 1, 2, 6, 24, 120, 720, 5040, 40320, 362880, 3628800, 39916800],
    "powers_of_2": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
    "triangular": [0, 1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 66],
    "squares": [0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121],
    "primes": [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37],
}


def test_the_shipped_definitions_give_the_oeis_terms():
    sequences = {s.name: s for s in classic_sequences()}
    assert set(sequences) == set(OEIS_TERMS)
    for name, terms in OEIS_TERMS.items():
        assert sequences[name].terms(len(terms)) == terms, name
    assert sequences["catalan"].oeis == "A000108"
    assert primes(25)[-1] == 97


def test_bad_files_are_one_line_errors(tmp_path):
    path = tmp_path / "seq.json"
    for entry, field in (
        ({"name": "a", "recurrence": "add u_1 u_2", "initial": [0]}, "initial"),
        ({"name": "a", "recurrence": "add u_1 __import__", "initial": [0, 1]}, "recurrence"),
        ({"name": "a", "recurrence": "add u_1 u_2 u_3", "initial": [0, 1, 2]}, "recurrence"),
        ({"name": "a", "recurrence": "sin u_1", "initial": [1]}, "recurrence"),
        ({"name": "a", "generator": "squares"}, "generator"),
    ):
        path.write_text(json.dumps({"sequences": [entry]}))
        with pytest.raises(ConfigError, match=f"'a'.{field}"):
            load_sequences(path)
    path.write_text("{")
    with pytest.raises(ConfigError, match="seq.json"):
        load_sequences(path)


def test_sympy_finds_fibonacci_but_no_recurrence_of_the_primes_predicts():
    assert sympy_linear(OEIS_TERMS["fibonacci"]) == [1, 1]
    rows = {r["name"]: r for r in evaluate_baselines(classic_sequences(), 16, 6)}
    assert rows["fibonacci"]["sympy_linear"] and rows["padovan"]["sympy_linear"]
    assert not rows["catalan"]["sympy_linear"] and not rows["factorials"]["sympy_linear"]
    assert not rows["primes"]["sympy_linear"] and not rows["primes"]["polynomial"]
    # polynomial coefficients: every classic sequence but the primes
    assert all(r["polynomial"] for name, r in rows.items() if name != "primes")
    json.dumps(list(rows.values()), allow_nan=False)


def test_catalan_has_polynomial_coefficients():
    found = find_polynomial_recurrence(OEIS_TERMS["catalan"])
    assert found is not None and (found.order, found.degree) == (1, 1)
    # (n + 1) C(n) - (4n - 2) C(n - 1) = 0, i.e. (n + 2) C(n + 1) = (4n + 2) C(n)
    assert found.coeffs == ((Fraction(1), Fraction(1)), (Fraction(2), Fraction(-4)))
    assert found.roll(OEIS_TERMS["catalan"], 2) == [208012, 742900]
    fib = find_polynomial_recurrence(OEIS_TERMS["fibonacci"])
    assert fib.coeffs == ((Fraction(1),), (Fraction(-1),), (Fraction(-1),))
    assert find_polynomial_recurrence(primes(30)) is None


def test_the_classic_family_serves_the_shipped_recurrences():
    import numpy as np

    from synthmath.tasks.recurrence.task import RecurrenceTask

    task = RecurrenceTask(family="classic")
    raw = task.sample(14, np.random.default_rng(0))
    names = [s.name for s in classic_sequences() if s.recurrence is not None]
    assert len(names) == 12  # all but the primes, cycled
    for i in range(14):
        seq = classic_sequences()[names.index(names[i % 12])]
        terms = task.terms(raw, i)
        assert terms == seq.terms(len(terms))
        assert str(raw["tree"][i]) == " ".join(seq.recurrence)
    exact = [task.tgt_codec.encode(tuple(str(t).split())) for t in raw["tree"]]
    assert task.score(raw, [[e] for e in exact])["acc"].all()


def test_the_probes_score_their_reference_approximations():
    import numpy as np
    from scipy import special

    from synthmath.tasks.recurrence.task import RecurrenceTask

    with pytest.raises(ConfigError, match="family"):
        RecurrenceTask(family="probes")  # float sequences
    task = RecurrenceTask(mode="float", family="probes")
    raw = task.sample(3, np.random.default_rng(0))
    terms = task.terms(raw, 0)
    assert terms == special.j0(np.arange(len(terms))).tolist()
    assert task.terms(raw, 2)[1] == pytest.approx(np.pi**2 / 6, rel=1e-15)
    reference = [task.tgt_codec.encode(tuple(str(t).split())) for t in raw["tree"]]
    s = task.score(raw, [[r] for r in reference])
    # pi^2/6 is exact to rounding; the Bessel forms are approximations with a finite error
    assert s["acc"][:, 0].tolist() == [False, False, True]
    assert np.isfinite(s["rel_error"][:2, 0]).all() and (s["rel_error"][:2, 0] > 1e-4).all()


def test_baselines_read_the_same_terms_as_the_model(capsys):
    import numpy as np

    from synthmath.tasks.recurrence.baselines import main, score_baselines
    from synthmath.tasks.recurrence.task import RecurrenceTask

    task = RecurrenceTask(family="classic", min_len=12, max_len=12)
    raw = task.sample(12, np.random.default_rng(0))
    scores = score_baselines(task, raw)
    names = [s.name for s in classic_sequences() if s.recurrence is not None]
    by_name = dict(zip(names, scores["sympy_linear"]))
    assert by_name["fibonacci"] and not by_name["catalan"]
    assert all(scores["polynomial"][names.index(n)] for n in ("catalan", "factorials"))
    main(["16"])
    table = capsys.readouterr().out
    assert "| catalan | A000108 | no | yes | (n + 1)*u_0 + (2 - 4*n)*u_1 = 0 |" in table


def test_classic_examples_keep_to_max_tokens():
    import numpy as np

    from synthmath.core.errors import DataError
    from synthmath.tasks.recurrence import generator as gen
    from synthmath.tasks.recurrence.task import RecurrenceTask

    task = RecurrenceTask(family="classic", int_base=10, max_tokens=400, min_len=20)
    factorials = next(s for s in classic_sequences() if s.name == "factorials")
    whole = gen.Example(factorials.recurrence, tuple(factorials.terms(40)), 30, 1, 1)
    assert task._too_long(whole)  # 30 given factorials and 10 more: over 400 tokens
    raw = task.sample(48, np.random.default_rng(0))
    assert task.encode_src(raw)[1].max() <= 400 and task.encode_tgt(raw)[1].max() <= 400
    assert (raw["n_input"] >= 20).all() and raw["n_input"][8::12].max() < 30
    with pytest.raises(DataError, match="with 5 given terms is longer than max_tokens=16"):
        RecurrenceTask(family="classic", int_base=10, max_tokens=16).sample(
            12, np.random.default_rng(0)
        )
