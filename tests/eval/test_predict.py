"""How far evaluation decodes: a little past the longest reference for fixed-format answers,
every model position for tasks that verify what an answer computes (a right answer can be
longer than the reference)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from synthmath.core.task import ANY_LENGTH, NBestTask
from synthmath.core.vocab import EOS
from synthmath.eval.predict import decode_steps, predict_nbest
from synthmath.nn.config import ModelConfig
from synthmath.nn.model import Transformer
from synthmath.tasks.registry import make_task
from synthmath.train.batches import EncodedSet


def test_fixed_format_answers_stop_past_the_longest_reference():
    task = make_task("linalg", {"op": "transpose", "dim": 3})
    assert task.answer_limit() is None
    encoded = SimpleNamespace(max_tgt_len=30)  # BOS + 28 answer tokens + EOS
    model = SimpleNamespace(cfg=SimpleNamespace(max_len=256))
    assert decode_steps(task, encoded, model) == 31


def test_verified_answers_may_use_every_model_position():
    symbolic = make_task("symbolic", {"problem": "prim_fwd"})
    assert isinstance(symbolic, NBestTask) and symbolic.answer_limit() == ANY_LENGTH
    encoded = SimpleNamespace(max_tgt_len=30)
    assert decode_steps(symbolic, encoded, SimpleNamespace(cfg=SimpleNamespace(max_len=256))) == 256
    # never below the references' own bound, and a model without positions keeps that bound
    assert decode_steps(symbolic, encoded, SimpleNamespace(cfg=SimpleNamespace(max_len=20))) == 31
    assert decode_steps(symbolic, encoded, SimpleNamespace()) == 31


def test_an_untrained_model_decodes_past_the_reference_length_on_a_verified_task():
    torch.manual_seed(0)
    task = make_task("recurrence", {"mode": "int", "max_tokens": 60})
    raw = task.sample(4, np.random.default_rng(0))
    encoded = EncodedSet(task, raw)
    cfg = ModelConfig(
        src_vocab_size=len(task.src_vocab()), tgt_vocab_size=len(task.tgt_vocab()),
        n_enc_layers=1, n_dec_layers=1, d_model=16, n_heads=2, max_len=96,
    )  # fmt: skip
    model = Transformer(cfg)
    with torch.no_grad():  # never EOS: every hypothesis runs to the last step
        model.head.bias[EOS] = -1e9
    hyps = predict_nbest(model, task, encoded, batch_size=4)
    longest = max(len(h[0]) for h in hyps)
    assert 96 >= longest > encoded.max_tgt_len + 1  # (a PAD or BOS drawn is not a token)
