"""Tests of greedy and beam decoding with the KV cache, and of encoder-only prediction."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from testsupport import reverse_batch

from synthmath.core.vocab import EOS, PAD
from synthmath.eval.decoding import (
    beam_decode,
    greedy_decode,
    greedy_decode_uncached,
    predict_encoder_only,
    sample_decode,
    sequence_log_probs,
)
from synthmath.nn.config import ModelConfig
from synthmath.nn.model import Transformer

V = 11  # PAD, BOS, EOS and 8 symbols


def random_model(seed: int, **overrides) -> Transformer:
    torch.manual_seed(seed)
    cfg = dict(
        src_vocab_size=V, tgt_vocab_size=V, d_model=32, n_heads=4, n_dec_layers=2, max_len=32
    )
    return Transformer(ModelConfig(**(cfg | overrides))).eval()


@pytest.fixture(scope="module")
def trained_model() -> Transformer:
    """A model trained briefly (about a second) to reverse strings: confident, not perfect."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = Transformer(ModelConfig(V, V, d_model=64, n_heads=4, d_ff=128, max_len=32))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        src, tgt = reverse_batch(64, gen, V)
        loss = F.cross_entropy(
            model(src, tgt[:, :-1]).reshape(-1, V), tgt[:, 1:].reshape(-1), ignore_index=PAD
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def padded_sources(seed: int, n: int = 12) -> torch.Tensor:
    return reverse_batch(n, torch.Generator().manual_seed(seed), V)[0]


def check_format(ids: torch.Tensor, lengths: torch.Tensor, max_len: int) -> None:
    """ids (B, L <= max_len): no EOS, PAD exactly after each length; L is the longest length."""
    assert ids.dtype == torch.long and lengths.dtype == torch.long
    assert ids.size(1) <= max_len and int(lengths.max()) == ids.size(1)
    assert not (ids == EOS).any()
    after = torch.arange(ids.size(1))[None, :] >= lengths[:, None]
    assert (ids[after] == PAD).all()


def normalised_scores(model, src, ids, lengths, max_len, length_penalty):
    ended = lengths < max_len  # a length of max_len means cut without EOS
    n_tokens = lengths + ended.long()
    return sequence_log_probs(model, src, ids, lengths, ended) / n_tokens.float() ** length_penalty


@pytest.mark.parametrize(
    "positions,norm", list(itertools.product(["learned", "sinusoidal"], ["post", "pre"]))
)
def test_cached_greedy_equals_uncached_random_model(positions, norm):
    model = random_model(1, positions=positions, norm=norm)
    src = padded_sources(1)
    for max_len in (1, 5, 20):
        cached, uncached = (
            greedy_decode(model, src, max_len),
            greedy_decode_uncached(model, src, max_len),
        )
        assert torch.equal(cached[0], uncached[0]) and torch.equal(cached[1], uncached[1])
        check_format(*cached, max_len)


def test_cached_greedy_equals_uncached_trained_model(trained_model):
    src = padded_sources(2, n=40)
    cached, uncached = (
        greedy_decode(trained_model, src, 10),
        greedy_decode_uncached(trained_model, src, 10),
    )
    assert torch.equal(cached[0], uncached[0]) and torch.equal(cached[1], uncached[1])
    check_format(*cached, 10)
    assert (cached[1] < 10).all()  # the trained model ends its answers


def best(decoded: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The first (best) hypothesis of beam_decode's output, trimmed like greedy_decode's."""
    ids, lengths = decoded[0][:, 0], decoded[1][:, 0]
    width = int(lengths.max()) if lengths.numel() else 0
    return ids[:, :width], lengths


def test_padded_batch_decodes_like_single_examples(trained_model):
    src = padded_sources(3, n=8)
    ids, lengths = greedy_decode(trained_model, src, 10)
    beam_ids, beam_lengths = best(beam_decode(trained_model, src, 3, 10))
    for i in range(8):
        alone = src[i : i + 1, : int((src[i] != PAD).sum())]
        one_ids, one_len = greedy_decode(trained_model, alone, 10)
        assert torch.equal(one_ids[0, : one_len[0]], ids[i, : lengths[i]])
        one_ids, one_len = best(beam_decode(trained_model, alone, 3, 10))
        assert torch.equal(one_ids[0, : one_len[0]], beam_ids[i, : beam_lengths[i]])


@pytest.mark.parametrize("length_penalty", [1.0, 0.0, 0.6])
def test_beam_one_is_greedy(trained_model, length_penalty):
    for model in (random_model(4), random_model(5, norm="pre"), trained_model):
        src = padded_sources(4)
        greedy, beam = (
            greedy_decode(model, src, 12),
            best(beam_decode(model, src, 1, 12, length_penalty)),
        )
        assert torch.equal(greedy[0], beam[0]) and torch.equal(greedy[1], beam[1])


@pytest.mark.parametrize("length_penalty", [1.0, 0.0])
def test_beam_scores_at_least_greedy(trained_model, length_penalty):
    src = padded_sources(5, n=64)
    max_len = 10
    greedy = greedy_decode(trained_model, src, max_len)
    beam = best(beam_decode(trained_model, src, 5, max_len, length_penalty))
    check_format(*beam, max_len)
    greedy_score = normalised_scores(trained_model, src, *greedy, max_len, length_penalty)
    beam_score = normalised_scores(trained_model, src, *beam, max_len, length_penalty)
    assert (beam_score >= greedy_score - 1e-5).all()
    assert (beam_score > greedy_score + 1e-4).any()  # the half-trained model has some room


def test_wide_beam_finds_the_best_hypothesis():
    """With room for every hypothesis, the beam returns the exhaustive-search optimum."""
    torch.manual_seed(6)
    model = Transformer(
        ModelConfig(7, 5, d_model=16, n_heads=2, max_len=8)
    ).eval()  # 5 target tokens
    with torch.no_grad():
        model.head.bias[EOS] += 1.5  # make short, finished answers competitive
    src = torch.tensor([[3, 4, 5], [6, 3, 0]])
    max_len = 3
    ordinary = [t for t in range(5) if t != EOS]
    hypotheses = []  # (tokens, ended)
    for n in range(max_len):
        hypotheses += [(list(seq), True) for seq in itertools.product(ordinary, repeat=n)]
    hypotheses += [(list(seq), False) for seq in itertools.product(ordinary, repeat=max_len)]
    x = torch.tensor([seq + [PAD] * (max_len - len(seq)) for seq, _ in hypotheses])
    n = torch.tensor([len(seq) for seq, _ in hypotheses])
    ended = torch.tensor([e for _, e in hypotheses])
    logp = [
        sequence_log_probs(model, src[b : b + 1].expand(len(x), -1), x, n, ended) for b in range(2)
    ]
    for length_penalty in (0.0, 1.0, 2.0):
        ids, lengths = best(beam_decode(model, src, len(hypotheses), max_len, length_penalty))
        for b in range(2):
            scores = logp[b] / (n + ended.long()).float() ** length_penalty
            best_seq, best_ended = hypotheses[int(scores.argmax())]
            assert ids[b, : lengths[b]].tolist() == best_seq
            assert (int(lengths[b]) < max_len) == best_ended


def test_max_len_is_respected():
    model = random_model(7)
    with torch.no_grad():
        model.head.bias[EOS] = -1e4  # never ends
    src = padded_sources(7)
    for max_len in (1, 3, 7):
        for ids, lengths in (
            greedy_decode(model, src, max_len),
            best(beam_decode(model, src, 4, max_len)),
        ):
            assert ids.shape == (12, max_len) and (lengths == max_len).all()
            assert not (ids == PAD).any()
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(model, src, 40)  # beyond the model's positions


def count_decoder_steps(model: Transformer, monkeypatch) -> list[int]:
    calls = []
    step = model.decode_step

    def counting_step(tgt, cache):
        calls.append(tgt.size(1))
        return step(tgt, cache)

    monkeypatch.setattr(model, "decode_step", counting_step)
    return calls


def test_early_stop_when_all_rows_end(monkeypatch):
    model = random_model(8)
    with torch.no_grad():
        model.head.bias[EOS] = 1e4  # ends at once
    calls = count_decoder_steps(model, monkeypatch)
    src = padded_sources(8)
    for decode in (
        lambda: greedy_decode(model, src, 20),
        lambda: best(beam_decode(model, src, 5, 20)),
    ):
        calls.clear()
        ids, lengths = decode()
        assert ids.shape == (12, 0) and (lengths == 0).all()
        assert calls == [1]


def test_early_stop_waits_for_the_longest_row(trained_model, monkeypatch):
    src = padded_sources(9, n=16)
    expected = greedy_decode_uncached(trained_model, src, 30)
    calls = count_decoder_steps(trained_model, monkeypatch)
    ids, lengths = greedy_decode(trained_model, src, 30)
    assert torch.equal(ids, expected[0])
    assert len(calls) == int(lengths.max()) + 1 < 30  # one step emits the last EOS
    assert len(set(lengths.tolist())) > 1  # rows of different lengths, padded


def test_decoding_restores_training_mode(trained_model):
    trained_model.train()
    try:
        greedy_decode(trained_model, padded_sources(10), 5)
        assert trained_model.training
    finally:
        trained_model.eval()


def test_decoders_reject_encoder_only_models():
    model = random_model(11, arch="encoder_only")
    with pytest.raises(ValueError, match="encoder_decoder"):
        greedy_decode(model, padded_sources(11), 5)


def test_predict_encoder_only():
    model = random_model(12, arch="encoder_only", positions="sinusoidal")
    src = padded_sources(12)
    ids, lengths = predict_encoder_only(model, src)
    assert ids.shape == src.shape and lengths.shape == (12,)
    src_lengths = (src != PAD).sum(1)
    assert (lengths <= src_lengths).all()
    after = torch.arange(src.size(1))[None, :] >= lengths[:, None]
    assert (ids[after] == PAD).all()
    assert not ((ids == EOS) | (ids == PAD))[~after].any()
    with torch.no_grad():
        argmax = model(src).argmax(-1)
        assert torch.equal(ids[~after], argmax[~after])
        model.head.bias[5] = 1e4  # predicts token 5 everywhere: sequences as long as the sources
    ids, lengths = predict_encoder_only(model, src)
    assert torch.equal(lengths, src_lengths) and (ids[src != PAD] == 5).all()
    with torch.no_grad():
        model.head.bias[EOS] = 2e4  # EOS everywhere: empty predictions
    ids, lengths = predict_encoder_only(model, src)
    assert (lengths == 0).all() and (ids == PAD).all()


@pytest.mark.parametrize("length_penalty", [1.0, 0.0])
def test_beam_returns_every_hypothesis_in_rank_order(trained_model, length_penalty):
    """All K beams come back, distinct, by non-increasing score; the first is the best."""
    src = padded_sources(10, n=16)
    max_len, K = 10, 4
    ids, lengths = beam_decode(trained_model, src, K, max_len, length_penalty)
    assert ids.shape[:2] == (16, K) and lengths.shape == (16, K)
    flat_ids, flat_len = ids.reshape(16 * K, -1), lengths.reshape(-1)
    ended = flat_len < max_len
    logp = sequence_log_probs(trained_model, src.repeat_interleave(K, 0), flat_ids, flat_len, ended)
    scores = (logp / (flat_len + ended.long()).float() ** length_penalty).view(16, K)
    assert (scores[:, :-1] >= scores[:, 1:] - 1e-4).all()
    for b in range(16):
        seqs = {tuple(ids[b, k, : lengths[b, k]].tolist()) for k in range(K)}
        assert len(seqs) == K  # distinct hypotheses
    wide = best(beam_decode(trained_model, src, K, max_len, length_penalty))
    assert torch.equal(wide[1], lengths[:, 0])


def test_sampling_at_low_temperature_is_greedy(trained_model):
    src = padded_sources(6, n=10)
    greedy = greedy_decode(trained_model, src, 10)
    for temperature in (0.0, 1e-4):
        gen = torch.Generator().manual_seed(0)
        ids, lengths = sample_decode(trained_model, src, 3, 10, temperature, gen)
        assert ids.shape[:2] == lengths.shape == (10, 3)
        for k in range(3):
            width = int(lengths[:, k].max())
            assert torch.equal(lengths[:, k], greedy[1])
            assert torch.equal(ids[:, k, :width], greedy[0])


def test_sampling_is_seeded_and_has_beam_shapes(trained_model):
    src = padded_sources(7, n=6)

    def draw(seed: int):
        return sample_decode(trained_model, src, 8, 10, 1.5, torch.Generator().manual_seed(seed))

    (a, la), (b, lb), (c, _) = draw(1), draw(1), draw(2)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)
    assert a.shape[:2] == la.shape == (6, 8)
    check_format(a.view(48, -1), la.view(48), 10)
    assert len({tuple(a[0, k, : la[0, k]].tolist()) for k in range(8)}) > 1  # T > 1: diverse
    with pytest.raises(ValueError, match="n_samples"):
        sample_decode(trained_model, src, 0, 10)
