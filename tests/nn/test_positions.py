"""Tests of the position variants: relative (rpe_k, rpe_kq, rotary, alibi) and abacus."""

from __future__ import annotations

import pytest
import torch

from synthmath.core.errors import ConfigError
from synthmath.core.vocab import BOS, PAD
from synthmath.eval.decoding import beam_decode, greedy_decode, greedy_decode_uncached
from synthmath.nn.config import ModelConfig
from synthmath.nn.model import Transformer
from synthmath.nn.positions import AbacusPositions, digit_run_index
from synthmath.nn.relative_positions import (
    AlibiPositions,
    RelativePositions,
    RotaryPositions,
    alibi_slopes,
)

V = 16  # PAD, BOS, EOS, ten digits (3..12), three operators (13..15)
DIGITS = list(range(3, 13))
PLUS, EQUALS = 13, 14
RELATIVE = ["rpe_k", "rpe_kq", "rotary", "alibi"]
NEW_VARIANTS = [*RELATIVE, "abacus"]


def config(positions: str, **overrides) -> ModelConfig:
    base = dict(
        src_vocab_size=V,
        tgt_vocab_size=V,
        d_model=32,
        n_heads=4,
        n_enc_layers=2,
        n_dec_layers=2,
        max_len=24,
        positions=positions,
        src_digit_ids=DIGITS,
        tgt_digit_ids=DIGITS,
    )
    return ModelConfig(**(base | overrides))


def model_of(positions: str, seed: int = 0, **overrides) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(config(positions, **overrides)).eval()


def sums(gen: torch.Generator, n: int, width: int = 4) -> torch.Tensor:
    """Random ``a + b =`` problems of digit tokens, right-padded, lengths vary."""
    rows = []
    for _ in range(n):
        la, lb = (int(x) for x in torch.randint(1, width + 1, (2,), generator=gen))
        a, b = (torch.randint(3, 13, (m,), generator=gen) for m in (la, lb))
        rows.append(torch.cat([a, torch.tensor([PLUS]), b, torch.tensor([EQUALS])]))
    out = torch.full((n, 2 * width + 2), PAD)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


# ---- the attention-side terms against naive references ---------------------------------------


@pytest.mark.parametrize("query_side", [False, True])
@pytest.mark.parametrize("max_distance", [None, 3])
@pytest.mark.parametrize("q_start,n_queries", [(0, 7), (5, 2), (6, 1)])
def test_relative_bias_matches_double_loop(query_side, max_distance, q_start, n_queries):
    torch.manual_seed(0)
    hs, max_len = 4, 12
    module = RelativePositions(hs, max_len, max_distance, query_side=query_side)
    torch.nn.init.normal_(module.table.weight)
    n_keys = q_start + n_queries
    q, k = torch.randn(2, 3, n_queries, hs), torch.randn(2, 3, n_keys, hs)
    reach = max_len - 1 if max_distance is None else max_distance
    a = module.table.weight.detach()  # row reach + d holds a[d]
    expected = torch.zeros(2, 3, n_queries, n_keys)
    for r in range(n_queries):
        for j in range(n_keys):
            d = max(-reach, min(reach, j - (q_start + r)))
            term = q[:, :, r] @ a[reach + d]
            if query_side:
                term = term + k[:, :, j] @ a[reach + d]
            expected[:, :, r, j] = term / hs**0.5
    torch.testing.assert_close(module.bias(q, k, q_start), expected, atol=1e-5, rtol=1e-5)


def test_rotary_matches_complex_reference_and_depends_on_distance_only():
    torch.manual_seed(1)
    hs, max_len = 8, 40
    module = RotaryPositions(hs, max_len)
    x = torch.randn(1, 1, 5, hs)
    rotated, _ = module.rotate(x, x, 30)
    # reference: pair p = (x_p, x_{p+hs/2}) as a complex number times exp(i * pos * theta_p)
    theta = 10000.0 ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)
    pos = torch.arange(30, 35, dtype=torch.float64)[:, None]
    z = torch.complex(x[0, 0, :, : hs // 2].double(), x[0, 0, :, hs // 2 :].double())
    ref = z * torch.exp(1j * pos * theta)
    torch.testing.assert_close(rotated[0, 0, :, : hs // 2].double(), ref.real, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotated[0, 0, :, hs // 2 :].double(), ref.imag, atol=1e-5, rtol=0)

    q, k = torch.randn(1, 1, 1, hs), torch.randn(1, 1, 1, hs)

    def score(i: int, j: int) -> float:
        return float(module.rotate(q, q, i)[0].flatten() @ module.rotate(k, k, j)[1].flatten())

    for d in (-7, 0, 3):
        same = [score(i, i + d) for i in (max(0, -d), 10, 20)]
        assert max(same) - min(same) < 1e-4
    assert abs(score(5, 8) - score(5, 9)) > 1e-3  # another distance, another score


def test_alibi_slopes_and_bias():
    torch.testing.assert_close(alibi_slopes(8), 2.0 ** -torch.arange(1, 9, dtype=torch.float32))
    expected6 = [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3]  # 4 heads, then 8's odd
    torch.testing.assert_close(alibi_slopes(6), torch.tensor(expected6))
    module = AlibiPositions(n_heads=2, max_len=10)
    bias = module.bias(torch.zeros(1, 2, 2, 4), torch.zeros(1, 2, 6, 4), q_start=4)
    for h, m in enumerate([2.0**-4, 2.0**-8]):
        for r in range(2):
            for j in range(6):
                assert bias[0, h, r, j] == pytest.approx(-m * abs(j - (4 + r)))


# ---- the model: shift invariance and digit indices ------------------------------------------


@pytest.mark.parametrize("positions", [*RELATIVE, "none", "learned"])
def test_encoder_outputs_shift_invariant_for_relative_variants(positions):
    """Left PAD (masked keys) shifts the real tokens; only absolute positions notice."""
    model = model_of(positions, arch="encoder_only", n_dec_layers=0)
    src = sums(torch.Generator().manual_seed(2), 1, width=5)
    src = src[:, : int((src != PAD).sum())]  # one unpadded problem
    n = src.size(1)
    with torch.no_grad():
        plain = model(src)
        for shift in (1, 5):
            shifted = torch.cat([torch.full((1, shift), PAD), src], dim=1)
            moved = model(shifted)[:, shift:]
            if positions == "learned":
                assert (moved - plain).abs().amax() > 1e-3
            else:
                torch.testing.assert_close(moved, plain, atol=1e-5, rtol=1e-5)
    assert n > 4


def test_abacus_outputs_depend_on_tokens_and_digit_indices_only():
    model = model_of("abacus", arch="encoder_only", n_dec_layers=0)
    a, b = [5, 7, 3], [9, 4]
    first = torch.tensor([[*a, PLUS, *b, EQUALS]])
    swapped = torch.tensor([[*b, PLUS, *a, EQUALS]])
    shifted = torch.cat([torch.full((1, 4), PAD), first], dim=1)
    with torch.no_grad():
        out_first, out_swapped, out_shifted = model(first), model(swapped), model(shifted)
    torch.testing.assert_close(out_shifted[:, 4:], out_first, atol=1e-5, rtol=1e-5)
    # same (token, index inside its number) -> same output, wherever the number sits
    for cols_swapped, cols_first in [
        ((0, 2), (4, 6)),
        ((2, 3), (3, 4)),
        ((3, 6), (0, 3)),
        ((6, 7), (6, 7)),
    ]:
        torch.testing.assert_close(
            out_swapped[:, slice(*cols_swapped)],
            out_first[:, slice(*cols_first)],
            atol=1e-5,
            rtol=1e-5,
        )
    # the same digit at another index inside its number gets another output
    other = torch.tensor([[7, 5, 3, PLUS, *b, EQUALS]])
    with torch.no_grad():
        assert (model(other)[0, 1] - out_first[0, 0]).abs().amax() > 1e-3


def test_digit_run_index_matches_a_loop_and_carries_across_chunks():
    gen = torch.Generator().manual_seed(3)
    is_digit = torch.rand(6, 20, generator=gen) < 0.7
    expected = torch.zeros(6, 20, dtype=torch.long)
    for b in range(6):
        run = 0
        for t in range(20):
            run = run + 1 if is_digit[b, t] else 0
            expected[b, t] = run
    assert torch.equal(digit_run_index(is_digit), expected)
    carry, pieces = None, []
    for lo, hi in [(0, 1), (1, 2), (2, 9), (9, 20)]:  # as incremental decoding feeds it
        index = digit_run_index(is_digit[:, lo:hi], carry)
        pieces.append(index)
        carry = index[:, -1]
    assert torch.equal(torch.cat(pieces, dim=1), expected)


def test_abacus_random_offset_in_training_only():
    torch.manual_seed(4)
    module = AbacusPositions(max_len=10, d_model=8, digit_ids=DIGITS, vocab_size=V, max_offset=3)
    ids = torch.full((64, 10), 5)  # a run filling the whole sequence: the largest indices
    ids[:, 0] = PLUS
    tok = torch.zeros(64, 10, 8)
    module.eval()
    assert torch.equal(module(tok, ids), module(tok, ids))
    assert torch.equal(module(tok, ids)[:, 0], torch.zeros(64, 8))  # a non-digit: no position
    torch.testing.assert_close(module(tok, ids)[0, 1:], module.table.weight[:9])  # rows 0..8
    module.train()
    out = module(tok, ids)  # 64 rows: every offset 0..3 drawn, the last row of the table used
    starts = [int((module.table.weight == row).all(dim=1).nonzero()) for row in out[:, 1]]
    assert sorted(set(starts)) == [0, 1, 2, 3]
    for b, offset in enumerate(starts):  # one offset per sequence, on every digit
        torch.testing.assert_close(out[b, 1:], module.table.weight[offset : offset + 9])


def test_encoder_and_decoder_share_the_abacus_offset_of_an_example():
    model = model_of("abacus", seed=11, abacus_offset=6).train()  # no dropout: offsets only
    gen = torch.Generator().manual_seed(11)
    src, tgt = sums(gen, 8), torch.randint(3, V, (8, 6), generator=gen)
    with torch.no_grad():
        torch.manual_seed(12)
        logits = model(src, tgt)
        torch.manual_seed(12)  # the same draw, made by hand
        state = model.src_embed.pos.initial_state(8, src.device)
        assert state[:, 1].unique().numel() > 1  # offsets differ between examples
        memory, src_pad_mask = model.encode(src, state)
        torch.testing.assert_close(model.decode(tgt, memory, src_pad_mask, state), logits)
        other = state.clone()
        other[:, 1] = (other[:, 1] + 1) % 7  # the decoder on another offset
        assert (model.decode(tgt, memory, src_pad_mask, other) - logits).abs().amax() > 1e-4


# ---- decoding with the KV cache ------------------------------------------------------------


@pytest.mark.parametrize(
    "positions,extra", [(p, {}) for p in NEW_VARIANTS] + [("rpe_k", {"max_distance": 2})]
)
def test_cached_greedy_equals_uncached(positions, extra):
    model = model_of(positions, seed=5, **extra)
    src = sums(torch.Generator().manual_seed(5), 10)
    for max_len in (1, 6, 16):
        cached, uncached = (
            greedy_decode(model, src, max_len),
            greedy_decode_uncached(model, src, max_len),
        )
        assert torch.equal(cached[0], uncached[0]) and torch.equal(cached[1], uncached[1])
    beam = beam_decode(model, src, 1, 16)
    beam = (beam[0][:, 0, : int(beam[1].max())], beam[1][:, 0])
    assert torch.equal(beam[0], cached[0]) and torch.equal(beam[1], cached[1])


@pytest.mark.parametrize("positions", NEW_VARIANTS)
def test_cache_reorder_moves_the_position_state(positions):
    """After a beam reorder, cached steps give the logits of the reordered full sequences."""
    model = model_of(positions, seed=6)
    gen = torch.Generator().manual_seed(6)
    src = sums(gen, 1).repeat(3, 1)  # beams of one example share its cross-attention
    tgt = torch.randint(3, V, (3, 6), generator=gen)
    tgt[:, 0] = BOS
    tgt[0, 2] = PLUS  # a non-digit inside one row: the abacus run restarts there
    order = torch.tensor([2, 0, 0])
    with torch.no_grad():
        memory, src_pad_mask = model.encode(src)
        cache = model.init_cache(memory, src_pad_mask, 8)
        model.decode_step(tgt[:, :1], cache)
        model.decode_step(tgt[:, 1:3], cache)
        cache.reorder(order)
        moved = tgt[order]
        steps = [model.decode_step(moved[:, t : t + 1], cache) for t in (3, 4, 5)]
        full = model.decode(moved, memory[order], src_pad_mask[order])
    torch.testing.assert_close(torch.cat(steps, dim=1), full[:, 3:], atol=1e-5, rtol=1e-5)


# ---- lengths, gradients, equivalences, configuration --------------------------------------


@pytest.mark.parametrize("positions", NEW_VARIANTS)
@pytest.mark.parametrize("arch", ["encoder_decoder", "encoder_only"])
def test_any_length_up_to_max_len(positions, arch):
    model = model_of(positions, arch=arch, max_len=16)
    src = torch.randint(3, V, (2, 16))
    tgt = torch.randint(3, V, (2, 16)) if arch == "encoder_decoder" else None
    with torch.no_grad():
        assert torch.isfinite(model(src, tgt)).all()
        with pytest.raises(ValueError, match=r"17 positions exceeds model\.max_len=16"):
            model(torch.randint(3, V, (2, 17)), tgt)
        if arch == "encoder_decoder":
            with pytest.raises(ValueError, match=r"model\.max_len=16"):
                model(src, torch.randint(3, V, (2, 17)))


@pytest.mark.parametrize("positions", ["rpe_k", "rpe_kq", "abacus"])
def test_position_tables_receive_gradients(positions):
    model = model_of(positions, seed=7).train()
    gen = torch.Generator().manual_seed(7)
    src = sums(gen, 4)
    tgt = torch.randint(3, V, (4, 7), generator=gen)
    model(src, tgt).logsumexp(-1).sum().backward()
    tables = {n: p for n, p in model.named_parameters() if ".pos." in n}
    expected = 2 if positions == "abacus" else 4  # embedders, or self-attention layers
    assert len(tables) == expected
    for name, param in tables.items():
        assert param.grad is not None and param.grad.abs().amax() > 0, name
        assert torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize("positions", ["rpe_k", "rpe_kq", "abacus"])
def test_zero_tables_give_the_model_without_positions(positions):
    """The new terms are the only difference to ``none`` (and they matter once non-zero)."""
    model, plain = model_of(positions, seed=8), model_of("none", seed=9)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".pos." in name:
                param.normal_()  # the initial std 0.02 leaves the relative terms tiny
    plain.load_state_dict(model.state_dict(), strict=False)
    src = sums(torch.Generator().manual_seed(8), 3)
    tgt = torch.randint(3, V, (3, 5), generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        assert (model(src, tgt) - plain(src, tgt)).abs().amax() > 1e-4
        for name, param in model.named_parameters():
            if ".pos." in name:
                param.zero_()
        torch.testing.assert_close(model(src, tgt), plain(src, tgt), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("positions", NEW_VARIANTS)
def test_bf16_autocast_forward(positions):
    model = model_of(positions, seed=10)
    src = sums(torch.Generator().manual_seed(10), 3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(src, torch.randint(3, V, (3, 5)))
    assert torch.isfinite(logits.float()).all()


@pytest.mark.parametrize(
    "overrides,field",
    [
        (dict(positions="abacus", src_digit_ids=None), "src_digit_ids"),
        (dict(positions="abacus", tgt_digit_ids=None), "tgt_digit_ids"),
        (dict(src_digit_ids=[3, 16]), "src_digit_ids"),  # 16 is outside the vocabulary
        (dict(tgt_digit_ids=[]), "tgt_digit_ids"),
        (dict(positions="rotary", d_model=36, n_heads=4), "n_heads"),  # head size 9
        (dict(max_distance=0), "max_distance"),
        (dict(abacus_offset=-1), "abacus_offset"),
    ],
)
def test_validation_names_the_field(overrides, field):
    cfg = config("rpe_k")
    for key, value in overrides.items():  # assigned after building: validate() checks them
        setattr(cfg, key, value)
    with pytest.raises(ConfigError, match=rf"^model\.{field}: "):
        cfg.validate(where="model")


def test_encoder_only_abacus_needs_source_digits_only():
    config("abacus", arch="encoder_only", n_dec_layers=0, tgt_digit_ids=None).validate()
