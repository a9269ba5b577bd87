"""DFA for the Transformer: block gradients against the formula, encoder feedback options,
the trainer option (alignment curve, exact resume, untouched defaults)."""

import copy

import pytest
import torch

from synthmath.core.errors import ConfigError
from synthmath.core.vocab import BOS, EOS, PAD
from synthmath.nn.config import ModelConfig
from synthmath.nn.model import Transformer
from synthmath.train.checkpoint import CHECKPOINT_NAME, load_checkpoint
from synthmath.train.config import TrainConfig
from synthmath.train.dfa_transformer import attach_dfa, target_mean
from synthmath.train.loss import sequence_loss
from synthmath.train.trainer import Callback, Trainer

V = 10


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def model_of(arch="encoder_only", seed=0, **kw) -> Transformer:
    torch.manual_seed(seed)
    layers = {"n_enc_layers": 3, "n_dec_layers": 0} if arch == "encoder_only" else {}
    base = dict(src_vocab_size=V, tgt_vocab_size=V, d_model=16, n_heads=2, max_len=16)
    base.update(arch=arch, dropout=0.0, **layers)
    return Transformer(ModelConfig(**(base | kw)))


def batch_of(arch, seed=0, n=6, length=5):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, V, (n, length), generator=g)
    if arch == "encoder_only":
        tgt = src.flip(1).clone()
        tgt[:, 0] = PAD
        return src, tgt
    bos, eos = torch.full((n, 1), BOS), torch.full((n, 1), EOS)
    return src, torch.cat([bos, src.flip(1), eos], 1)


def test_block_gradients_follow_the_dfa_formula():
    model = model_of()
    plain = copy.deepcopy(model)
    dfa = attach_dfa(model, seed=1)
    assert [p.name for p in dfa.points] == ["enc0", "enc1"]  # the top block has none
    batch = batch_of("encoder_only")
    dfa.backward(sequence_loss(model, batch)[0])

    outs = {}
    for i, block in enumerate(plain.encoder):
        block.register_forward_hook(lambda m, a, out, i=i: outs.__setitem__(i, out))
    loss = sequence_loss(plain, batch)[0]
    e = torch.autograd.grad(loss, outs[2], retain_graph=True)[0]  # post-norm: top = block 2
    params = dict(plain.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()), retain_graph=True)
    true = dict(zip(params, grads, strict=True))
    for name, p in model.named_parameters():
        if name.startswith(("head.", "encoder.2.")):  # true gradients above the last point
            torch.testing.assert_close(p.grad, true[name])
    for i, prefix in ((0, ("src_embed.", "encoder.0.")), (1, ("encoder.1.",))):
        names = [n for n in params if n.startswith(prefix)]
        signal = e @ dfa.feedback(i)
        expect = torch.autograd.grad(outs[i], [params[n] for n in names], signal, retain_graph=True)
        got = dict(model.named_parameters())
        for n, g in zip(names, expect, strict=True):
            torch.testing.assert_close(got[n].grad, g, msg=n)
            assert not torch.allclose(got[n].grad, true[n], atol=1e-6), n
    assert all(p.tape is None for p in dfa.points) and dfa.error is None


def test_micro_points_and_state_dict_unchanged():
    model = model_of(arch="encoder_decoder", n_enc_layers=1, n_dec_layers=2)
    keys = list(model.state_dict())
    dfa = attach_dfa(model, seed=0, points="micro", encoder_feedback="mean")
    names = [p.name for p in dfa.points]
    assert names == ["enc0.attn", "enc0.ffn", "memory", "dec0.self_attn", "dec0.cross_attn",
                     "dec0.ffn", "dec0", "dec1.self_attn", "dec1.cross_attn", "dec1.ffn"]  # fmt: skip
    assert dfa.feedback(1).shape == (16, 64)  # the FFN width
    assert list(model.state_dict()) == keys  # saved weights are unchanged
    with pytest.raises(ConfigError, match="train_rule"):
        attach_dfa(torch.nn.Linear(2, 2), seed=0)


@pytest.mark.parametrize("feedback", ["bp", "mean", "none"])
def test_encoder_feedback(feedback):
    model = model_of(arch="encoder_decoder", n_enc_layers=2, n_dec_layers=2)
    plain = copy.deepcopy(model)
    dfa = attach_dfa(model, seed=0, encoder_feedback=feedback)
    batch = batch_of("encoder_decoder")
    ga = dfa.gradient_alignment(lambda: sequence_loss(model, batch)[0])
    assert all(p.grad is None for p in model.parameters())
    assert ("memory" in ga) == (feedback == "mean") and -1 <= ga["all"] <= 1
    dfa.backward(sequence_loss(model, batch)[0])
    enc = [p.grad for n, p in model.named_parameters() if n.startswith("encoder.")]
    if feedback == "none":
        assert all(g is None for g in enc)
        return
    assert all(g is not None and g.abs().sum() > 0 for g in enc)
    if feedback == "bp":
        # the decoder's cross-attention gradient into the memory, from every decoder segment:
        # the top block's by backprop, the lower one's from its DFA signal
        mem, outs = {}, {}
        plain.enc_norm.register_forward_hook(lambda m, a, out: mem.__setitem__("m", out))
        plain.decoder[0].register_forward_hook(lambda m, a, out: outs.__setitem__(0, out))
        plain.dec_norm.register_forward_hook(lambda m, a, out: outs.__setitem__("top", out))
        loss = sequence_loss(plain, batch)[0]
        e = torch.autograd.grad(loss, outs["top"], retain_graph=True)[0]
        # above dec0's output: BP with dec0's output held fixed
        top_part = torch.autograd.grad(loss, mem["m"], retain_graph=True)[0]
        via_dec0 = torch.autograd.grad(outs[0], mem["m"], e, retain_graph=True)[0]
        low = torch.autograd.grad(outs[0], mem["m"], e @ dfa.feedback(0), retain_graph=True)[0]
        expect = torch.autograd.grad(mem["m"], plain.encoder[0].attn.ln.weight,
                                     top_part - via_dec0 + low)[0]  # fmt: skip
        torch.testing.assert_close(model.encoder[0].attn.ln.weight.grad, expect)


def test_target_mean_skips_positions_without_error():
    e = torch.zeros(2, 3, 4)
    e[0, 0], e[0, 1], e[1, 2] = 1.0, 3.0, 5.0
    torch.testing.assert_close(target_mean(e)[:, 0], torch.tensor([[2.0] * 4, [5.0] * 4]))


class Recorder(Callback):
    def __init__(self):
        self.records = []

    def on_log(self, trainer, records):
        self.records.extend(records)


def batches(epoch, start):
    step = start
    while True:
        yield batch_of("encoder_only", seed=1000 * epoch + step, n=16)
        step += 1


def cfg_of(**kw):
    base = dict(batch_size=16, epoch_size=16 * 12, max_epochs=2, lr=3e-3, warmup_steps=2,
                log_every=4, seed=5, device="cpu", precision="fp32", prefetch=0, num_threads=1,
                train_rule="dfa", dfa_align_every=4)  # fmt: skip
    return TrainConfig(**(base | kw))


def run(run_dir, cfg, data=batches):
    model = model_of(dropout=0.1)
    rec = Recorder()
    trainer = Trainer(model, cfg, data, None, run_dir, callbacks=[rec], progress=False)
    return model, trainer.fit(), rec


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return run(tmp_path_factory.mktemp("dfa_a"), cfg_of())


def test_trainer_dfa_learns_and_logs_alignment(uninterrupted):
    _, summary, rec = uninterrupted
    curve = summary["alignment"]
    assert [a["step"] for a in curve] == list(range(0, 24, 4))
    assert set(curve[0]) == {"step", "alignment/enc0", "alignment/enc1", "alignment/all"}
    logged = [r for r in rec.records if "alignment/all" in r]
    assert [r["alignment/all"] for r in logged] == [a["alignment/all"] for a in curve]
    losses = [r["loss"] for r in rec.records if "loss" in r]
    assert losses[-1] < losses[0]


def test_trainer_dfa_resumes_exactly(tmp_path, uninterrupted):
    model_a, summary_a, _ = uninterrupted

    def crashing(epoch, start):
        for step, batch in enumerate(batches(epoch, start), start):
            if (epoch, step) == (1, 3):
                raise RuntimeError("node died")
            yield batch

    with pytest.raises(RuntimeError, match="node died"):
        run(tmp_path, cfg_of(), crashing)
    assert "dfa" in load_checkpoint(tmp_path / CHECKPOINT_NAME)
    torch.manual_seed(99)
    model_b, summary_b, _ = run(tmp_path, cfg_of())
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    assert summary_b["alignment"] == summary_a["alignment"]


def test_bp_default_adds_nothing(tmp_path):
    cfg = cfg_of(train_rule="bp", max_epochs=1)
    assert TrainConfig().train_rule == "bp"
    trainer = Trainer(model_of(), cfg, batches, None, tmp_path, progress=False)
    assert trainer.dfa is None
    summary = trainer.fit()
    assert "alignment" not in summary and "dfa" not in trainer.state_dict()
    with pytest.raises(ConfigError, match="train_rule"):
        cfg_of(compile="default").validate()


def test_dfa_under_bf16_autocast_projects_in_fp32():
    model = model_of()
    dfa = attach_dfa(model, seed=0, points="micro")
    batch = batch_of("encoder_only")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ga = dfa.gradient_alignment(lambda: sequence_loss(model, batch)[0])
        loss = sequence_loss(model, batch)[0]
    dfa.backward(loss)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert -1 <= ga["all"] <= 1 and dfa.b0.dtype == torch.float32
