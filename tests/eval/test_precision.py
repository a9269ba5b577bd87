"""eval.precision: bf16 decoding of a trained model gives the answers fp32 decoding gives.

Measured agreement (the model below, its 1000-example test set, 1 CPU thread, torch 2.13,
AVX512-BF16 CPU): greedy 99.7%, beam 3 top answers 99.8%, exact-match accuracy 92.1% fp32 /
92.2% bf16. The assertions leave margin (98%, accuracy within 1.5 points); a wrong cast fails
them (weights rounded to fp8 e4m3 instead of bf16: 96.2% greedy agreement). Larger models:
README, "Studies and configs" (``benchmarks/bench_eval_precision.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from testsupport import reverse_batch

from synthmath.core.vocab import EOS, PAD
from synthmath.eval import precision as precision_module
from synthmath.eval.decoding import beam_decode, greedy_decode, sequence_log_probs
from synthmath.eval.precision import model_in, resolve_precision
from synthmath.eval.predict import predict_nbest
from synthmath.eval.summary import evaluate
from synthmath.nn.config import ModelConfig
from synthmath.nn.model import Transformer
from synthmath.tasks.registry import make_task
from synthmath.train.batches import EncodedSet

V = 11  # PAD, BOS, EOS and 8 symbols
LONGEST = 6
AGREEMENT = 0.98  # measured 0.997 (greedy) and 0.998 (beam 3)


@pytest.fixture(scope="module")
def trained() -> Transformer:
    """String reversal, 150 steps (about 1.5 s on one thread): 92% of answers right."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is the fastest
    with torch.random.fork_rng():
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(0)
        model = Transformer(ModelConfig(V, V, d_model=64, n_heads=4, d_ff=128, max_len=32))
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for _ in range(150):
            src, tgt = reverse_batch(64, gen, V, LONGEST)
            logits = model(src, tgt[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, V), tgt[:, 1:].reshape(-1), ignore_index=PAD)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    torch.set_num_threads(threads)
    return model.eval()


def answers(ids: torch.Tensor, lengths: torch.Tensor) -> list[tuple[int, ...]]:
    return [tuple(ids[i, : lengths[i]].tolist()) for i in range(ids.size(0))]


def agreement(a: list, b: list) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def test_bf16_decoding_agrees_with_fp32_on_the_test_set(trained):
    src, tgt = reverse_batch(1000, torch.Generator().manual_seed(99), V, LONGEST)
    truth = answers(tgt[:, 1:], (tgt[:, 1:] == EOS).int().argmax(dim=1))
    bf16 = model_in(trained, "bf16")
    assert bf16 is not trained and all(p.dtype == torch.float32 for p in trained.parameters())
    out = {}
    for name, model in (("fp32", trained), ("bf16", bf16)):
        greedy = answers(*greedy_decode(model, src, LONGEST + 2))
        ids, lengths = beam_decode(model, src, 3, LONGEST + 2)
        out[name] = greedy, answers(ids[:, 0], lengths[:, 0])
    acc = {name: agreement(greedy, truth) for name, (greedy, _) in out.items()}
    assert acc["fp32"] > 0.85  # a useful model: its answers are worth agreeing on
    assert abs(acc["bf16"] - acc["fp32"]) <= 0.015
    assert agreement(out["fp32"][0], out["bf16"][0]) >= AGREEMENT  # greedy
    assert agreement(out["fp32"][1], out["bf16"][1]) >= AGREEMENT  # beam 3, top answers


def test_bf16_copy_holds_every_float_tensor_in_bf16_and_scores_like_fp32(trained):
    bf16 = model_in(trained, resolve_precision("bf16", "cpu"))
    tensors = [*bf16.parameters(), *bf16.buffers()]
    assert all(t.dtype == torch.bfloat16 for t in tensors if t.is_floating_point())
    assert model_in(trained, "fp32") is trained
    # teacher-forced scoring (sequence_log_probs: a full forward pass) works in bf16 too
    src, tgt = reverse_batch(64, torch.Generator().manual_seed(5), V, LONGEST)
    ids, lengths = greedy_decode(trained, src, LONGEST + 2)
    fp32, low = (
        sequence_log_probs(trained, src, ids, lengths),
        sequence_log_probs(bf16, src, ids, lengths),
    )
    assert low.dtype == torch.float32 and torch.allclose(fp32, low, atol=0.05, rtol=0.05)


def test_auto_is_bf16_on_cuda_and_on_cpus_with_native_bf16(monkeypatch):
    from synthmath.train import device as device_module

    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert resolve_precision("bf16", "cpu") == "bf16" and resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ValueError, match="eval.precision: unknown value 'fp16'"):
        resolve_precision("fp16", "cpu")
    assert precision_module.EVAL_PRECISIONS == ("fp32", "bf16", "auto")


@pytest.mark.parametrize(
    "name,params,arch",
    [
        ("linalg", {"op": "transpose", "dim": 2, "encoding": "P10"}, "encoder_decoder"),
        ("arithmetic", {"op": "add", "max_digits": 3}, "encoder_only"),
    ],
)
def test_evaluate_in_bf16_records_it_and_leaves_the_model_in_fp32(name, params, arch):
    """Every decoding path of evaluation (greedy, beam, encoder-only) runs on the bf16 copy."""
    task = make_task(name, params)
    raw = task.sample(8, np.random.default_rng(0))
    torch.manual_seed(0)
    cfg = ModelConfig(
        len(task.src_vocab()), len(task.tgt_vocab()), arch=arch, n_enc_layers=1,
        n_dec_layers=0 if arch == "encoder_only" else 1, d_model=16, n_heads=2, max_len=64,
    )  # fmt: skip
    model = Transformer(cfg).eval()
    fp32 = evaluate(model, task, raw, batch_size=8, beam_sizes=[2])
    bf16 = evaluate(model, task, raw, batch_size=8, beam_sizes=[2], precision="bf16")
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    assert set(bf16["metrics"]) == set(fp32["metrics"])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    encoded = EncodedSet(task, raw)
    low = predict_nbest(model_in(model, "bf16"), task, encoded, beam_size=2)
    assert len(low) == 8 and all(len(h) == (1 if arch == "encoder_only" else 2) for h in low)
