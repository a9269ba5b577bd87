"""The toy studies of "Align, then memorise" (Refinetti, d'Ascoli, Ohana, Goldt 2021) on
CPU: fully connected nets trained by DFA or backprop on a random teacher or on the paper's
memorisation task, with the gradient and weight alignments along training.

- :class:`DFANet`: sizes [D, h_1, .., h_(L-1), d_out], no biases, weights N(0, 1 / fan_in)
  from the net's own seeded generator; a :class:`~synthmath.train.dfa.DFAPoint` after each
  hidden activation; the error is taken at the output.
- Data: :func:`memorisation` (the released task: Gaussian inputs, D = 9, 1000 points, 2-d
  Gaussian targets independent of x with covariance [[1, a(1 - b)], [a(1 - b), a^2]]) and
  :func:`teacher_student` (a random teacher net of the same shape, tanh).
- :func:`train_toy`: SGD on the summed squared loss 0.5 |y_hat - y|^2 (the released grids:
  lr 1e-3, batch 32), returning curves of the loss and of both alignments.
- :func:`align_then_memorise` (the memorisation study) and :func:`degeneracy_breaking`
  (random restarts of a 2-layer student on a random teacher, by DFA and by backprop: among
  the many low-loss solutions of an over-parameterised student, DFA converges to ones aligned
  with its feedback matrix, backprop to ones uncorrelated with it).

Weight alignment (MLP): cos(vec W_l, vec(B_l^T B_(l-1))) for hidden layers l >= 2 and
cos(vec W_L, vec B_(L-1)) for the output layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from synthmath.train.dfa import DFA, DFAPoint, cosine

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "linear": lambda x: x}


class DFANet(nn.Module):
    """A fully connected net with DFA points after its hidden activations."""

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        seed: int = 0,
        feedback: str = "gaussian",
        feedback_seed: int | None = None,
    ):
        """Weights from ``seed``; the feedback matrices from ``feedback_seed`` (default:
        ``seed``), so that restarts can share one B."""
        super().__init__()
        if len(sizes) < 3:
            raise ValueError(f"sizes: need at least one hidden layer (got {list(sizes)})")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {', '.join(ACTIVATIONS)}")
        self.act = ACTIVATIONS[activation]
        generator = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            layer = nn.Linear(fan_in, fan_out, bias=False)
            with torch.no_grad():
                layer.weight.copy_(torch.randn(fan_out, fan_in, generator=generator))
                layer.weight.div_(fan_in**0.5)
            self.layers.append(layer)
        self.points = nn.ModuleList(
            DFAPoint(size, f"layer{i + 1}") for i, size in enumerate(sizes[1:-1])
        )
        fb_seed = seed if feedback_seed is None else feedback_seed
        self.dfa = DFA(list(self.points), sizes[-1], fb_seed, feedback)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for layer, point in zip(self.layers[:-1], self.points, strict=True):
            h = point(self.act(layer(h)))
        return self.dfa.tap(self.layers[-1](h))

    def set_rule(self, rule: str) -> None:
        """``dfa``: points cut the graph; ``bp``: plain backpropagation."""
        self.dfa.set_mode({"dfa": "dfa", "bp": "bp"}[rule])
        self.dfa._measuring = False

    def weight_alignment(self) -> dict[str, float]:
        """cos(W_l, B_l^T B_(l-1)) for hidden layers 2.., cos(W_L, B_(L-1)) for the last."""
        out = {}
        n_hidden = len(self.points)
        for i in range(1, n_hidden):
            b_l, b_prev = self.dfa.feedback(i), self.dfa.feedback(i - 1)
            out[f"layer{i + 1}"] = cosine(self.layers[i].weight, b_l.T @ b_prev)
        out[f"layer{n_hidden + 1}"] = cosine(
            self.layers[-1].weight, self.dfa.feedback(n_hidden - 1)
        )
        return out


def memorisation(
    n: int = 1000, d: int = 9, alpha: float = 1.0, beta: float = 0.0, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """The released memorisation task: x ~ N(0, I_d), y ~ N(0, C) independent of x, with
    C = [[1, alpha (1 - beta)], [alpha (1 - beta), alpha^2]]."""
    rng = np.random.default_rng(seed)
    c = alpha * (1 - beta)
    cov = np.array([[1.0, c], [c, alpha**2]])
    x = rng.standard_normal((n, d))
    y = rng.multivariate_normal(np.zeros(2), cov, size=n, method="eigh")
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def teacher_student(
    n: int, sizes: Sequence[int], seed: int = 0, noise: float = 0.0
) -> tuple[Tensor, Tensor]:
    """x ~ N(0, I), y = a random tanh teacher of shape ``sizes`` at x (plus Gaussian noise)."""
    teacher = DFANet(sizes, "tanh", seed=10_000 + seed)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, sizes[0], generator=generator)
    with torch.no_grad():
        y = teacher(x)
        y = y + noise * torch.randn(y.shape, generator=generator)
    return x, y


@dataclass
class ToyCurves:
    """Curves of one toy run, one entry per measurement (epochs, from 0)."""

    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)  # mean over examples of 0.5 |y_hat - y|^2
    grad_alignment: dict[str, list[float]] = field(default_factory=dict)
    weight_alignment: dict[str, list[float]] = field(default_factory=dict)


def _loss(net: DFANet, x: Tensor, y: Tensor) -> Tensor:
    return 0.5 * ((net(x) - y) ** 2).sum()


def train_toy(
    net: DFANet,
    x: Tensor,
    y: Tensor,
    rule: str = "dfa",
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 32,
    measure_at: Sequence[int] | None = None,
    seed: int = 0,
) -> ToyCurves:
    """SGD on the summed squared loss with ``rule`` (dfa or bp); measures the loss and the
    alignments (on the whole set) before training and after each epoch in ``measure_at``
    (default: every epoch). Batch order from its own generator seeded by ``seed``."""
    net.set_rule(rule)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    marks = set(range(epochs + 1) if measure_at is None else measure_at) | {0}
    curves = ToyCurves()

    def measure(epoch: int) -> None:
        with torch.no_grad():
            loss = float(_loss(net, x, y)) / len(x)
        curves.epochs.append(epoch)
        curves.loss.append(loss)
        for name, v in net.dfa.gradient_alignment(lambda: _loss(net, x, y)).items():
            curves.grad_alignment.setdefault(name, []).append(v)
        for name, v in net.weight_alignment().items():
            curves.weight_alignment.setdefault(name, []).append(v)

    measure(0)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = _loss(net, x[idx], y[idx])
            if rule == "dfa":
                net.dfa.backward(loss)
            else:
                loss.backward()
                net.dfa.clear()
            optimizer.step()
        if epoch in marks:
            measure(epoch)
    return curves


def align_then_memorise(
    epochs: int = 400,
    sizes: Sequence[int] = (9, 64, 64, 2),
    activation: str = "tanh",
    seed: int = 0,
    points: int = 25,
) -> dict[str, ToyCurves]:
    """The memorisation study (1000 Gaussian points, D = 9, random 2-d targets; alpha = 1,
    beta = 0): the same net and batch order trained by DFA and by backprop, lr 1e-3, batch 32,
    measured at ``points`` log-spaced epochs. Runs on one thread (tiny matrices: more threads
    only add overhead) and puts the thread count back."""
    x, y = memorisation(1000, sizes[0], alpha=1.0, beta=0.0, seed=seed)
    marks = np.unique(np.logspace(0, np.log10(max(epochs, 1)), points).astype(int)).tolist()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {
            rule: train_toy(
                DFANet(sizes, activation, seed=seed + 1), x, y, rule, epochs, measure_at=marks
            )
            for rule in ("dfa", "bp")
        }
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class Restart:
    """The end of one restart of :func:`degeneracy_breaking`."""

    rule: str
    seed: int
    loss: float  # final training loss, mean over examples of 0.5 |y_hat - y|^2
    grad_alignment: float  # cos(DFA signal, backprop gradient) at the hidden layer
    weight_alignment: float  # cos(W_2, B_1): the output weights against the feedback matrix


def degeneracy_breaking(
    restarts: int = 8,
    epochs: int = 200,
    d: int = 10,
    hidden: int = 32,
    teacher_hidden: int = 4,
    n: int = 500,
    lr: float = 5e-3,
    seed: int = 0,
) -> list[Restart]:
    """Degeneracy breaking (Refinetti et al. 2021): a 2-layer tanh student of width ``hidden``
    fits ``n`` points of a random tanh teacher of width ``teacher_hidden`` (d inputs, 2
    outputs) by DFA and by backprop from ``restarts`` random initialisations (seeds
    ``seed + 1 + r``, batch orders seeded by r); every student has the same feedback matrix B
    (only DFA uses it). Both rules reach a low loss; DFA's solutions have a high weight and
    gradient alignment with B and a small spread, backprop's are uncorrelated with B (about 0,
    spread ~ 1 / sqrt(2 hidden)). SGD on the summed loss, batch 32. One thread, put back."""
    sizes = (d, hidden, 2)
    x, y = teacher_student(n, (d, teacher_hidden, 2), seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = []
    try:
        for rule in ("dfa", "bp"):
            for r in range(restarts):
                net = DFANet(sizes, "tanh", seed=seed + 1 + r, feedback_seed=seed)
                curves = train_toy(net, x, y, rule, epochs, lr=lr, measure_at=[epochs], seed=r)
                out.append(
                    Restart(
                        rule,
                        seed + 1 + r,
                        curves.loss[-1],
                        curves.grad_alignment["all"][-1],
                        curves.weight_alignment["layer2"][-1],
                    )
                )
    finally:
        torch.set_num_threads(threads)
    return out
