"""Gated positional self-attention (GPSA) of ConViT (d'Ascoli et al. 2021) and the T-CNN
conversion of a convolution into it (d'Ascoli et al. 2022, "Transformed CNNs").

Inputs whose positions sit on a ``rows x cols`` grid (an image's pixels; a matrix's entries,
one token each). Each head h mixes a content attention and a positional one::

    A_h = (1 - sigmoid(lambda_h)) softmax(Q K^T / sqrt(hs)) + sigmoid(lambda_h) softmax(v_h . r_ij)

with r_ij = (dr, dc, dr^2 + dc^2) the offset of key cell j from query cell i (rows, columns)
and v_h a learned 3-vector per head. The output is ``(A_h X W_val^h)`` concatenated over heads,
then projected. The *locality init* sets v_h = alpha (2 D_r, 2 D_c, -1), so that
v_h . r = -alpha |r - D_h|^2 + const: head h attends around the offset D_h of a k x k kernel
(k^2 heads; D in {-(k-1)/2 .. (k-1)/2}^2, half-integers for even k) and, as alpha grows,
exactly to it. ConViT's gates start at lambda = 1 (sigmoid 0.73), its value projection at
the identity.

Grid positions: encoder positions ``start .. start + rows*cols - 1`` are the cells in row-major
order; other positions (BOS/EOS, a header) are off the grid: they take part in content
attention only (as queries: gate 0; as keys: no positional weight). The positional softmax
runs over the grid padded by ``pad`` cells on each side, whose values are zero, so that
attention mass sent off the grid is lost, which is what zero padding does in a convolution
(``pad = 0``: the paper's GPSA, a softmax over the cells; ConViT's row renormalisation is then
a no-op and is left out). Grid cells must all be present (fixed-size inputs): a padding mask
restricts the content attention only. No attention dropout.

:func:`conv_to_gpsa` builds the GPSA layer that computes a given ``Conv2d`` exactly (one head
per kernel offset, hard positional attention, gate 1, values from the convolution's weights).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: lambda of the T-CNN gates: sigmoid(20) rounds to 1.0 in float32 (purely positional)
HARD_GATE = 20.0
#: locality strength of the T-CNN: the next cell gets exp(-50) of the weight
HARD_LOCALITY = 50.0


def kernel_offsets(n_heads: int) -> Tensor:
    """(n_heads, 2) offsets (row, col) of a k x k kernel, k = sqrt(n_heads), row-major as
    ``Conv2d.weight[:, :, a, b]``: head a*k + b looks at (a - (k-1)/2, b - (k-1)/2)."""
    k = math.isqrt(n_heads)
    if k * k != n_heads:
        raise ValueError(
            f"n_heads: the locality init needs a square number of heads (got {n_heads})"
        )
    centre = (k - 1) / 2
    a, b = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    return torch.stack([a.flatten() - centre, b.flatten() - centre], dim=1).double()


def relative_offsets(rows: int, cols: int, pad: int = 0) -> tuple[Tensor, Tensor]:
    """``(rel (N, Np, 3), cells (N,))``: r = (dr, dc, dr^2 + dc^2) from each of the N = rows*cols
    query cells to each of the Np cells of the grid padded by ``pad`` on every side, and the
    indices of the real cells among the padded ones (row-major)."""
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    pr, pc = torch.meshgrid(
        torch.arange(-pad, rows + pad), torch.arange(-pad, cols + pad), indexing="ij"
    )
    dr = pr.flatten()[None, :] - r.flatten()[:, None]
    dc = pc.flatten()[None, :] - c.flatten()[:, None]
    rel = torch.stack([dr, dc, dr * dr + dc * dc], dim=-1).float()
    cells = ((r + pad) * (cols + 2 * pad) + (c + pad)).flatten()
    return rel, cells


class GPSA(nn.Module):
    """Gated positional self-attention over a grid (see the module docstring).

    ``x (B, T, d_model)`` -> ``(B, T, d_out)``; ``head_dim`` defaults to d_model / n_heads and
    ``d_out`` to d_model. ``keep``: a boolean mask broadcastable to (B, H, T, T), True where
    content attention is allowed (the Transformer's key padding mask).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        grid: tuple[int, int],
        start: int = 0,
        head_dim: int | None = None,
        d_out: int | None = None,
        locality_strength: float = 1.0,
        pad: int = 0,
    ):
        super().__init__()
        rows, cols = grid
        if rows < 1 or cols < 1 or start < 0 or pad < 0:
            raise ValueError(f"grid {grid}, start {start}, pad {pad}: expected positive sizes")
        self.n_heads, self.grid, self.start, self.pad = n_heads, (rows, cols), start, pad
        self.head_dim = head_dim if head_dim is not None else d_model // n_heads
        if self.head_dim < 1:
            raise ValueError(f"head_dim: d_model={d_model} has no room for {n_heads} heads")
        inner = n_heads * self.head_dim
        self.qk = nn.Linear(d_model, 2 * inner)
        self.v = nn.Linear(d_model, inner)
        self.proj = nn.Linear(inner, d_out if d_out is not None else d_model)
        self.pos = nn.Parameter(torch.zeros(n_heads, 3))  # v_pos, one 3-vector per head
        self.gate = nn.Parameter(torch.ones(n_heads))  # lambda_h (ConViT: 1)
        self.locality_strength = locality_strength
        rel, cells = relative_offsets(rows, cols, pad)
        self.register_buffer("rel", rel, persistent=False)
        self.register_buffer("cells", cells, persistent=False)
        self.locality_init(locality_strength)

    def locality_init(self, alpha: float | None = None) -> None:
        """Heads on the offsets of a sqrt(H) x sqrt(H) kernel at strength ``alpha`` (default:
        the constructor's), gates lambda = 1, and (when shapes allow) the identity as value
        projection, as ConViT's local init. Call it again after a blanket re-initialisation."""
        alpha = self.locality_strength if alpha is None else alpha
        offsets = kernel_offsets(self.n_heads)
        with torch.no_grad():
            self.pos[:, :2].copy_(2 * alpha * offsets)
            self.pos[:, 2].fill_(-alpha)
            self.gate.fill_(1.0)
            if self.v.weight.size(0) == self.v.weight.size(1):
                self.v.weight.copy_(torch.eye(self.v.weight.size(0)))
                self.v.bias.zero_()

    @property
    def n_cells(self) -> int:
        return self.grid[0] * self.grid[1]

    def positional_attention(self) -> Tensor:
        """(H, N, N): softmax(v_h . r_ij) over the padded grid, restricted to the real cells
        (rows sum to 1 minus the mass on padding cells)."""
        scores = torch.einsum("ijc,hc->hij", self.rel, self.pos)  # (H, N, Np)
        return scores.softmax(dim=-1)[:, :, self.cells]

    def gates(self) -> Tensor:
        """(H,) sigmoid(lambda_h): the weight of the positional attention."""
        return torch.sigmoid(self.gate)

    def attention(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """(B, H, T, T) the mixed attention weights A_h."""
        B, T, _ = x.shape
        H, hs, N, s = self.n_heads, self.head_dim, self.n_cells, self.start
        if s + N > T:
            raise ValueError(
                f"GPSA: a {self.grid[0]}x{self.grid[1]} grid from position {s} needs at least "
                f"{s + N} positions (got {T})"
            )
        q, k = self.qk(x).view(B, T, 2, H, hs).permute(2, 0, 3, 1, 4).unbind(0)
        scores = torch.matmul(q * hs**-0.5, k.transpose(-2, -1))  # (B, H, T, T)
        if keep is not None:
            scores = scores.masked_fill(~keep, float("-inf"))
        content = scores.softmax(dim=-1)
        gate = self.gates().to(content.dtype)[:, None, None]  # (H, 1, 1)
        positional = self.positional_attention().to(content.dtype)  # (H, N, N)
        if s == 0 and N == T:  # every position on the grid (images)
            return (1 - gate) * content + gate * positional
        mixed = content.clone()
        grid = slice(s, s + N)
        mixed[:, :, grid] = (1 - gate) * content[:, :, grid]  # off-grid queries keep gate 0
        mixed[:, :, grid, grid] += gate * positional
        return mixed

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        B, T, _ = x.shape
        v = self.v(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hs)
        y = torch.matmul(self.attention(x, keep), v)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))


def conv_to_gpsa(conv: nn.Conv2d, grid: tuple[int, int], gate: float = HARD_GATE) -> GPSA:
    """The GPSA layer (tokens = the grid's cells in row-major order, ``(B, rows*cols, C_in)``
    -> ``(B, rows*cols, C_out)``) that computes ``conv`` at initialisation (T-CNN).

    One head per kernel offset (a, b), its positional attention hard on that offset
    (locality strength :data:`HARD_LOCALITY`; zero padding through ``pad``), gate logit
    ``gate`` (default: sigmoid = 1 in float32), value projection of head (a, b) =
    ``conv.weight[:, :, a, b]`` (head size C_out), output projection the sum of the heads
    plus the convolution's bias; queries start at zero, keys at the module's default init.
    Needs a square, odd kernel, stride 1, no dilation or groups, zero padding (k-1)/2.
    """
    k = conv.kernel_size[0]
    if (
        conv.kernel_size != (k, k)
        or k % 2 == 0
        or conv.stride != (1, 1)
        or conv.dilation != (1, 1)
        or conv.groups != 1
        or conv.padding != ((k - 1) // 2,) * 2
        or conv.padding_mode != "zeros"
    ):
        raise ValueError(
            "conv_to_gpsa: needs an odd square kernel, stride 1, dilation 1, groups 1 and zero "
            f"'same' padding (got {conv})"
        )
    c_out, c_in = conv.out_channels, conv.in_channels
    heads = k * k
    layer = GPSA(
        c_in,
        heads,
        grid,
        head_dim=c_out,
        d_out=c_out,
        locality_strength=HARD_LOCALITY,
        pad=(k - 1) // 2,
    )
    weight = conv.weight.detach()  # (C_out, C_in, k, k)
    with torch.no_grad():
        layer.gate.fill_(gate)
        layer.v.weight.copy_(weight.permute(2, 3, 0, 1).reshape(heads * c_out, c_in))
        layer.v.bias.zero_()
        layer.proj.weight.copy_(torch.eye(c_out).repeat(1, heads))
        if conv.bias is not None:
            layer.proj.bias.copy_(conv.bias.detach())
        else:
            layer.proj.bias.zero_()
        q_rows = heads * c_out  # the qk projection holds queries, then keys
        layer.qk.weight[:q_rows].zero_()
        layer.qk.bias.zero_()
    return layer
