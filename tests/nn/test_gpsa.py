"""Gated positional self-attention: the locality init is a convolution, gate 0 is plain
attention, off-grid positions and masks, the T-CNN conversion and the model option."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from synthmath.core.errors import ConfigError
from synthmath.nn.attention import attend
from synthmath.nn.config import ModelConfig
from synthmath.nn.gpsa import GPSA, conv_to_gpsa, kernel_offsets
from synthmath.nn.model import Transformer
from synthmath.runs.config import validate_config
from synthmath.tasks.registry import get_task_class


def _tokens(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, H*W, C)


def test_hard_locality_init_attends_to_one_kernel_offset_per_head():
    layer = GPSA(18, 9, (5, 6), locality_strength=50.0)
    attn = layer.positional_attention().detach()  # (9, 30, 30)
    query = 2 * 6 + 3  # the interior cell (2, 3)
    for h, (dr, dc) in enumerate(kernel_offsets(9).tolist()):
        key = int((2 + dr) * 6 + (3 + dc))
        assert attn[h, query, key] == pytest.approx(1.0, abs=1e-6)
    # pad = 0: a softmax over the cells, each row sums to 1 (border rows too)
    torch.testing.assert_close(attn.sum(-1), torch.ones(9, 30))


@pytest.mark.parametrize("kernel, bias", [(3, True), (5, False)])
def test_gpsa_built_from_a_convolution_equals_it(kernel, bias):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, kernel, padding=kernel // 2, bias=bias)
    images = torch.randn(2, 3, 5, 7)
    layer = conv_to_gpsa(conv, (5, 7))
    assert layer.n_heads == kernel * kernel and torch.all(layer.gates() == 1)
    out = layer(_tokens(images))
    expected = F.conv2d(images, conv.weight, conv.bias, padding=kernel // 2)
    torch.testing.assert_close(out, _tokens(expected), atol=1e-5, rtol=0)


def test_locality_init_with_gate_one_is_the_convolution_of_its_weights():
    """The paper's init (no conversion helper): 9 heads at strength 50, gate 1, identity values;
    then the output projection of head (a, b) is the kernel tap (a, b) of a depthwise sum."""
    torch.manual_seed(1)
    d = 4
    layer = GPSA(d, 9, (6, 6), head_dim=d, d_out=d, locality_strength=50.0, pad=1)
    with torch.no_grad():
        layer.gate.fill_(math.inf)
        layer.v.weight.copy_(torch.eye(d).repeat(9, 1))
        layer.v.bias.zero_()
        layer.proj.bias.zero_()
    weight = layer.proj.weight.detach().view(d, 9, d).permute(0, 2, 1).reshape(d, d, 3, 3)
    images = torch.randn(3, d, 6, 6)
    torch.testing.assert_close(
        layer(_tokens(images)), _tokens(F.conv2d(images, weight, padding=1)), atol=1e-5, rtol=0
    )


def test_gate_zero_is_plain_content_attention_with_its_mask():
    torch.manual_seed(2)
    layer = GPSA(8, 4, (2, 3), start=1)
    with torch.no_grad():
        layer.gate.fill_(-math.inf)
    x = torch.randn(2, 8, 8)  # 1 off-grid position, 6 cells, 1 more off-grid
    keep = torch.ones(2, 1, 1, 8, dtype=torch.bool)
    keep[1, ..., 7] = False
    q, k = layer.qk(x).view(2, 8, 2, 4, 2).permute(2, 0, 3, 1, 4)
    v = layer.v(x).view(2, 8, 4, 2).transpose(1, 2)
    plain = attend(q, k, v, keep).transpose(1, 2).reshape(2, 8, 8)
    torch.testing.assert_close(layer(x, keep), layer.proj(plain))
    assert torch.all(layer.attention(x, keep)[1, :, :, 7] == 0)


def test_off_grid_positions_use_content_attention_only():
    torch.manual_seed(3)
    layer = GPSA(8, 4, (2, 2), start=1)
    with torch.no_grad():
        layer.gate.fill_(math.inf)  # grid queries: positional attention only
    x = torch.randn(1, 6, 8)
    attn = layer.attention(x)
    assert torch.all(attn[:, :, 1:5, 0] == 0) and torch.all(attn[:, :, 1:5, 5] == 0)
    torch.testing.assert_close(attn[:, :, 1:5, 1:5], layer.positional_attention()[None])
    with torch.no_grad():
        layer.gate.fill_(-math.inf)
    content = layer.attention(x)
    torch.testing.assert_close(attn[:, :, [0, 5]], content[:, :, [0, 5]])  # BOS/EOS rows
    torch.testing.assert_close(attn.sum(-1), torch.ones(1, 4, 6))


def test_shapes_and_errors():
    layer = GPSA(12, 4, (3, 3), start=2, d_out=5)
    assert layer(torch.randn(2, 11, 12)).shape == (2, 11, 5)
    with pytest.raises(ValueError, match="needs at least 11 positions"):
        layer(torch.randn(2, 10, 12))
    with pytest.raises(ValueError, match="square number of heads"):
        GPSA(12, 6, (3, 3))
    with pytest.raises(ValueError, match="stride 1"):
        conv_to_gpsa(torch.nn.Conv2d(2, 2, 3, padding=1, stride=2), (4, 4))
    with pytest.raises(ValueError, match="odd square kernel"):
        conv_to_gpsa(torch.nn.Conv2d(2, 2, 3, padding=0), (4, 4))


def _cfg(**kw) -> ModelConfig:
    base = dict(arch="encoder_only", n_enc_layers=3, n_dec_layers=0, d_model=16, n_heads=4)
    return ModelConfig(20, 20, **{**base, **kw})


def test_model_option_puts_gpsa_in_the_first_layers_after_the_init():
    model = Transformer(_cfg(attention="gpsa", gpsa_layers=2, src_grid=[3, 3, 1], max_len=16))
    kinds = [type(block.attn.fn).__name__ for block in model.encoder]
    assert kinds == ["GPSA", "GPSA", "SelfAttention"]
    first = model.encoder[0].attn.fn
    torch.testing.assert_close(first.v.weight, torch.eye(16))  # locality init survived
    torch.testing.assert_close(first.gates(), torch.sigmoid(torch.ones(4)))
    ids = torch.randint(3, 20, (2, 11))
    out = model(ids)
    assert out.shape == (2, 11, 20)
    out.square().mean().backward()  # gates, v_pos and the content path all learn
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (first.gate, first.pos))
    assert first.qk.weight.grad.abs().sum() > 0
    assert not any(isinstance(m, GPSA) for m in Transformer(_cfg()).modules())


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"attention": "gpsa"}, "attention"),  # no grid
        ({"attention": "gpsa", "n_heads": 8, "src_grid": [3, 3, 0]}, "n_heads"),
        ({"attention": "gpsa", "gpsa_layers": 4, "src_grid": [3, 3, 0]}, "gpsa_layers"),
        ({"src_grid": [3, 3, 1020]}, "src_grid"),
    ],
)
def test_model_settings_errors_name_the_key(kw, key):
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        _cfg(**kw)


def test_linalg_grid_and_config_check():
    linalg = get_task_class("linalg")
    assert linalg(op="transpose", dim=4, encoding="FP15").input_grid() == (4, 4, 2)
    assert linalg(op="transpose", dim=4).input_grid() is None  # P10: 5 tokens per entry
    assert linalg(op="transpose", dim_min=3, dim_max=5, encoding="FP15").input_grid() is None
    study = {
        "task": "linalg",
        "params": {"op": "transpose", "dim": 4},
        "model": {"attention": "gpsa"},
    }
    with pytest.raises(
        ConfigError, match=r"studies\.s.*model\.attention: gpsa needs inputs on a 2-D"
    ):
        validate_config({"studies": {"s": study}, "defaults": {"model": {"n_heads": 4}}})
