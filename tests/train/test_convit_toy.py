"""The ConViT / T-CNN digits studies: the split, the T-CNN conversion's identical outputs
and both studies in a micro setting."""

from __future__ import annotations

import torch

from synthmath.nn.gpsa import GPSA
from synthmath.train.convit_toy import (
    Digits,
    SmallCNN,
    TinyViT,
    VitShape,
    load_digits,
    sample_efficiency,
    tcnn_study,
    vit_config,
)


def test_split_is_fixed_and_fractions_nested():
    data = load_digits()
    assert len(data.test_y) == 599 and len(data.train_y) == 1198
    assert int(data.train_x.max()) <= 16 and data.train_x.shape[1:] == (8, 8)
    small, _ = data.subset(0.1, seed=4)
    large, _ = data.subset(0.5, seed=4)
    assert len(small) == 120 and torch.equal(large[:120], small)
    assert torch.equal(load_digits().test_x, data.test_x)


def test_tcnn_conversion_has_the_cnns_outputs():
    data = load_digits()
    torch.manual_seed(0)
    cnn = SmallCNN().eval()
    hybrid = cnn.transformed().eval()
    assert isinstance(hybrid.conv2, GPSA) and isinstance(cnn.conv2, torch.nn.Conv2d)
    images = data.test_x[:200]
    with torch.no_grad():
        torch.testing.assert_close(hybrid(images), cnn(images), atol=1e-5, rtol=0)
    with torch.no_grad():  # a softer gate lets content attention in: no longer identical
        soft = cnn.transformed(gate=0.0).eval()
        assert (soft(images) - cnn(images)).abs().max() > 1e-3


def test_convit_model_has_gpsa_first():
    shape = VitShape()
    vit = TinyViT(vit_config("softmax", None, shape), shape.patch)
    convit = TinyViT(vit_config("gpsa", 1, shape), shape.patch)
    assert [type(b.attn.fn).__name__ for b in convit.blocks] == ["GPSA", "SelfAttention"]
    assert not any(isinstance(m, GPSA) for m in vit.modules())
    images = load_digits().test_x[:3]
    assert convit(images).shape == (3, 10) and vit(images).shape == (3, 10)


def test_studies_run_in_a_micro_setting():
    full = load_digits()
    data = Digits(full.train_x, full.train_y, full.test_x[:64], full.test_y[:64])
    state = torch.random.get_rng_state()
    eff = sample_efficiency(fractions=(0.05, 1.0), seeds=2, steps=2, data=data)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    assert eff.fractions == [0.05, 1.0] and set(eff.accuracy) == {"vit", "convit"}
    assert all(len(rows) == 2 and all(0 <= a <= 1 for a in rows) for rows in eff.accuracy["vit"])
    again = sample_efficiency(fractions=(0.05,), seeds=1, steps=2, data=data)
    assert again.accuracy["convit"][0][0] == eff.accuracy["convit"][0][0]  # seeded
    tcnn = tcnn_study(pretrain_steps=3, finetune_steps=4, gates=(20.0, 2.0), every=2, data=data)
    assert tcnn.max_difference < 1e-5
    assert list(tcnn.curves) == ["CNN", "T-CNN (gate logit 20)", "T-CNN (gate logit 2)"]
    curve = tcnn.curves["T-CNN (gate logit 20)"]
    assert [step for step, _ in curve] == [0, 2, 4] and curve[0][1] == tcnn.cnn_accuracy
