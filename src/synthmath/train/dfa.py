"""Direct feedback alignment (DFA): train hidden layers with fixed random projections of the
output error instead of backpropagated gradients (Refinetti, d'Ascoli, Ohana, Goldt 2021;
Launay et al. 2020; spec dynamics.md section 2).

For an MLP h_l = f(a_l), a_l = W_l h_(l-1), y_hat = W_L h_(L-1) and the per-example output
error e = dLoss/dy_hat, backpropagation uses delta_l = (W_(l+1)^T delta_(l+1)) * f'(a_l); DFA
uses delta_l = (B_l^T e) * f'(a_l) with a fixed random B_l (d_out x d_l) per hidden layer, and
the output layer keeps its true gradient (one hidden layer: DFA is feedback alignment).

The TinyDFA pattern: a :class:`DFAPoint` after each hidden activation cuts the graph in
forward (what is above it gets no backpropagated gradient through it) and keeps its input;
the :class:`DFA` module holds the B_l (buffers, one per point, drawn from a dedicated seeded
``torch.Generator``: the global RNG is never touched) and, given e, backpropagates e @ B_l
into each point's input, so that autograd supplies the * f'(a_l) and the weight gradients.
Unlike TinyDFA, whose top module calls backward *inside* the main backward, here e is captured
by a tensor hook during ``loss.backward()`` and the points are backpropagated right after it
(:meth:`DFA.backward`): one pass per point segment, and a tensor used by several segments (an
encoder's output read by every decoder block) is backpropagated once, after all of them.

Alignment (dfa-dynamics): the gradient alignment of a point is the cosine, per example,
between its DFA signal e @ B_l and the true backprop gradient at the same place (a BP pass
with the same weights on the same batch), averaged over the batch; ``all`` concatenates the
points. See :meth:`DFA.gradient_alignment`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

FEEDBACKS = ("gaussian", "uniform")

_TAG = 0x44464131  # "DFA1": separates this stream from every other one seeded by the run seed


def feedback_seed(seed: int) -> int:
    """The feedback matrices' generator seed derived from the run seed."""
    return int(np.random.SeedSequence([seed, _TAG]).generate_state(1, np.uint64)[0])


def feedback_matrix(
    error_size: int, size: int, generator: torch.Generator, kind: str = "gaussian"
) -> Tensor:
    """A fixed feedback matrix B (error_size x size), N(0, 1) or uniform [-1, 1], scaled by
    1 / sqrt(error_size) (so each signal component has the scale of an error component)."""
    if kind == "gaussian":
        b = torch.randn(error_size, size, generator=generator)
    elif kind == "uniform":
        b = torch.rand(error_size, size, generator=generator) * 2 - 1
    else:
        raise ValueError(f"feedback: expected one of {', '.join(FEEDBACKS)} (got {kind!r})")
    return b / math.sqrt(error_size)


class DFAPoint(nn.Module):
    """Identity that cuts the graph (``mode`` "dfa") or keeps it (``mode`` "bp": a backprop
    pass, the alignment's reference); records its input while gradients are enabled."""

    def __init__(self, size: int, name: str = ""):
        super().__init__()
        self.size, self.name = size, name
        self.mode = "dfa"
        self.tape: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not torch.is_grad_enabled() or not x.requires_grad:
            return x
        self.tape = x
        return x.detach() if self.mode == "dfa" else x


class DFA(nn.Module):
    """The feedback matrices of ``points`` and the DFA backward pass.

    ``error_size``: the size of e (its last dimension). ``reduce``, optional per point name: a
    map from e (..., error_size) to the error that point sees, shaped like its input but for
    the last dimension (default: e itself, position by position).
    """

    def __init__(
        self,
        points: Sequence[DFAPoint],
        error_size: int,
        seed: int,
        kind: str = "gaussian",
        reduce: dict[str, Callable[[Tensor], Tensor]] | None = None,
    ):
        super().__init__()
        self.points = list(points)  # not submodules: they live in the model
        self.error_size = error_size
        self.reduce = dict(reduce or {})
        generator = torch.Generator().manual_seed(feedback_seed(seed))
        for i, point in enumerate(self.points):
            self.register_buffer(f"b{i}", feedback_matrix(error_size, point.size, generator, kind))
        self.error: Tensor | None = None
        self.top: Tensor | None = None
        self.shared: list[tuple[Tensor, Tensor]] = []  # (graph tensor, its detached leaf)
        self._measuring = False

    def feedback(self, i: int) -> Tensor:
        return getattr(self, f"b{i}")

    # ---- forward taps ---------------------------------------------------------------------
    def tap(self, h: Tensor) -> Tensor:
        """Mark ``h`` (..., error_size) as where e = dLoss/dh is taken (identity)."""
        if torch.is_grad_enabled() and h.requires_grad:
            self.top = h
            if not self._measuring:
                h.register_hook(self._store_error)
        return h

    def _store_error(self, grad: Tensor) -> None:
        self.error = grad

    def share(self, x: Tensor) -> Tensor:
        """A leaf copy of ``x`` for consumers in several segments; :meth:`backward` sends the
        gradients they accumulate into ``x``'s graph once, after the points."""
        if self._measuring or not torch.is_grad_enabled() or not x.requires_grad:
            return x
        leaf = x.detach().requires_grad_()
        self.shared.append((x, leaf))
        return leaf

    @property
    def measuring(self) -> bool:
        """Whether a backprop reference pass (:meth:`gradient_alignment`) is running."""
        return self._measuring

    def set_mode(self, mode: str) -> None:
        self._measuring = mode == "bp"
        for point in self.points:
            point.mode = mode

    def clear(self) -> None:
        for point in self.points:
            point.tape = None
        self.error = self.top = None
        self.shared = []

    # ---- backward -------------------------------------------------------------------------
    def signal(self, i: int, error: Tensor, like: Tensor) -> Tensor:
        """Point ``i``'s DFA signal e @ B_i (in fp32, then in ``like``'s dtype)."""
        point = self.points[i]
        seen = self.reduce[point.name](error) if point.name in self.reduce else error
        out = seen.float() @ self.feedback(i).float()
        return out.expand_as(like).to(like.dtype)

    def backward(self, loss: Tensor) -> None:
        """``loss.backward()`` (true gradients above the top point and in the output layer),
        then e @ B_l backpropagated into each point's segment."""
        try:
            loss.backward()
            if self.error is None:
                raise RuntimeError("DFA: no error captured; was tap() applied in forward?")
            tapes, grads = [], []
            for i, point in enumerate(self.points):
                if point.tape is not None:
                    tapes.append(point.tape)
                    grads.append(self.signal(i, self.error, point.tape))
            if tapes:
                torch.autograd.backward(tapes, grads)
            shared = [(x, leaf.grad) for x, leaf in self.shared if leaf.grad is not None]
            if shared:
                torch.autograd.backward([x for x, _ in shared], [g for _, g in shared])
        finally:
            self.clear()

    # ---- alignment ------------------------------------------------------------------------
    def gradient_alignment(self, loss_of: Callable[[], Tensor]) -> dict[str, float]:
        """Cosine per example between each point's DFA signal and its true backprop gradient,
        averaged over the batch, by point name, and ``all`` (points concatenated).

        ``loss_of()`` runs the forward pass and returns the loss; it runs with the points in
        backprop mode and leaves no gradient on the parameters. Dimension 0 is the example.
        Call it before a training step's forward pass, not between it and :meth:`backward`
        (it clears the recorded points).
        """
        self.clear()
        modes = [p.mode for p in self.points]
        self.set_mode("bp")
        try:
            loss = loss_of()
            live = [(i, p) for i, p in enumerate(self.points) if p.tape is not None]
            if self.top is None or not live:
                return {}
            grads = torch.autograd.grad(loss, [self.top] + [p.tape for _, p in live])
            error, true = grads[0].detach(), grads[1:]
            out: dict[str, float] = {}
            dots = norm_s = norm_g = 0.0
            for (i, point), g in zip(live, true, strict=True):
                s = self.signal(i, error, point.tape).float().flatten(1)
                g = g.detach().float().flatten(1)
                out[point.name] = batch_cosine(s, g)
                dots = dots + (s * g).sum(1)
                norm_s = norm_s + (s * s).sum(1)
                norm_g = norm_g + (g * g).sum(1)
            cos = dots / (norm_s.sqrt() * norm_g.sqrt()).clamp(min=1e-30)
            out["all"] = float(cos.mean())
            return out
        finally:
            self._measuring = False
            for point, mode in zip(self.points, modes, strict=True):
                point.mode = mode
            self.clear()


def batch_cosine(a: Tensor, b: Tensor) -> float:
    """Mean over rows of cos(a_i, b_i); a and b are (batch, n)."""
    a, b = a.float().flatten(1), b.float().flatten(1)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp(min=1e-30)
    return float(cos.mean())


def cosine(a: Tensor, b: Tensor) -> float:
    """cos(vec a, vec b)."""
    a, b = a.detach().float().reshape(-1), b.detach().float().reshape(-1)
    return float(a @ b / (a.norm() * b.norm()).clamp(min=1e-30))
