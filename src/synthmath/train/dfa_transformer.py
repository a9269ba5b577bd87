"""Direct feedback alignment for the :class:`~synthmath.nn.model.Transformer` (``training.
train_rule: dfa``; Launay et al. 2020, spec dynamics.md section 2).

Forward hooks put :class:`~synthmath.train.dfa.DFAPoint` s into a built model without changing
it (its state dict, and so saved weights, stay as they are; a model without hooks is today's):

- ``macro`` ("simple"): a point at the output of each block;
- ``micro`` ("full"): also after the attention sublayer(s) (attention + residual + norm) and
  after the feed-forward activation.

The error e is taken per token at the final hidden state before the output projection (the
output of the last block's stack, after its final norm): the projection gets its true
gradient and so does the last block (its output *is* where e is, as the output layer of an MLP),
so the top block has no output point. Inside a block gradients are local backprop; the
embeddings learn from the first point's signal. Token t's error feeds position t.

Encoder-decoder models (INFERRED, no source): the decoder is treated as above; the encoder
has no aligned error, ``encoder_feedback`` chooses: ``bp``: the memory gets the gradients of
the decoder's cross-attention (hybrid, not pure DFA), accumulated over every decoder segment
and backpropagated into the encoder once; ``mean``: points at the encoder's block outputs and
at the memory, each fed the target-averaged error (over the non-PAD target positions)
broadcast over the source positions; ``none``: the memory is detached and the encoder does not
learn (frozen random encoder).
"""

from __future__ import annotations

from torch import Tensor, nn

from synthmath.core.errors import ConfigError
from synthmath.nn.model import Transformer
from synthmath.train.dfa import DFA, DFAPoint

POINTS = ("macro", "micro")
ENCODER_FEEDBACKS = ("bp", "mean", "none")


def target_mean(error: Tensor) -> Tensor:
    """(B, T, D) -> (B, 1, D): the mean over the target positions that carry an error."""
    live = (error.abs().sum(-1, keepdim=True) > 0).to(error.dtype)  # (B, T, 1)
    return (error * live).sum(1, keepdim=True) / live.sum(1, keepdim=True).clamp(min=1)


def _hook_point(module: nn.Module, point: DFAPoint, handles: list) -> None:
    handles.append(module.register_forward_hook(lambda mod, args, out: point(out)))


def _stack_points(
    blocks: nn.ModuleList, prefix: str, kind: str, top: bool, handles: list, d_model: int
) -> list[DFAPoint]:
    """The points of one stack of blocks; ``top``: its last output is where e is taken."""
    points = []
    for i, block in enumerate(blocks):
        name = f"{prefix}{i}"
        if kind == "micro":
            subs = ("self_attn", "cross_attn") if hasattr(block, "cross_attn") else ("attn",)
            for sub in subs:
                point = DFAPoint(d_model, f"{name}.{sub}")
                _hook_point(getattr(block, sub), point, handles)
                points.append(point)
            mlp = block.mlp.fn
            point = DFAPoint(mlp.fc.out_features, f"{name}.ffn")
            _hook_point(mlp.act, point, handles)
            points.append(point)
        if not (top and i == len(blocks) - 1):
            point = DFAPoint(d_model, name)
            _hook_point(block, point, handles)
            points.append(point)
    return points


def attach_dfa(
    model: nn.Module,
    seed: int,
    points: str = "macro",
    feedback: str = "gaussian",
    encoder_feedback: str = "bp",
) -> DFA:
    """Hook DFA points into ``model`` (a :class:`Transformer`) and return the :class:`DFA`
    that trains it (its ``handles`` remove the hooks). Train with ``dfa.backward(loss)``."""
    if not isinstance(model, Transformer):
        raise ConfigError(
            f"training.train_rule: dfa needs the Transformer model (got {type(model).__name__})"
        )
    if points not in POINTS:
        raise ConfigError(f"training.dfa_points: expected one of {', '.join(POINTS)}")
    if encoder_feedback not in ENCODER_FEEDBACKS:
        raise ConfigError(
            f"training.encoder_feedback: expected one of {', '.join(ENCODER_FEEDBACKS)}"
        )
    cfg, handles = model.cfg, []
    d = cfg.d_model
    reduce = {}
    if cfg.arch == "encoder_only":
        all_points = _stack_points(model.encoder, "enc", points, True, handles, d)
        top_norm = model.enc_norm
    else:
        enc_points: list[DFAPoint] = []
        if encoder_feedback == "mean":
            enc_points = _stack_points(model.encoder, "enc", points, True, handles, d)
            memory = DFAPoint(d, "memory")
            enc_points.append(memory)
            reduce = {p.name: target_mean for p in enc_points}
        dec_points = _stack_points(model.decoder, "dec", points, True, handles, d)
        all_points = enc_points + dec_points
        top_norm = model.dec_norm
    dfa = DFA(all_points, d, seed, feedback, reduce=reduce)
    if cfg.arch == "encoder_decoder":
        if encoder_feedback == "mean":
            _hook_point(model.enc_norm, memory, handles)
        elif encoder_feedback == "bp":
            handles.append(model.enc_norm.register_forward_hook(lambda m, a, out: dfa.share(out)))
        else:
            handles.append(model.enc_norm.register_forward_hook(lambda m, a, out: out.detach()))
    handles.append(top_norm.register_forward_hook(lambda m, a, out: dfa.tap(out)))
    dfa.handles = handles
    return dfa
