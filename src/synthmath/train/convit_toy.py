"""ConViT and T-CNN on scikit-learn's 8 x 8 digits (bundled with it: no download), on CPU.

- :func:`sample_efficiency` (ConViT, d'Ascoli et al. 2021, its sample-efficiency figure):
  a tiny ViT against the same network with gated positional self-attention (GPSA,
  ``model.attention: gpsa``) in its first layers, trained on nested fractions of the
  training pool for a fixed number of steps; test accuracy per (model, fraction, seed).
  The network (:class:`TinyViT`) is a linear embedding of 2 x 2 patches (a 4 x 4 grid of
  tokens) with learned absolute positions, the encoder blocks of the project's
  :class:`~synthmath.nn.model.Transformer` (pre-norm), average pooling and a linear
  classifier.
- :func:`tcnn_study` (T-CNN, d'Ascoli et al. 2022): a small CNN trained on the pool, its second
  convolution turned into a GPSA layer computing the same function
  (:func:`~synthmath.nn.gpsa.conv_to_gpsa`), then the CNN and the hybrid fine-tuned alike;
  test accuracy along fine-tuning.

Split: a fixed third of the 1,797 images (seeded permutation) is the test set; the rest is
the training pool, whose fraction f is the first round(f * pool) images of a per-seed
permutation (nested subsets). Torch runs on one thread; each model is initialised from its
own seed without touching the global random state.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthmath.nn.config import ModelConfig
from synthmath.nn.gpsa import GPSA, HARD_GATE, conv_to_gpsa
from synthmath.nn.model import Transformer

SIDE = 8  # digits are 8 x 8, intensities 0..16
LEVELS = 17
SPECIALS = 3  # PAD, BOS, EOS come first in every vocabulary
CLASSES = 10
FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class Digits:
    """Images (n, 8, 8) int64 in 0..16 and labels (n,), split into pool and test."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor

    def subset(self, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
        """The first round(fraction * pool) pool images of the permutation of ``seed``."""
        n = len(self.train_y)
        order = np.random.default_rng(seed).permutation(n)[: max(1, round(fraction * n))]
        idx = torch.from_numpy(order)
        return self.train_x[idx], self.train_y[idx]


@functools.cache
def load_digits(test_fraction: float = 1 / 3, seed: int = 0) -> Digits:
    """The bundled digits, a fixed seeded test split (loaded once: callers share it)."""
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    x = torch.as_tensor(data.images, dtype=torch.int64)
    y = torch.as_tensor(data.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    n_test = round(test_fraction * len(y))
    test, train = order[:n_test], order[n_test:]
    return Digits(x[train], y[train], x[test], y[test])


# ---- ViT / ConViT --------------------------------------------------------------------------
@dataclass(frozen=True)
class VitShape:
    """The tiny ViT: ``patch`` x ``patch`` patches (8 / patch per side on the grid); 9 heads
    give a 3 x 3 kernel to the locality init."""

    patch: int = 2
    d_model: int = 36
    n_heads: int = 9
    n_layers: int = 2
    d_ff: int = 72

    @property
    def side(self) -> int:
        return SIDE // self.patch


def vit_config(
    attention: str, gpsa_layers: int | None, shape: VitShape = VitShape()
) -> ModelConfig:
    """The encoder of the study: pre-norm, GELU, tokens on a (8/patch)^2 grid from 0."""
    return ModelConfig(
        SPECIALS + LEVELS,
        SPECIALS + CLASSES,
        arch="encoder_only",
        n_enc_layers=shape.n_layers,
        n_dec_layers=0,
        d_model=shape.d_model,
        n_heads=shape.n_heads,
        d_ff=shape.d_ff,
        norm="pre",
        activation="gelu",
        max_len=shape.side**2,
        positions="none",
        attention=attention,
        gpsa_layers=gpsa_layers if attention == "gpsa" else None,
        src_grid=[shape.side, shape.side, 0],
    )


class TinyViT(nn.Module):
    """A linear patch embedding plus learned absolute positions (ViT), then the encoder
    blocks and final norm of :class:`~synthmath.nn.model.Transformer` built from ``cfg``
    (GPSA layers included when ``cfg.attention`` is gpsa), average pooling and a linear
    classifier."""

    def __init__(self, cfg: ModelConfig, patch: int):
        super().__init__()
        self.patch = patch
        net = Transformer(cfg)
        self.embed = nn.Linear(patch * patch, cfg.d_model)
        self.pos = nn.Parameter(torch.randn(1, cfg.max_len, cfg.d_model) * 0.02)
        self.blocks, self.norm = net.encoder, net.enc_norm
        self.head = nn.Linear(cfg.d_model, CLASSES)

    def forward(self, images: Tensor) -> Tensor:
        """(n, 8, 8) intensities 0..16 -> (n, 10) logits."""
        p, n = self.patch, images.size(0)
        patches = (images.float() / 16).unfold(1, p, p).unfold(2, p, p)  # (n, g, g, p, p)
        x = self.embed(patches.reshape(n, -1, p * p)) + self.pos
        for block in self.blocks:
            x = block(x, None)
        return self.head(self.norm(x).mean(dim=1))


def vit_logits(model: nn.Module, images: Tensor) -> Tensor:
    return model(images)


def _seeded(seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _train(
    model: nn.Module,
    logits_fn,
    x: Tensor,
    y: Tensor,
    steps: int,
    seed: int,
    lr: float = 1e-3,
    batch: int = 32,
    weight_decay: float = 0.05,
    every: int = 0,
    evaluate=None,
) -> list[tuple[int, float]]:
    """AdamW with linear warmup (a tenth of the steps) then cosine decay; batches drawn
    with replacement from a seeded generator. ``evaluate()`` every ``every`` steps (and at
    the end) gives the curve."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    warm = max(1, steps // 10)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + np.cos(np.pi * (step - warm) / max(1, steps - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    gen = torch.Generator().manual_seed(seed)
    curve = []
    model.train()
    for step in range(steps):
        if every and evaluate is not None and step % every == 0:
            curve.append((step, evaluate()))
            model.train()
        idx = torch.randint(len(y), (min(batch, len(y)),), generator=gen)
        loss = F.cross_entropy(logits_fn(model, x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    if evaluate is not None:
        curve.append((steps, evaluate()))
    return curve


@torch.no_grad()
def accuracy(model: nn.Module, logits_fn, x: Tensor, y: Tensor, batch: int = 128) -> float:
    """Fraction of ``x`` classified as ``y`` (eval mode; in batches: attention weights of
    the whole test set at once would not fit in cache)."""
    model.eval()
    right = sum(
        int((logits_fn(model, x[i : i + batch]).argmax(dim=1) == y[i : i + batch]).sum())
        for i in range(0, len(y), batch)
    )
    return right / len(y)


@dataclass
class EfficiencyResult:
    """Test accuracy per model ("vit", "convit"), fraction and seed."""

    fractions: list[float]
    pool: int  # images in the training pool
    test: int  # test images
    accuracy: dict[str, list[list[float]]] = field(default_factory=dict)  # [fraction][seed]


def sample_efficiency(
    fractions: Sequence[float] = FRACTIONS,
    seeds: int = 3,
    steps: int = 600,
    gpsa_layers: int = 1,
    data: Digits | None = None,
    shape: VitShape = VitShape(),
) -> EfficiencyResult:
    """ViT and ConViT (GPSA in the first ``gpsa_layers`` layers) trained ``steps`` steps on
    each fraction of the pool for each seed (both models see the same examples and
    batches)."""
    data = data or load_digits()
    out = EfficiencyResult(list(fractions), len(data.train_y), len(data.test_y))
    with _one_thread():
        for name, attention in (("vit", "softmax"), ("convit", "gpsa")):
            cfg = vit_config(attention, gpsa_layers, shape)
            rows = []
            for fraction in fractions:
                row = []
                for seed in range(seeds):
                    x, y = data.subset(fraction, seed)
                    model = _seeded(seed, lambda cfg=cfg: TinyViT(cfg, shape.patch))
                    _train(model, vit_logits, x, y, steps, seed)
                    row.append(accuracy(model, vit_logits, data.test_x, data.test_y))
                rows.append(row)
            out.accuracy[name] = rows
    return out


# ---- T-CNN ---------------------------------------------------------------------------------
class SmallCNN(nn.Module):
    """conv 3x3 (1 -> c1), relu, conv 3x3 (c1 -> c2), relu, 2x2 max-pool, linear -> 10.

    ``conv2`` may be swapped for a token layer (the T-CNN's GPSA) by :meth:`transformed`."""

    def __init__(self, c1: int = 8, c2: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2: nn.Module = nn.Conv2d(c1, c2, 3, padding=1)
        self.head = nn.Linear(c2 * (SIDE // 2) ** 2, CLASSES)
        self.c2 = c2

    def forward(self, images: Tensor) -> Tensor:
        x = F.relu(self.conv1(images.float().unsqueeze(1) / 16))
        if isinstance(self.conv2, GPSA):  # tokens: the pixels, channels as features
            b = x.size(0)
            tokens = self.conv2(x.flatten(2).transpose(1, 2))  # (B, 64, c2)
            x = tokens.transpose(1, 2).reshape(b, self.c2, SIDE, SIDE)
        else:
            x = self.conv2(x)
        return self.head(F.max_pool2d(F.relu(x), 2).flatten(1))

    def transformed(self, gate: float = HARD_GATE) -> SmallCNN:
        """A copy whose conv2 is the GPSA layer computing it (T-CNN)."""
        import copy

        hybrid = copy.deepcopy(self)
        hybrid.conv2 = conv_to_gpsa(self.conv2, (SIDE, SIDE), gate=gate)
        return hybrid


def _cnn_logits(model: nn.Module, images: Tensor) -> Tensor:
    return model(images)


@dataclass
class TcnnResult:
    """Accuracy along fine-tuning (step, test accuracy) of the CNN and of each T-CNN (by
    gate logit), the CNN's accuracy when converted and the largest output difference."""

    cnn_accuracy: float
    max_difference: float
    curves: dict[str, list[tuple[int, float]]]


def tcnn_study(
    pretrain_steps: int = 1500,
    finetune_steps: int = 600,
    fraction: float = 1.0,
    gates: Sequence[float] = (HARD_GATE,),
    seed: int = 0,
    every: int = 50,
    data: Digits | None = None,
) -> TcnnResult:
    """Train :class:`SmallCNN` on ``fraction`` of the pool, convert conv2 (one T-CNN per gate
    logit; the largest one's outputs are compared with the CNN's on the test set), then
    fine-tune the CNN and each T-CNN alike (same batches, a tenth of the learning rate)."""
    data = data or load_digits()
    x, y = data.subset(fraction, seed)

    def evaluate_fn(model):
        return lambda: accuracy(model, _cnn_logits, data.test_x, data.test_y)

    with _one_thread():
        cnn = _seeded(seed, SmallCNN)
        _train(cnn, _cnn_logits, x, y, pretrain_steps, seed, lr=3e-3, weight_decay=0.0)
        cnn_acc = accuracy(cnn, _cnn_logits, data.test_x, data.test_y)
        models = {"CNN": cnn}
        for gate in gates:
            models[f"T-CNN (gate logit {gate:g})"] = cnn.transformed(gate)
        with torch.no_grad():
            hard = cnn.transformed(max(gates)).eval()
            diff = float((hard(data.test_x) - cnn.eval()(data.test_x)).abs().max())
        curves = {}
        for name, model in models.items():
            curves[name] = _train(
                model,
                _cnn_logits,
                x,
                y,
                finetune_steps,
                seed + 1,
                lr=3e-4,
                weight_decay=0.0,
                every=every,
                evaluate=evaluate_fn(model),
            )
    return TcnnResult(cnn_acc, diff, curves)


class _one_thread:
    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)
