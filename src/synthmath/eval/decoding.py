"""Turning a trained model's outputs into predicted token sequences.

Output format of every decoder (beam search and sampling: per hypothesis, see
:func:`beam_decode`, :func:`sample_decode`):
``ids (B, L)`` holding the generated tokens after BOS, up to
and excluding EOS, padded with PAD, and ``lengths (B,)``. ``max_len`` is the most tokens
generated per example, EOS included: a sequence with no EOS after ``max_len`` tokens is
returned cut there (length ``max_len``) and scored as it is.

Greedy and beam search run the decoder one position at a time over a KV cache
(:meth:`Transformer.decode_step`); only the loop over time steps is Python. Beam search keeps
``B * beam_size`` rows; a finished hypothesis stays in its beam (extended by PAD at no cost)
and competes with the others on its length-normalised score::

    score(y) = sum_i log p(y_i | y_<i, x) / len(y) ** length_penalty

where ``y`` holds the generated tokens including the final EOS (a hypothesis cut at
``max_len`` counts ``max_len`` tokens). ``length_penalty=0`` ranks by total log-probability,
``1`` by mean log-probability per token. Hypotheses of one example are ranked by this score
at every step, so ``beam_size=1`` is greedy decoding. An example stops once no unfinished
hypothesis can still beat its best finished one, whatever comes next (exact for
``length_penalty >= 0`` and for negative ones too: the bound takes the worse length).

Computation is in the model's dtype (fp32 unless the caller wraps the call in autocast);
log-probabilities and the argmax are taken in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from synthmath.core.vocab import BOS, EOS, PAD
from synthmath.nn.model import Transformer


@contextlib.contextmanager
def _eval_mode(model: Transformer) -> Iterator[None]:
    """Decode without dropout, then give the model back in the mode it came in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _check(model: Transformer, src: Tensor, max_len: int) -> Tensor:
    """Validate the call; return ``src`` on the model's device."""
    if model.cfg.arch != "encoder_decoder":
        raise ValueError("autoregressive decoding needs an encoder_decoder model")
    if max_len < 1:
        raise ValueError(f"max_len: expected >= 1, got {max_len}")
    return src.to(model.head.weight.device)


def _trim(out: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Replace EOS by PAD and drop the columns that are PAD in every row."""
    out = out.masked_fill(out == EOS, PAD)
    width = int(lengths.max()) if lengths.numel() else 0
    return out[:, :width].contiguous(), lengths


@torch.inference_mode()
def greedy_decode(model: Transformer, src: Tensor, max_len: int) -> tuple[Tensor, Tensor]:
    """Most probable token at each step, with the KV cache; stops when every row has ended."""
    src = _check(model, src, max_len)
    with _eval_mode(model):
        B, device = src.size(0), src.device
        memory, src_pad_mask = model.encode(src)
        cache = model.init_cache(memory, src_pad_mask, max_len)  # BOS + max_len - 1 fed tokens
        out = torch.full((B, max_len), PAD, dtype=torch.long, device=device)
        lengths = torch.full((B,), max_len, dtype=torch.long, device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        tok = torch.full((B, 1), BOS, dtype=torch.long, device=device)
        for t in range(max_len):
            # argmax in fp32: exact for bf16 logits too, and CPU bf16 argmax is slow
            nxt = model.decode_step(tok, cache)[:, -1].float().argmax(-1)  # (B,)
            nxt.masked_fill_(done, PAD)
            out[:, t] = nxt
            ended = nxt == EOS
            lengths.masked_fill_(ended, t)
            done |= ended
            if bool(done.all()):
                break
            tok = nxt[:, None]
        return _trim(out, lengths)


@torch.inference_mode()
def greedy_decode_uncached(model: Transformer, src: Tensor, max_len: int) -> tuple[Tensor, Tensor]:
    """Reference greedy decoding that reruns the whole decoder at every step (for tests)."""
    src = _check(model, src, max_len)
    with _eval_mode(model):
        B, device = src.size(0), src.device
        memory, src_pad_mask = model.encode(src)
        seq = torch.full((B, 1), BOS, dtype=torch.long, device=device)
        lengths = torch.full((B,), max_len, dtype=torch.long, device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        for t in range(max_len):
            nxt = model.decode(seq, memory, src_pad_mask)[:, -1].argmax(-1)
            nxt = nxt.masked_fill(done, PAD)
            seq = torch.cat([seq, nxt[:, None]], dim=1)
            lengths = lengths.masked_fill(nxt == EOS, t)
            done = done | (nxt == EOS)
            if bool(done.all()):
                break
        out = torch.full((B, max_len), PAD, dtype=torch.long, device=device)
        out[:, : seq.size(1) - 1] = seq[:, 1:]
        return _trim(out, lengths)


@torch.inference_mode()
def beam_decode(
    model: Transformer, src: Tensor, beam_size: int, max_len: int, length_penalty: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Every hypothesis of a batched beam search, in rank order (scores: see the module doc).

    Returns ``ids (B, beam_size, L)`` and ``lengths (B, beam_size)``: ``[:, 0]`` is the best
    hypothesis of each example (what ``beam_size=1`` and greedy decoding return), the others
    follow by decreasing score. A hypothesis still unfinished when the search stops (early,
    once none can beat the best finished one, or at ``max_len``) is returned as it stands.
    """
    src = _check(model, src, max_len)
    if beam_size < 1:
        raise ValueError(f"beam_size: expected >= 1, got {beam_size}")
    with _eval_mode(model):
        B, K, V, device = src.size(0), beam_size, model.cfg.tgt_vocab_size, src.device
        memory, src_pad_mask = model.encode(src)
        cache = model.init_cache(memory, src_pad_mask, max_len, beams=K)  # rows b*K + k
        tokens = torch.full((B * K, max_len), PAD, dtype=torch.long, device=device)
        score = torch.zeros(B, K, device=device)  # total log-prob of each hypothesis
        score[:, 1:] = float("-inf")  # all beams start as the same BOS: keep one
        hyp_len = torch.zeros(B, K, dtype=torch.long, device=device)  # tokens incl. EOS
        finished = torch.zeros(B, K, dtype=torch.bool, device=device)
        pad_only = torch.full((V,), float("-inf"), device=device)  # a finished beam's one move
        pad_only[PAD] = 0.0
        first_row = torch.arange(B, device=device)[:, None] * K  # (B, 1)
        prev = torch.full((B * K, 1), BOS, dtype=torch.long, device=device)
        for t in range(max_len):
            logits = model.decode_step(prev, cache)[:, -1]  # (B*K, V)
            logp = F.log_softmax(logits.float(), dim=-1).view(B, K, V)
            logp = torch.where(finished[..., None], pad_only, logp)
            cand = score[..., None] + logp  # (B, K, V)
            cand_len = torch.where(finished, hyp_len, t + 1)  # (B, K)
            key = cand / cand_len[..., None].float() ** length_penalty
            top_key, top = key.view(B, K * V).topk(K, dim=1)  # (B, K), best first
            beam, tok = top // V, top % V
            score = cand.view(B, K * V).gather(1, top)
            was_finished = finished.gather(1, beam)
            hyp_len = torch.where(was_finished, hyp_len.gather(1, beam), t + 1)
            finished = was_finished | (tok == EOS)
            rows = (first_row + beam).view(-1)  # (B*K,) parent row of each new beam
            tokens = tokens.index_select(0, rows)
            tokens[:, t] = tok.view(-1)
            best_finished = torch.where(finished, top_key, float("-inf")).max(dim=1).values  # (B,)
            if t + 1 < max_len:
                # the most an unfinished hypothesis can still score: its log-prob only falls,
                # and its normaliser is the better of the shortest and longest lengths left
                bound = torch.maximum(
                    score / (t + 2) ** length_penalty, score / max_len**length_penalty
                )
                bound = torch.where(finished, float("-inf"), bound).max(dim=1).values
                if bool((best_finished >= bound).all()):
                    break
            else:
                break
            cache.reorder(rows)
            prev = tok.view(-1, 1)
        # rank order: the best hypothesis first (a finished one wins ties with an unfinished
        # one), then the others by score, finished before unfinished at equal scores
        fin_key, fin_idx = torch.where(finished, top_key, float("-inf")).max(dim=1)
        best = torch.where(finished.any(dim=1) & (fin_key >= top_key[:, 0]), fin_idx, 0)  # (B,)
        rank_key = top_key.scatter(1, best[:, None], float("inf"))
        order = torch.argsort((~finished).long(), dim=1, stable=True)
        order = order.gather(1, torch.argsort(-rank_key.gather(1, order), dim=1, stable=True))
        pick = (first_row + order).view(-1)  # (B*K,) rows in rank order
        lengths = hyp_len.gather(1, order) - finished.gather(1, order).long()  # drop EOS
        ids, lengths = _trim(tokens.index_select(0, pick), lengths.view(-1))
        return ids.view(B, K, -1), lengths.view(B, K)


@torch.inference_mode()
def sample_decode(
    model: Transformer,
    src: Tensor,
    n_samples: int,
    max_len: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """``n_samples`` answers per example drawn token by token from softmax(logits /
    temperature) (ODEFormer decodes 50 samples at temperature 0.1), with the KV cache.

    Returns ``ids (B, n_samples, L)`` and ``lengths (B, n_samples)`` as :func:`beam_decode`
    does, samples in drawing order (unranked). ``temperature=0`` takes the argmax (greedy
    decoding, every sample the same). Reproducible: draws come only from ``generator``
    (a :class:`torch.Generator` on the model's device; None: torch's global generator).
    """
    src = _check(model, src, max_len)
    if n_samples < 1:
        raise ValueError(f"n_samples: expected >= 1, got {n_samples}")
    if not temperature >= 0:
        raise ValueError(f"temperature: expected >= 0, got {temperature}")
    with _eval_mode(model):
        B, K, device = src.size(0), n_samples, src.device
        memory, src_pad_mask = model.encode(src)
        cache = model.init_cache(memory, src_pad_mask, max_len, beams=K)  # rows b*K + k
        out = torch.full((B * K, max_len), PAD, dtype=torch.long, device=device)
        lengths = torch.full((B * K,), max_len, dtype=torch.long, device=device)
        done = torch.zeros(B * K, dtype=torch.bool, device=device)
        tok = torch.full((B * K, 1), BOS, dtype=torch.long, device=device)
        for t in range(max_len):
            logits = model.decode_step(tok, cache)[:, -1].float()  # (B*K, V)
            if temperature == 0:
                nxt = logits.argmax(-1)
            else:
                probs = F.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            nxt.masked_fill_(done, PAD)
            out[:, t] = nxt
            ended = nxt == EOS
            lengths.masked_fill_(ended & ~done, t)
            done |= ended
            if bool(done.all()):
                break
            tok = nxt[:, None]
        ids, lengths = _trim(out, lengths)
        return ids.view(B, K, -1), lengths.view(B, K)


@torch.inference_mode()
def predict_encoder_only(
    model: Transformer, src: Tensor, aligned: bool = False
) -> tuple[Tensor, Tensor]:
    """Argmax token at every input position of an encoder-only model: ids (B, S), lengths (B,).

    A predicted sequence ends at its first PAD or EOS, and never runs past the source's own
    length (its first PAD): positions after the end are set to PAD. ``aligned=True`` (tasks
    whose outputs sit on given input positions): the argmax at every source position, whatever
    it is, PAD past the source; lengths are the source lengths.
    """
    if model.cfg.arch != "encoder_only":
        raise ValueError("predict_encoder_only needs an encoder_only model")
    src = src.to(model.head.weight.device)
    with _eval_mode(model):
        ids = model(src).float().argmax(-1)  # (B, S); in fp32 as greedy_decode's
        S = ids.size(1)
        end = (src == PAD) if aligned else (ids == PAD) | (ids == EOS) | (src == PAD)
        lengths = torch.where(end.any(dim=1), end.int().argmax(dim=1), S)
        positions = torch.arange(S, device=src.device)
        ids = ids.masked_fill(positions[None, :] >= lengths[:, None], PAD)
        return ids, lengths


@torch.inference_mode()
def sequence_log_probs(
    model: Transformer, src: Tensor, ids: Tensor, lengths: Tensor, ended: Tensor | None = None
) -> Tensor:
    """Total log-probability (B,) of each answer ``ids[b, :lengths[b]]`` and its EOS.

    ``ended`` (B,) bool says which answers end with EOS (default: all); the others are
    hypotheses cut at ``max_len`` and are scored without it, as beam search scores them.
    """
    with _eval_mode(model):
        B = ids.size(0)
        width = int(lengths.max()) if B else 0
        tgt = torch.full((B, width + 2), PAD, dtype=torch.long, device=ids.device)
        tgt[:, 0] = BOS
        tgt[:, 1 : width + 1] = ids[:, :width]
        tgt.scatter_(1, lengths[:, None] + 1, EOS)
        logp = F.log_softmax(model(src, tgt[:, :-1]).float(), dim=-1)  # (B, width + 1, V)
        token_logp = logp.gather(2, tgt[:, 1:, None]).squeeze(2)  # (B, width + 1)
        n_scored = lengths + (1 if ended is None else ended.long())
        keep = torch.arange(width + 1, device=ids.device)[None, :] < n_scored[:, None]
        return torch.where(keep, token_logp, 0.0).sum(dim=1)
