"""The boolean task: CLI samples SymPy reads back, points encoding, scoring and beam ranking."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

from synthmath.cli import main
from synthmath.core.vocab import PAD
from synthmath.tasks.registry import make_task


def test_cli_sample_prints_rows_and_a_formula_sympy_reads_back(capsys):
    assert main(["sample", "boolean", "regime=noiseless", "max_active=4", "-n", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    for ex in lines:
        rows = ex["problem"]["rows"]
        n_vars = len(rows[0]) - 1
        assert len(rows) == 2**n_vars
        symbols = sp.symbols(f"x_0:{n_vars}")
        expr = parse_expr(ex["answer"]["infix"], local_dict={s.name: s for s in symbols})
        for row in rows:  # SymPy's reading of the infix reproduces every row
            assert bool(expr.subs(dict(zip(symbols, map(bool, row[:-1]))))) == bool(row[-1])
        assert ex["answer"]["tokens"] == ex["tgt"].split()


def test_bad_parameters_are_one_line_errors(capsys):
    assert main(["sample", "boolean", "regime=loud"]) == 2
    assert "regime: unknown value 'loud'" in capsys.readouterr().err
    assert main(["sample", "boolean", "max_ops=1", "max_active=5"]) == 2
    assert "max_ops: must be in max_active - 1..2000" in capsys.readouterr().err


def test_rows_are_encoded_one_point_each_with_pad_for_absent_variables():
    task = make_task("boolean", {"regime": "noisy", "max_inactive": 5, "max_points": 40})
    raw = task.sample(4, np.random.default_rng(3))
    ids, count = task.encode_src(raw)
    assert ids.shape == (4, int(raw["n_fit"].max()), task.tokens_per_point())
    assert task.tokens_per_point() == 10 + 5 + 1
    vocab = task.src_vocab()
    for i in range(4):
        x, y = task.rows(raw, i)
        n_vars = x.shape[1]
        assert np.array_equal(ids[i, : count[i], :n_vars] - vocab.offset("0"), x)
        assert np.array_equal(ids[i, : count[i], -1] - vocab.offset("0"), y)
        assert (ids[i, : count[i], n_vars:-1] == PAD).all() and (ids[i, count[i] :] == PAD).all()
    rows, tgt = task.length_bound()
    assert count.max() <= rows and task.encode_tgt(raw)[1].max() + 2 <= tgt


def _one(formula: str, n_vars: int, noise: float = 0.0):
    """A raw batch of the full table of ``formula``; with ``noise``, one fit output flipped and
    the clean table held out."""
    task = make_task("boolean", {"max_active": 4})
    raw = task.sample(1, np.random.default_rng(0))
    from synthmath.tasks.boolean import formulas as F

    tree = F.parse_prefix(formula.split())
    r = np.arange(2**n_vars)
    x = ((r[:, None] >> np.arange(n_vars)) & 1).astype(np.uint8)
    y = F.unpack(F.evaluate(tree, F.pack_rows(x), F.row_mask(len(r))), len(r))
    held = 0
    if noise:  # one flipped fit output, and the clean table held out
        x, y, held = np.r_[x, x], np.r_[y, y], len(r)
        y[0] ^= 1
    raw.update(
        formula=np.array([formula]),
        x=np.packbits(x, axis=1, bitorder="little")[None],
        y=y[None],
        n_fit=np.array([len(r)]),
        n_test=np.array([held]),
        n_vars=np.array([n_vars]),
        noise=np.array([noise]),
    )
    return task, raw


def test_scores_of_exact_equivalent_and_wrong_formulas():
    task, raw = _one("or and x_0 not x_1 x_2", 3)
    hyps = [
        "or and x_0 not x_1 x_2".split(),  # exact
        "or x_2 and not x_1 x_0".split(),  # the same function, other tokens
        "or x_0 x_2".split(),  # wrong on one row of 8
        "and x_0 x_7".split(),  # x_7 does not exist: malformed
    ]
    s = task.score(raw, [hyps])
    assert s["acc"][0].tolist() == [True, True, False, False]
    assert s["equivalent"][0].tolist() == [True, True, False, False]
    assert s["perfect_match"][0].tolist() == [True, False, False, False]
    assert s["fit_error"][0, :3].tolist() == [0.0, 0.0, 1 / 8]
    assert s["complexity"][0, :3].tolist() == [2, 2, 1]
    assert s["complexity_gap"][0, :3].tolist() == [0, 0, -1]
    assert s["parse_error"][0].tolist() == [0, 0, 0, 1] and s["fit_error"][0, 3] == np.inf


def test_the_pick_of_the_beam_is_by_fit_error_then_complexity():
    task, raw = _one("or x_0 x_1", 2)
    hyps = [
        ["garbage"],
        "x_0".split(),  # fit error 1/4
        "or x_0 or x_1 and x_0 x_1".split(),  # exact function, complexity 2
        "and or x_1 x_0 True".split(),  # exact function, complexity 2
        "or x_1 x_0".split(),  # exact function, complexity 1: the pick
    ]
    s = task.score(raw, [hyps])
    assert s["parse_error"][0].tolist() == [1, 0, 0, 0, 0]  # scores keep the decoder's order
    assert s["complexity"][0, 1:].tolist() == [0, 2, 2, 1]
    assert s["acc"][0].tolist() == [False, False, True, True, True]
    assert s["selected_acc"][0].tolist() == [True, False, False, False, False]
    assert s["selected_test_error"][0, 0] == 0.0
    s = task.score(raw, [[["garbage"], "x_0".split(), "and x_0 x_1".split()]])
    assert not s["selected_acc"].any() and s["selected_test_error"][0, 0] == 0.25


def test_noisy_rows_the_exact_formula_misses_still_count_as_solved():
    task, raw = _one("and x_0 x_1", 2, noise=0.1)
    s = task.score(raw, [["and x_0 x_1".split()]])
    assert s["fit_error"][0, 0] == 0.25 and s["acc"][0, 0] and s["equivalent"][0, 0]
    task, raw = _one("and x_0 x_1", 2)
    assert not task.score(raw, [["x_0".split()]])["acc"][0, 0]


@pytest.mark.parametrize("regime", ["noiseless", "noisy"])
def test_groups_name_every_example(regime):
    task = make_task("boolean", {"regime": regime, "max_active": 3, "max_points": 40})
    raw = task.sample(3, np.random.default_rng(0))
    groups = task.groups(raw)
    assert set(groups) == set(task.group_names)
    assert all(len(v) == 3 for v in groups.values())


def test_a_model_reads_the_rows_as_a_set():
    import torch

    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer
    from synthmath.train.batches import EncodedSet

    task = make_task("boolean", {"max_active": 4, "max_ops": 8})
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = ModelConfig(len(task.src_vocab()), len(task.tgt_vocab()), d_model=16, n_heads=2,
                      positions="learned", input_embedder=task.input_kind,
                      point_tokens=task.tokens_per_point())  # fmt: skip
    model = Transformer(cfg).eval()
    src, tgt = EncodedSet(task, task.sample(4, np.random.default_rng(0))).batch(np.arange(4))
    perm = torch.randperm(src.size(1), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(src, tgt[:, :-1]), model(src[:, perm], tgt[:, :-1]))
