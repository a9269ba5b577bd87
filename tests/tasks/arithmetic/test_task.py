"""The arithmetic task: digit-array arithmetic against Python ints, layouts against a
string-built reference, scoring, and the encoder-only data and prediction path."""

import json
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from synthmath.cli import main as cli_main
from synthmath.core.errors import ConfigError
from synthmath.core.raw import concat_raw
from synthmath.core.vocab import BOS, EOS, PAD
from synthmath.eval.predict import predict_tokens
from synthmath.eval.summary import evaluate
from synthmath.nn.config import ModelConfig
from synthmath.nn.model import Transformer
from synthmath.tasks.arithmetic import digits as dg
from synthmath.tasks.registry import make_task
from synthmath.train.batches import EncodedSet
from synthmath.train.loss import sequence_loss


def big_ints(rng: random.Random, n: int, max_digits: int) -> list[int]:
    """Python ints of 1..max_digits digits (lengths uniform), drawn independently of numpy."""
    return [rng.randrange(10 ** rng.randrange(1, max_digits + 1)) for _ in range(n)]


# ---- digit arrays -----------------------------------------------------------------------
def test_digit_arrays_round_trip_and_count():
    values = [0, 7, 10, 999, 10**40 + 3, 2**200] + big_ints(random.Random(0), 50, 60)
    digits = dg.from_ints(values, 61)
    assert dg.to_ints(digits) == values
    assert dg.digit_count(digits).tolist() == [len(str(v)) for v in values]
    with pytest.raises(ValueError, match="more than 2 digits"):
        dg.from_ints([123], 2)


@pytest.mark.parametrize("wa, wb", [(1, 1), (5, 3), (40, 40), (35, 3), (3, 35)])
def test_add_multiply_modulo_match_python_ints(wa, wb):
    rng = random.Random(wa * 100 + wb)
    xs, ys = big_ints(rng, 300, wa), big_ints(rng, 300, wb)
    a, b = dg.from_ints(xs, wa), dg.from_ints(ys, wb)
    assert dg.to_ints(dg.add(a, b)) == [x + y for x, y in zip(xs, ys)]
    assert dg.to_ints(dg.multiply(a, b)) == [x * y for x, y in zip(xs, ys)]
    for modulus in (2, 97, 100, 1000, 10**17):
        assert dg.modulo(a, modulus).tolist() == [x % modulus for x in xs]


def test_from_int64():
    values = np.array([0, 5, 99, 123456789])
    assert dg.to_ints(dg.from_int64(values, 9)) == values.tolist()


def test_length_probabilities_count_the_numbers():
    np.testing.assert_allclose(
        dg.length_probabilities(1, 3, "uniform_value"), np.array([10, 90, 900]) / 1000
    )
    np.testing.assert_allclose(
        dg.length_probabilities(2, 4, "uniform_value"), np.array([90, 900, 9000]) / 9990
    )
    np.testing.assert_allclose(dg.length_probabilities(3, 6, "uniform_length"), np.full(4, 0.25))
    assert dg.length_probabilities(1, 400, "uniform_value")[-1] == pytest.approx(0.9)


def test_sample_numbers_uniform_over_values():
    rng = np.random.default_rng(0)
    n = 40000
    values = dg.to_ints(dg.sample_numbers(n, 1, 3, "uniform_value", rng))
    assert min(values) >= 0 and max(values) <= 999
    # uniform over 0..999: 10 one-digit, 90 two-digit, 900 three-digit numbers
    lengths = np.bincount([len(str(v)) for v in values], minlength=4)[1:] / n
    np.testing.assert_allclose(lengths, [0.01, 0.09, 0.90], atol=0.006)
    assert abs(np.mean(values) - 499.5) < 5  # std of the mean ~ 1.4
    exact = dg.to_ints(dg.sample_numbers(2000, 4, 4, "uniform_value", rng))
    assert all(1000 <= v <= 9999 for v in exact) and len(set(exact)) > 1500


def test_sample_numbers_uniform_over_lengths_and_seeding():
    rng = np.random.default_rng(1)
    digits = dg.sample_numbers(30000, 2, 7, "uniform_length", rng)
    shares = np.bincount(dg.digit_count(digits), minlength=8)[2:] / 30000
    np.testing.assert_allclose(shares, np.full(6, 1 / 6), atol=0.015)
    a = dg.sample_numbers(100, 1, 35, "uniform_value", np.random.default_rng(5))
    b = dg.sample_numbers(100, 1, 35, "uniform_value", np.random.default_rng(5))
    assert np.array_equal(a, b) and a.shape == (100, 35)
    big = dg.to_ints(a)
    assert all(v < 10**35 for v in big) and max(big) > 10**33


# ---- reference layouts built from strings -------------------------------------------------
def reference_example(
    op, x, y, answer, *, layout, reverse, pad=True, width2=3, modulus=100, pad_to=None
):
    """(src tokens, tgt tokens with None for PAD) written directly from the numbers."""
    sx, sy = str(x), str(y)
    if pad and op == "mul":
        sx, sy = sx.zfill(pad_to or 0), sy.zfill(width2)
    elif pad:
        w = max(len(sx), len(sy), pad_to or 0)
        sx, sy = sx.zfill(w), sy.zfill(w)
    width = {
        "add": max(len(sx), len(sy)) + 1,
        "mul": len(sx) + len(sy),
        "modadd": len(str(modulus - 1)),
    }[op]
    sc = str(answer).zfill(width)
    if reverse:
        sx, sy, sc = sx[::-1], sy[::-1], sc[::-1]
    src = [*sx, "*" if op == "mul" else "+", *sy]
    if layout == "slots":
        tgt = [None] * (len(src) + 1) + list(sc)
        src += ["="] + ["_"] * width
    elif reverse:
        tgt = list(sc) + [None] * (len(src) - width)
    else:
        tgt = [None] * (len(src) - width) + list(sc)
    return src, tgt


CASES = [
    ({"op": "add", "max_digits": 6}, lambda x, y: x + y),
    ({"op": "add", "max_digits": 4, "max_digits2": 9, "pad": False}, lambda x, y: x + y),
    ({"op": "mul", "max_digits": 8}, lambda x, y: x * y),
    ({"op": "mul", "max_digits": 35, "min_digits": 35, "pad": False}, lambda x, y: x * y),
    ({"op": "modadd", "max_digits": 5, "modulus": 100}, lambda x, y: (x + y) % 100),
    ({"op": "modadd", "max_digits": 9, "modulus": 1000}, lambda x, y: (x + y) % 1000),
    ({"op": "modadd", "max_digits": 20, "min_digits": 2, "modulus": 97}, lambda x, y: (x + y) % 97),
    (
        {
            "op": "modadd",
            "max_digits": 20,
            "min_digits": 2,
            "modulus": 97,
            "mod_operands": "digits",
        },
        lambda x, y: (x + y) % 97,
    ),
    ({"op": "add", "max_digits": 4, "pad_to": 7}, lambda x, y: x + y),
    ({"op": "mul", "max_digits": 4, "pad_to": 6}, lambda x, y: x * y),
    ({"op": "modadd", "modulus": 1000, "pad_to": 5}, lambda x, y: (x + y) % 1000),
]


@pytest.mark.parametrize("params, exact", CASES)
@pytest.mark.parametrize(
    "layout, reverse", [("aligned", False), ("aligned", True), ("slots", False)]
)
def test_samples_and_layouts_match_reference(params, exact, layout, reverse):
    task = make_task("arithmetic", {**params, "layout": layout, "reversed": reverse})
    raw = task.sample(200, np.random.default_rng(0))
    src, src_len = task.encode_src(raw)
    tgt, tgt_len = task.encode_tgt(raw)
    assert src.shape == tgt.shape and np.array_equal(src_len, tgt_len)
    sv, tv = task.src_vocab(), task.tgt_vocab()
    for i in range(200):
        ex = task.to_json(raw, i)
        (x, y), answer = ex["problem"], ex["answer"]
        assert answer == exact(x, y)
        json.dumps(ex)  # plain ints
        ref_src, ref_tgt = reference_example(
            params["op"],
            x,
            y,
            answer,
            layout=layout,
            reverse=reverse,
            pad=params.get("pad", True),
            modulus=params.get("modulus", 100),
            pad_to=params.get("pad_to"),
        )
        n = src_len[i]
        assert [sv.tokens[t] for t in src[i, :n]] == ref_src
        assert [None if t == PAD else tv.tokens[t] for t in tgt[i, :n]] == ref_tgt
        assert (src[i, n:] == PAD).all() and (tgt[i, n:] == PAD).all()


def test_operand_ranges_and_size_groups():
    task = make_task("arithmetic", {"op": "mul", "min_digits": 12, "max_digits": 12})
    raw = task.sample(300, np.random.default_rng(2))
    xs, ys = dg.to_ints(raw["a"]), dg.to_ints(raw["b"])
    assert all(10**11 <= x < 10**12 for x in xs) and all(0 <= y < 1000 for y in ys)
    assert set(task.groups(raw)["size"]) == {"12x3"}
    add = make_task("arithmetic", {"op": "add", "max_digits": 3, "length_dist": "uniform_length"})
    raw = add.sample(300, np.random.default_rng(3))
    labels = add.groups(raw)["size"]
    widths = [max(len(str(x)), len(str(y))) for x, y in zip(*map(dg.to_ints, (raw["a"], raw["b"])))]
    assert labels.tolist() == [str(w) for w in widths] and set(labels) == {"1", "2", "3"}


@pytest.mark.parametrize("modulus", [7, 100])
def test_modadd_operands_are_uniform_residues(modulus):
    """Jelassi et al. draw both operands from Z_q: uniform in [0, q), whatever max_digits."""
    task = make_task("arithmetic", {"op": "modadd", "modulus": modulus, "max_digits": 5})
    n = 50 * modulus
    raw = task.sample(n, np.random.default_rng(11))
    for key in ("a", "b"):
        values = np.array(dg.to_ints(raw[key]))
        assert values.min() == 0 and values.max() == modulus - 1
        counts = np.bincount(values, minlength=modulus)
        assert stats.chisquare(counts).pvalue > 1e-4  # uniform over the residues
        assert abs(values.mean() - (modulus - 1) / 2) < 5 * modulus / np.sqrt(12 * n)
    answers = [task.to_json(raw, i) for i in range(n)]
    assert all(ex["answer"] == sum(ex["problem"]) % modulus for ex in answers)


def test_modadd_digit_operands_and_pad_to():
    """``mod_operands=digits`` keeps min..max-digit operands; ``pad_to`` fixes the input length
    (same-place digits of a and b always pad_to + 1 apart) and sizes still count digits."""
    task = make_task(
        "arithmetic", {"op": "modadd", "min_digits": 6, "max_digits": 6, "mod_operands": "digits"}
    )
    values = dg.to_ints(task.sample(200, np.random.default_rng(12))["a"])
    assert all(10**5 <= v < 10**6 for v in values)
    add = make_task("arithmetic", {"op": "add", "max_digits": 4, "pad_to": 8})
    raw = add.sample(300, np.random.default_rng(13))
    src, lengths = add.encode_src(raw)
    assert (lengths == 17).all() and (src[:, 8] == add.src_vocab().offset("+")).all()
    widths = [max(len(str(x)), len(str(y))) for x, y in zip(*map(dg.to_ints, (raw["a"], raw["b"])))]
    assert add.groups(raw)["size"].tolist() == [str(w) for w in widths]
    assert add.generator_params()["pad_to"] == 8
    assert "pad_to" not in make_task("arithmetic", {}).generator_params()


def test_score_and_decode_answer():
    task = make_task("arithmetic", {"op": "add", "max_digits": 4})
    raw = task.sample(50, np.random.default_rng(4))
    answers = [
        [str(d) for d in str(task.to_json(raw, i)["answer"]).zfill(int(w))]
        for i, w in enumerate(raw["answer_width"])
    ]
    perfect = task.score_predictions(raw, answers)
    assert perfect["acc"].all() and (perfect["digit_acc"] == 1).all()
    bad = [list(a) for a in answers]
    bad[0][-1] = str((int(bad[0][-1]) + 1) % 10)  # one wrong digit
    bad[1][0] = "<pad>"  # a predicted PAD is a wrong digit
    bad[2] = bad[2][:-1]  # too short
    scores = task.score_predictions(raw, bad)
    assert scores["acc"].tolist() == [False, False, False] + [True] * 47
    width = [len(a) for a in answers]
    np.testing.assert_allclose(scores["digit_acc"][:3], [1 - 1 / w for w in width[:3]])
    assert task.decode_answer(answers[5]) == task.to_json(raw, 5)["answer"]
    rev = make_task("arithmetic", {"op": "add", "reversed": True})
    assert rev.decode_answer(["1", "2", "0"]) == 21
    with pytest.raises(Exception, match="not a number"):
        task.decode_answer(["1", "<pad>"])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"min_digits": 6}, "min_digits: must be <= max_digits=5"),
        ({"op": "sub"}, "op: unknown value 'sub'; allowed: add, mul, modadd"),
        ({"max_digits": 0}, "max_digits: must be in 1..1000"),
        ({"op": "mul", "min_digits2": 4}, "min_digits2: second operand needs"),
        ({"op": "add", "max_digits2": 2, "min_digits": 3}, "max_digits2: second operand"),
        ({"op": "modadd", "modulus": 1}, "modulus: must be in 2.."),
        ({"op": "modadd", "modulus": 10**6, "max_digits": 2}, "raise pad_to or use layout=slots"),
        (
            {"op": "modadd", "modulus": 10**6, "mod_operands": "digits"},
            "raise min_digits or use layout=slots",
        ),
        ({"digits": 3}, "digits: unknown parameter of task 'arithmetic'"),
        ({"reversed": "yes"}, "reversed: expected bool"),
        ({"pad": False, "pad_to": 8}, "pad_to: needs pad=true"),
        ({"op": "modadd", "mod_operands": "ints"}, "mod_operands: unknown value 'ints'"),
    ],
)
def test_bad_params_name_the_key(params, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        make_task("arithmetic", params)


def test_generator_params_and_digit_ids():
    add = make_task("arithmetic", {"op": "add", "modulus": 7, "reversed": True})
    assert "modulus" not in add.generator_params() and "reversed" not in add.generator_params()
    assert "mod_operands" not in add.generator_params()
    modadd = make_task("arithmetic", {"op": "modadd"}).generator_params()
    assert modadd["modulus"] == 100 and modadd["mod_operands"] == "residues"
    src_ids, tgt_ids = add.digit_token_ids()
    assert [add.src_vocab().tokens[i] for i in src_ids] == [str(d) for d in range(10)]
    assert [add.tgt_vocab().tokens[i] for i in tgt_ids] == [str(d) for d in range(10)]


# ---- encoder-only data path -----------------------------------------------------------------
def test_encoded_set_is_aligned_without_specials():
    task = make_task("arithmetic", {"op": "add", "max_digits": 3, "length_dist": "uniform_length"})
    raw = task.sample(64, np.random.default_rng(5))
    enc = EncodedSet(task, raw)
    src, tgt = enc.batch(np.arange(64))
    assert src.shape == tgt.shape
    assert not torch.isin(src, torch.tensor([BOS, EOS])).any()
    assert ((tgt != PAD) <= (src != PAD)).all()  # targets only on input positions
    assert int((tgt != PAD).sum()) == int(raw["answer_width"].sum())


def test_concat_with_longer_examples_keeps_encodings():
    """Priming concatenates short and long raw batches: every row must encode as before."""
    task = make_task("arithmetic", {"op": "mul", "max_digits": 5})
    short = task.sample(20, np.random.default_rng(6))
    long = make_task("arithmetic", {"op": "mul", "min_digits": 35, "max_digits": 35}).sample(
        5, np.random.default_rng(7)
    )
    mixed = concat_raw([short, long])
    for part, rows in ((short, slice(0, 20)), (long, slice(20, 25))):
        ids, lengths = task.encode_src(part)
        mixed_ids, mixed_lengths = task.encode_src({k: v[rows] for k, v in mixed.items()})
        assert np.array_equal(lengths, mixed_lengths)
        assert np.array_equal(ids, mixed_ids[:, : ids.shape[1]])
        assert [task.to_json(mixed, i) for i in range(rows.start, rows.stop)] == [
            task.to_json(part, i) for i in range(rows.stop - rows.start)
        ]


class OracleModel(torch.nn.Module):
    """Encoder-only stand-in that knows the targets (optionally shifted by one position)."""

    def __init__(self, encoded: EncodedSet, vocab_size: int, shift: int = 0):
        super().__init__()
        self.cfg = SimpleNamespace(arch="encoder_only")
        self.head = torch.nn.Linear(1, vocab_size)
        self.answers = {
            tuple(s[s != PAD].tolist()): np.roll(t, shift) for s, t in zip(encoded.src, encoded.tgt)
        }
        self.vocab_size = vocab_size

    def forward(self, src):
        out = torch.zeros(*src.shape, self.vocab_size)
        for row, ids in enumerate(src):
            target = self.answers[tuple(ids[ids != PAD].tolist())][: src.size(1)]
            out[row, torch.arange(src.size(1)), torch.as_tensor(target)] = 1.0
        return out


def test_predictions_are_the_tokens_at_the_answer_positions():
    task = make_task("arithmetic", {"op": "mul", "max_digits": 4, "layout": "slots"})
    raw = task.sample(40, np.random.default_rng(8))
    enc = EncodedSet(task, raw)
    vocab = len(task.tgt_vocab())
    preds = predict_tokens(OracleModel(enc, vocab), task, enc, batch_size=16)
    assert preds == [
        [str(d) for d in str(task.to_json(raw, i)["answer"]).zfill(int(w))]
        for i, w in enumerate(raw["answer_width"])
    ]
    summary = evaluate(OracleModel(enc, vocab), task, raw, batch_size=16)
    assert summary["metrics"] == {"acc": 1.0, "digit_acc": 1.0}
    assert set(summary["by_group"]["size"]) <= {"1x3", "2x3", "3x3", "4x3"}
    shifted = evaluate(OracleModel(enc, vocab, shift=1), task, raw, batch_size=16)
    # shifted by one: the first answer position predicts PAD, so no answer is right
    assert shifted["metrics"]["acc"] == 0.0 and 0 < shifted["metrics"]["digit_acc"] < 1
    assert "<pad>" in shifted["examples"][0]["predicted"]


def test_encoder_only_loss_covers_answer_digits_only():
    task = make_task("arithmetic", {"op": "add", "max_digits": 3})
    raw = task.sample(16, np.random.default_rng(9))
    enc = EncodedSet(task, raw)
    cfg = ModelConfig(
        len(task.src_vocab()),
        len(task.tgt_vocab()),
        arch="encoder_only",
        n_enc_layers=1,
        n_dec_layers=0,
        d_model=16,
        n_heads=2,
        max_len=16,
    )
    loss, n_tokens = sequence_loss(Transformer(cfg), enc.batch(np.arange(16)))
    assert torch.isfinite(loss) and n_tokens == int(raw["answer_width"].sum())


def test_config_rejects_encoder_decoder_for_arithmetic():
    from synthmath.runs.plan import build_plan

    config = {"studies": {"s": {"task": "arithmetic", "model": {"arch": "encoder_decoder"}}}}
    with pytest.raises(ConfigError, match="studies.s.model.arch: task 'arithmetic'"):
        build_plan(config)


@pytest.mark.parametrize(
    "params, exact",
    [
        (["op=add", "max_digits=5"], lambda x, y: x + y),
        (["op=mul", "max_digits=5", "max_digits2=3"], lambda x, y: x * y),
        (["op=modadd", "modulus=100"], lambda x, y: (x + y) % 100),
    ],
)
def test_cli_sample(capsys, params, exact):
    assert cli_main(["sample", "arithmetic", *params, "-n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        ex = json.loads(line)
        assert ex["answer"] == exact(*ex["problem"])
        assert ex["src"].replace(" ", "").lstrip("0").startswith(str(ex["problem"][0]))
        assert ex["tgt"].split()[-1] == str(ex["answer"])[-1]
