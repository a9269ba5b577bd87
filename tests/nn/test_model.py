"""Tests of the Transformer: shapes, masking, configuration errors, and that it learns."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F

from synthmath.core.errors import ConfigError
from synthmath.core.vocab import BOS, EOS, PAD
from synthmath.eval.decoding import greedy_decode
from synthmath.nn.attention import _attend_matmul, attend
from synthmath.nn.config import ModelConfig
from synthmath.nn.model import Transformer
from synthmath.nn.relative_positions import AttentionPositions

SRC_V, TGT_V = 17, 13
VARIANTS = list(itertools.product(["learned", "sinusoidal", "none"], ["post", "pre"]))


def small_config(**overrides) -> ModelConfig:
    base = dict(
        src_vocab_size=SRC_V,
        tgt_vocab_size=TGT_V,
        d_model=32,
        n_heads=4,
        n_enc_layers=2,
        n_dec_layers=2,
        max_len=40,
    )
    return ModelConfig(**(base | overrides))


def padded_src(gen: torch.Generator, lengths: list[int], width: int) -> torch.Tensor:
    src = torch.randint(3, SRC_V, (len(lengths), width), generator=gen)
    for i, n in enumerate(lengths):
        src[i, n:] = PAD
    return src


def target_in(gen: torch.Generator, B: int, T: int) -> torch.Tensor:
    tgt = torch.randint(3, TGT_V, (B, T), generator=gen)
    tgt[:, 0] = BOS
    return tgt


@pytest.mark.parametrize("positions,norm", VARIANTS)
@pytest.mark.parametrize("arch", ["encoder_decoder", "encoder_only"])
def test_output_shapes(arch, positions, norm):
    torch.manual_seed(0)
    model = Transformer(small_config(arch=arch, positions=positions, norm=norm, activation="gelu"))
    gen = torch.Generator().manual_seed(0)
    src = padded_src(gen, [7, 5, 2], 7)
    memory, src_pad_mask = model.encode(src)
    assert memory.shape == (3, 7, 32) and src_pad_mask.shape == (3, 7)
    assert torch.equal(src_pad_mask, src == PAD)
    if arch == "encoder_decoder":
        logits = model(src, target_in(gen, 3, 9))
        assert logits.shape == (3, 9, TGT_V)
        with pytest.raises(ValueError, match="tgt_in"):
            model(src)
    else:
        logits = model(src)
        assert logits.shape == (3, 7, TGT_V)
    assert torch.isfinite(logits).all()
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_parameter_count_of_the_transpose_model():
    # 1+1 layers, d=256: embeddings, learned positions, post-norm LayerNorms, output layer
    cfg = ModelConfig(src_vocab_size=1230, tgt_vocab_size=1230)
    d, ff, V = 256, 1024, 1230
    attn = 4 * d * d + 4 * d
    mlp = 2 * d * ff + ff + d
    ln = 2 * d
    expected = (
        2 * (V * d + 1024 * d + ln)  # token embeddings, positions and embedding norm, both sides
        + (attn + mlp + 2 * ln)  # encoder layer
        + (2 * attn + mlp + 3 * ln)  # decoder layer
        + (d * V + V)  # output layer
    )
    assert Transformer(cfg).num_parameters() == expected


@pytest.mark.parametrize("positions,norm", VARIANTS)
def test_padding_invariance(positions, norm):
    """An example alone gives the same encoder output and logits as inside a padded batch."""
    torch.manual_seed(1)
    model = Transformer(small_config(positions=positions, norm=norm)).eval()
    gen = torch.Generator().manual_seed(1)
    src_lengths, tgt_lengths = [9, 4, 6, 1], [7, 3, 5, 2]
    src = padded_src(gen, src_lengths, 9)
    tgt = target_in(gen, 4, 7)
    for i, n in enumerate(tgt_lengths):
        tgt[i, n:] = PAD  # target padding follows EOS; causal masking keeps it out
    with torch.no_grad():
        memory, _ = model.encode(src)
        logits = model(src, tgt)
        for i, (ns, nt) in enumerate(zip(src_lengths, tgt_lengths)):
            alone_memory, _ = model.encode(src[i : i + 1, :ns])
            alone_logits = model(src[i : i + 1, :ns], tgt[i : i + 1, :nt])
            torch.testing.assert_close(memory[i, :ns], alone_memory[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(logits[i, :nt], alone_logits[0], atol=1e-5, rtol=0)


def test_padding_invariance_encoder_only():
    torch.manual_seed(2)
    model = Transformer(small_config(arch="encoder_only")).eval()
    src = padded_src(torch.Generator().manual_seed(2), [8, 3, 5], 8)
    with torch.no_grad():
        logits = model(src)
        for i, n in enumerate([8, 3, 5]):
            torch.testing.assert_close(
                logits[i, :n], model(src[i : i + 1, :n])[0], atol=1e-5, rtol=0
            )


def test_all_padding_source_stays_finite():
    model = Transformer(small_config()).eval()
    src = torch.zeros(2, 5, dtype=torch.long)
    src[0, :3] = 4
    with torch.no_grad():
        logits = model(src, torch.full((2, 3), BOS))
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_causal_masking(norm):
    torch.manual_seed(3)
    model = Transformer(small_config(norm=norm)).eval()
    gen = torch.Generator().manual_seed(3)
    src, tgt = padded_src(gen, [6, 4], 6), target_in(gen, 2, 8)
    changed = tgt.clone()
    changed[:, 5] = (tgt[:, 5] - 3 + 1) % (TGT_V - 3) + 3  # another ordinary token
    with torch.no_grad():
        before, after = model(src, tgt), model(src, changed)
    torch.testing.assert_close(before[:, :5], after[:, :5], atol=1e-6, rtol=0)
    assert (before[:, 5:] - after[:, 5:]).abs().amax() > 1e-4


@pytest.mark.parametrize(
    "field,value",
    [
        ("arch", "decoder_only"),
        ("positions", "fire"),  # not implemented
        ("norm", "sandwich"),
        ("activation", "swish"),
        ("d_model", 0),
        ("n_heads", 5),  # does not divide d_model=32
        ("n_enc_layers", 0),
        ("n_dec_layers", 0),
        ("d_ff", -4),
        ("dropout", 1.5),
        ("max_len", 0),
        ("src_vocab_size", 2),
        ("tgt_vocab_size", 1.5),
    ],
)
def test_validate_names_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"^{field}: "):  # building checks it
        dataclasses.replace(small_config(), **{field: value})
    cfg = small_config()
    setattr(cfg, field, value)  # assigned after building: validate() checks it again
    with pytest.raises(ConfigError, match=rf"^model\.{field}: "):
        cfg.validate(where="model")
    with pytest.raises(ValueError, match=rf"^{field}: "):
        Transformer(cfg)


def test_validate_lists_allowed_values():
    with pytest.raises(ValueError, match="learned, sinusoidal, none"):
        small_config(positions="fire").validate()
    small_config(arch="encoder_only", n_dec_layers=0).validate()  # no decoder needed


def test_positions_beyond_max_len_raise():
    model = Transformer(small_config(max_len=8))
    with pytest.raises(ValueError, match="max_len"):
        model.encode(torch.full((1, 9), 4))


def test_matmul_attention_matches_sdpa():
    """The CPU fast path (two matmuls) and SDPA agree, with masks, offsets and biases."""
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 3, n, 8, generator=gen) for n in (4, 6, 6))
    keep = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    keep[1, ..., 4:] = False
    bias = torch.randn(1, 3, 4, 6, generator=gen)
    for mask in (None, keep, bias, bias.masked_fill(~keep, float("-inf"))):
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        torch.testing.assert_close(_attend_matmul(q, k, v, mask), expected, atol=1e-5, rtol=1e-5)
    # causal with fewer queries than keys: query i is position 2 + i and sees keys 0..2+i
    tri = torch.ones(4, 6, dtype=torch.bool).tril(diagonal=2)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=tri)
    torch.testing.assert_close(attend(q, k, v, causal=True), expected, atol=1e-5, rtol=1e-5)


class ShiftedScores(AttentionPositions):
    """A stand-in relative-position module: a constant bias per (query - key) distance."""

    def bias(self, q, k, q_start):
        qpos = torch.arange(q_start, q_start + q.size(-2))[:, None]
        kpos = torch.arange(k.size(-2))[None, :]
        return 5.0 * torch.cos((qpos - kpos).float())  # (Tq, Tk), broadcast over B, H


def test_attention_position_hook():
    """Relative positions plug in through each self-attention's ``pos`` without other changes."""
    torch.manual_seed(5)
    model = Transformer(small_config(positions="none")).eval()
    gen = torch.Generator().manual_seed(5)
    src, tgt = padded_src(gen, [6, 3], 6), target_in(gen, 2, 5)
    with torch.no_grad():
        plain = model(src, tgt)
        self_attns = [block.attn.fn for block in model.encoder] + [
            block.self_attn.fn for block in model.decoder
        ]
        for attn in self_attns:
            attn.pos = AttentionPositions()  # identity hook: nothing changes
        torch.testing.assert_close(model(src, tgt), plain, atol=1e-6, rtol=0)
        for attn in self_attns:
            attn.pos = ShiftedScores()
        assert (model(src, tgt) - plain).abs().amax() > 1e-4
    # the cached decoder passes the right query offsets to the hook
    from synthmath.eval.decoding import greedy_decode_uncached

    cached, uncached = greedy_decode(model, src, 7), greedy_decode_uncached(model, src, 7)
    assert torch.equal(cached[0], uncached[0]) and torch.equal(cached[1], uncached[1])


def test_bf16_autocast_forward():
    torch.manual_seed(6)
    model = Transformer(small_config())
    gen = torch.Generator().manual_seed(6)
    src, tgt = padded_src(gen, [6, 2], 6), target_in(gen, 2, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(src, tgt)
    logits.float().sum().backward()
    assert torch.isfinite(logits.float()).all()
    with torch.no_grad():
        torch.testing.assert_close(logits.float(), model(src, tgt), atol=0.1, rtol=0.1)


def reverse_batch(n: int, gen: torch.Generator, max_len: int = 6, n_symbols: int = 8):
    """Random digit strings and their reversals: src (n, max_len), tgt [BOS rev EOS PAD..]."""
    lengths = torch.randint(1, max_len + 1, (n,), generator=gen)
    real = torch.arange(max_len)[None, :] < lengths[:, None]
    src = torch.randint(3, 3 + n_symbols, (n, max_len), generator=gen) * real
    rev = src.gather(1, (lengths[:, None] - 1 - torch.arange(max_len)).clamp(min=0)) * real
    tgt = torch.zeros(n, max_len + 2, dtype=torch.long)
    tgt[:, 0] = BOS
    tgt[:, 1:-1] = rev
    tgt.scatter_(1, lengths[:, None] + 1, EOS)
    return src, tgt, rev, lengths


def test_learns_to_reverse():
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(7)
    model = Transformer(ModelConfig(11, 11, d_model=64, n_heads=4, d_ff=128, max_len=16))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        src, tgt, _, _ = reverse_batch(64, gen)
        logits = model(src, tgt[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 11), tgt[:, 1:].reshape(-1), ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    src, _, rev, lengths = reverse_batch(200, gen)
    ids, out_lengths = greedy_decode(model, src, 8)
    correct = [
        int(out_lengths[i]) == int(lengths[i])
        and torch.equal(ids[i, : lengths[i]], rev[i, : lengths[i]])
        for i in range(200)
    ]
    assert sum(correct) >= 195


def test_encoder_only_learns_to_copy_shifted():
    """Encoder-only: output token = input token + 1 (mod the symbols), PAD where the input is PAD."""
    torch.manual_seed(8)
    gen = torch.Generator().manual_seed(8)
    model = Transformer(
        ModelConfig(11, 11, arch="encoder_only", n_enc_layers=1, d_model=32, n_heads=2, max_len=8)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        src, _, _, _ = reverse_batch(64, gen)
        tgt = torch.where(src == PAD, PAD, (src - 3 + 1) % 8 + 3)
        loss = F.cross_entropy(model(src).reshape(-1, 11), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
