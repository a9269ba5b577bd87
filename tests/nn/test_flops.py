"""Analytic model FLOPs against torch's FlopCounterMode on real Transformer passes.

FlopCounterMode counts mm/addmm/bmm as 2 m n k, exactly what synthmath.nn.flops counts, so the
two agree exactly. Two details make that hold on CPU: attention runs under the MATH SDPA
backend (the counter has no formula for the CPU flash kernel, which it would count as 0;
the math backend runs two bmm over the full, even causal, square, which it counts); and
examples of different lengths run one at a time, since a padded batch computes (and the
counter counts) the padding that the analytic count leaves out.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from synthmath.core.vocab import BOS
from synthmath.nn.config import ModelConfig
from synthmath.nn.flops import (
    decode_flops,
    flops_breakdown,
    forward_flops,
    measured_matmul_peak,
    peak_flops,
    train_flops,
)
from synthmath.nn.model import Transformer

SRC_V, TGT_V = 23, 19


def make_config(**overrides) -> ModelConfig:
    base = dict(
        src_vocab_size=SRC_V,
        tgt_vocab_size=TGT_V,
        n_enc_layers=2,
        n_dec_layers=1,
        d_model=64,
        n_heads=4,
        d_ff=96,  # not 4 * d_model: a swapped D/F would show
        max_len=32,
    )
    return ModelConfig(**(base | overrides))


def tokens(gen: torch.Generator, rows: int, length: int, vocab: int) -> torch.Tensor:
    return torch.randint(3, vocab, (rows, length), generator=gen)  # no PAD, BOS, EOS


def counted(model: Transformer, src: torch.Tensor, tgt_in: torch.Tensor | None) -> int:
    """FLOPs that FlopCounterMode sees in one forward pass without gradients."""
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), counter:
        model(src, tgt_in)
    return counter.get_total_flops()


def model_for(cfg: ModelConfig) -> Transformer:
    torch.manual_seed(0)
    return Transformer(cfg).eval()


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # learned positions, post-norm
        {"positions": "rpe_k", "max_distance": 3},
        {"positions": "rpe_kq"},
        {"positions": "rotary", "norm": "pre", "activation": "gelu"},
        {"positions": "alibi"},
    ],
    ids=["learned", "rpe_k-clipped", "rpe_kq", "rotary-pre", "alibi"],
)
def test_encoder_decoder_batch_of_equal_lengths(overrides):
    cfg = make_config(**overrides)
    gen = torch.Generator().manual_seed(0)
    S, T = 11, 9  # T > 8: the decoder's self-attention goes through SDPA (is_causal)
    src, tgt_in = tokens(gen, 3, S, SRC_V), tokens(gen, 3, T, TGT_V)
    tgt_in[:, 0] = BOS
    expected = counted(model_for(cfg), src, tgt_in)
    assert forward_flops(cfg, np.full(3, S), np.full(3, T)) == expected


def test_encoder_decoder_formula_by_hand():
    cfg = make_config()
    D, F, V, S, T = 64, 96, TGT_V, 11, 9
    enc = 8 * S * D * D + 4 * S * S * D + 4 * S * D * F
    dec = (8 * T * D * D + 4 * T * T * D) + (4 * T * D * D + 4 * S * D * D + 4 * T * S * D)
    dec += 4 * T * D * F
    parts = flops_breakdown(cfg, [S], [T])
    assert parts == {"encoder": 2 * enc, "decoder": dec, "head": 2 * T * D * V}


@pytest.mark.parametrize("positions", ["learned", "rpe_kq"])
def test_encoder_only(positions):
    cfg = make_config(arch="encoder_only", n_dec_layers=0, positions=positions)
    gen = torch.Generator().manual_seed(1)
    src = tokens(gen, 3, 10, SRC_V)
    expected = counted(model_for(cfg), src, None)
    assert forward_flops(cfg, np.full(3, 10)) == expected
    assert forward_flops(cfg, np.full(3, 10), None) == forward_flops(cfg, [10, 10, 10], [1, 2, 3])
    head = flops_breakdown(cfg, [10])["head"]
    assert head == 2 * 10 * cfg.d_model * TGT_V  # the head projects to the target vocabulary


@pytest.mark.parametrize("positions", ["learned", "rpe_k"])
def test_examples_of_different_lengths(positions):
    cfg = make_config(positions=positions, max_distance=4 if positions == "rpe_k" else None)
    model = model_for(cfg)
    gen = torch.Generator().manual_seed(2)
    src_lens, tgt_lens = np.array([12, 5, 8, 1]), np.array([9, 3, 14, 1])
    expected = 0
    for s, t in zip(src_lens, tgt_lens):  # batch size 1: no padding
        src, tgt_in = tokens(gen, 1, int(s), SRC_V), tokens(gen, 1, int(t), TGT_V)
        expected += counted(model, src, tgt_in)
    assert forward_flops(cfg, src_lens, tgt_lens) == expected
    # a padded batch computes every example at the longest lengths
    src, tgt_in = tokens(gen, 4, 12, SRC_V), tokens(gen, 4, 14, TGT_V)
    assert forward_flops(cfg, np.full(4, 12), np.full(4, 14)) == counted(model, src, tgt_in)


def test_train_flops_is_three_forwards():
    cfg = make_config()
    src_lens, tgt_lens = np.array([7, 4]), np.array([5, 6])
    assert train_flops(cfg, src_lens, tgt_lens) == 3 * forward_flops(cfg, src_lens, tgt_lens)
    # and it is what a real forward + backward runs (every matmul's backward: two matmuls)
    model = model_for(dataclasses.replace(make_config(), dropout=0.0)).train()
    gen = torch.Generator().manual_seed(3)
    src, tgt_in = tokens(gen, 2, 9, SRC_V), tokens(gen, 2, 10, TGT_V)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        model(src, tgt_in).float().square().mean().backward()
    assert counter.get_total_flops() == train_flops(cfg, [9, 9], [10, 10])


def test_bad_lengths():
    cfg = make_config()
    with pytest.raises(ValueError, match="tgt_lens"):
        forward_flops(cfg, [3, 4])
    with pytest.raises(ValueError, match="differ"):
        forward_flops(cfg, [3, 4], [2])
    with pytest.raises(ValueError, match=">= 0"):
        forward_flops(cfg, [-1], [2])


def test_peaks():
    assert peak_flops(torch.device("cpu"), torch.bfloat16) is None
    start = time.perf_counter()
    peak = measured_matmul_peak(torch.device("cpu"), torch.float32, n=64, repeats=2, min_time=0.01)
    assert peak > 0 and time.perf_counter() - start < 2.0


@pytest.mark.parametrize(("positions", "beams"), [("learned", 3), ("rotary", 1)])
def test_decode_flops_counts_what_the_decoders_compute(beams, positions):
    """Greedy and beam decoding over the KV cache (EOS suppressed: exactly ``steps`` steps),
    counted by FlopCounterMode, against the analytic count; sources of different lengths."""
    from synthmath.core.vocab import EOS
    from synthmath.eval.decoding import beam_decode, greedy_decode

    cfg = make_config(positions=positions, n_dec_layers=2)
    model = model_for(cfg)
    with torch.no_grad():
        model.head.bias[EOS] = -1e9
    gen = torch.Generator().manual_seed(3)
    steps = 7
    for S in (12, 5):  # one at a time: a padded batch computes its padding
        src = tokens(gen, 2, S, SRC_V)
        counter = FlopCounterMode(display=False)
        with sdpa_kernel(SDPBackend.MATH), counter:
            if beams == 1:
                _, lengths = greedy_decode(model, src, max_len=steps)
            else:
                _, lengths = beam_decode(model, src, beams, max_len=steps)
        assert (lengths == steps).all()
        assert decode_flops(cfg, [S, S], steps, beams) == counter.get_total_flops()


def test_decode_flops_rejects_what_it_does_not_count():
    with pytest.raises(ValueError, match="rpe_k"):
        decode_flops(make_config(positions="rpe_k"), [4], 3)
    with pytest.raises(ValueError, match="beams >= 1"):
        decode_flops(make_config(), [4], 3, beams=0)
