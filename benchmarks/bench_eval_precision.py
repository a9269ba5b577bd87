"""eval.precision: do bf16 weights decode a trained model's test set as fp32 weights do?

Trains a linalg model briefly (default: the default run's transpose 3x3 in P1000, 1+1 layers,
width 128, pre-norm, 1,200 steps of 64 fresh examples, AdamW at 5e-4 with 100 warm-up steps and
cosine decay; about 4 minutes on one CPU thread), then decodes its test
set greedy and with beam 5 with the fp32 weights and with a bf16 copy
(:func:`synthmath.eval.precision.model_in`, as evaluation does with ``eval.precision: bf16``)
and prints: test-set size, accuracy (the task's main metric, acc_tol5) in each precision, the
share of identical greedy answers, of identical beam-5 top answers and of identical beam-5
lists, the share of examples whose answers are scored alike (both right or both wrong: two
numeric answers may differ in a last digit and both be within tolerance), and the decoding
times. bf16 is fast only on CPUs with native bf16 (AVX512-BF16, AMX)
and on GPUs; elsewhere it is emulated and slower than fp32.

    PYTHONPATH=src nice .venv/bin/python benchmarks/bench_eval_precision.py \\
        [--steps 1200] [--n-test 1000] [--seed 0] [--threads 1] [--save model.safetensors]

Another model: ``--task`` and task parameters, e.g. the default run's 2x2 eigenvalue model
(83.7% in distribution): ``--enc-layers 2 --steps 2500 op=eigenvalues dim=2
input_encoding=FP15 output_encoding=P1000``.

``--load`` decodes a model saved by an earlier ``--save`` (same task options) instead of
training one; ``--json`` writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table, set_threads  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--task", default="linalg")
    p.add_argument(
        "params",
        nargs="*",
        default=["op=transpose", "dim=3", "encoding=P1000"],
        help="task parameters KEY=VALUE (default: op=transpose dim=3 encoding=P1000)",
    )
    p.add_argument("--steps", type=int, default=1200, help="training steps")
    p.add_argument("--n-test", type=int, default=1000, help="test-set size")
    p.add_argument("--seed", type=int, default=0, help="initialisation, training data, test set")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--norm", default="pre", choices=["pre", "post"])
    p.add_argument("--enc-layers", type=int, default=1)
    p.add_argument("--dec-layers", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64, help="training batch")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--greedy-batch", type=int, default=128)
    p.add_argument("--beam-batch", type=int, default=64)
    p.add_argument("--save", help="write the trained weights (safetensors)")
    p.add_argument("--load", help="decode these weights (from --save) instead of training")
    p.add_argument("--json", help="also write the figures to this JSON file")
    return p.parse_args(argv)


def train(model, task, args) -> tuple[float, float]:
    """(seconds, last loss) of ``args.steps`` AdamW steps on fresh batches (the workflow's
    warm-up and cosine schedule, :func:`synthmath.train.schedule.lr_factor`)."""
    import numpy as np
    import torch

    from synthmath.train.batches import EncodedSet
    from synthmath.train.config import TrainConfig
    from synthmath.train.loss import sequence_loss
    from synthmath.train.schedule import lr_factor

    schedule = TrainConfig(lr=args.lr, warmup_steps=args.warmup, schedule="cosine")
    rng = np.random.default_rng(args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    model.train()
    began, loss = time.perf_counter(), torch.tensor(float("nan"))
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = args.lr * lr_factor(schedule, step, args.steps)
        encoded = EncodedSet(task, task.sample(args.batch_size, rng))
        loss, _ = sequence_loss(model, encoded.batch(np.arange(args.batch_size)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 500 == 0:
            print(f"step {step + 1}: loss {float(loss.detach()):.4f}", file=sys.stderr, flush=True)
    model.eval()
    return time.perf_counter() - began, float(loss.detach())


def decode(model, task, encoded, width: int, batch: int) -> tuple[list, float]:
    """(n-best lists, seconds) of decoding ``encoded`` with a beam of ``width`` (1: greedy)."""
    from synthmath.eval.predict import predict_nbest

    began = time.perf_counter()
    nbest = predict_nbest(model, task, encoded, batch_size=batch, beam_size=width)
    return nbest, time.perf_counter() - began


def share(a: list, b: list) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def main(argv=None) -> dict:
    args = parse_args(argv)
    set_threads(args.threads)
    import numpy as np
    import torch

    from synthmath.cli import parse_assignments
    from synthmath.eval.precision import model_in
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer
    from synthmath.tasks.registry import make_task
    from synthmath.train.batches import EncodedSet

    task = make_task(args.task, parse_assignments(args.params))
    torch.manual_seed(args.seed)
    cfg = ModelConfig(
        len(task.src_vocab()), len(task.tgt_vocab()), n_enc_layers=args.enc_layers,
        n_dec_layers=args.dec_layers, d_model=args.d_model, n_heads=args.heads, norm=args.norm,
        max_len=256,
    )  # fmt: skip
    model = Transformer(cfg)
    if args.load:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(args.load))
        seconds, loss = 0.0, None
    else:
        seconds, loss = train(model, task, args)
    if args.save:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.save)
    model.eval()
    raw = task.sample(args.n_test, np.random.default_rng(args.seed + 1_000_003))
    encoded = EncodedSet(task, raw)
    main_metric = task.main_metric()
    out: dict = {}
    for name in ("fp32", "bf16"):
        m = model_in(model, name)
        decode(m, task, EncodedSet(task, task.sample(8, np.random.default_rng(7))), 2, 8)  # warm
        greedy, t_greedy = decode(m, task, encoded, 1, args.greedy_batch)
        beam, t_beam = decode(m, task, encoded, args.beam, args.beam_batch)
        hits = task.score(raw, greedy)[main_metric][:, 0]  # per example: right or not
        hits_beam = task.score(raw, [hyps[:1] for hyps in beam])[main_metric][:, 0]
        out[name] = dict(greedy=greedy, beam=beam, hits=hits, hits_beam=hits_beam,
                         acc=float(hits.mean()), acc_beam=float(hits_beam.mean()),
                         t_greedy=t_greedy, t_beam=t_beam)  # fmt: skip
    f, b = out["fp32"], out["bf16"]
    figures = {
        "task": " ".join([args.task, *args.params]),
        "model": f"{args.enc_layers}+{args.dec_layers} layers, width {args.d_model}, {args.norm}-norm",
        "steps": 0 if args.load else args.steps,
        "loaded": args.load,
        "train_seconds": round(seconds, 1),
        "final_loss": loss,
        "n_test": args.n_test,
        "metric": main_metric,
        "acc_fp32": f["acc"],
        "acc_bf16": b["acc"],
        f"acc_beam{args.beam}_fp32": f["acc_beam"],
        f"acc_beam{args.beam}_bf16": b["acc_beam"],
        "same_greedy": share(f["greedy"], b["greedy"]),
        "same_verdict_greedy": float((f["hits"] == b["hits"]).mean()),
        f"same_verdict_beam{args.beam}_top": float((f["hits_beam"] == b["hits_beam"]).mean()),
        f"same_beam{args.beam}_top": share([h[0] for h in f["beam"]], [h[0] for h in b["beam"]]),
        f"same_beam{args.beam}_lists": share(f["beam"], b["beam"]),
        "greedy_seconds_fp32": f["t_greedy"],
        "greedy_seconds_bf16": b["t_greedy"],
        f"beam{args.beam}_seconds_fp32": f["t_beam"],
        f"beam{args.beam}_seconds_bf16": b["t_beam"],
        "threads": args.threads,
        "machine": machine(),
    }
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    beam = f"beam{args.beam}"
    print_table(
        f"{figures['task']}, {figures['model']}, "
        + (f"loaded from {args.load}, " if args.load else f"{args.steps} steps ({seconds:.0f} s), ")
        + f"{args.n_test} test examples, {args.threads} thread(s); {machine()}",
        ["", "fp32", "bf16", "same answers", f"same {main_metric} verdict"],
        [
            [f"{main_metric}, greedy", pct(f["acc"]), pct(b["acc"]),
             pct(figures["same_greedy"]), pct(figures["same_verdict_greedy"])],
            [f"{main_metric}, beam {args.beam} top", pct(f["acc_beam"]), pct(b["acc_beam"]),
             pct(figures[f"same_{beam}_top"]), pct(figures[f"same_verdict_{beam}_top"])],
            [f"beam {args.beam}: every hypothesis", "", "", pct(figures[f"same_{beam}_lists"]), ""],
            ["greedy decoding (s)", f"{f['t_greedy']:.2f}", f"{b['t_greedy']:.2f}",
             f"bf16 {f['t_greedy'] / b['t_greedy']:.2f}x", ""],
            [f"beam {args.beam} decoding (s)", f"{f['t_beam']:.2f}", f"{b['t_beam']:.2f}",
             f"bf16 {f['t_beam'] / b['t_beam']:.2f}x", ""],
        ],
    )  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, allow_nan=False) + "\n")
    return figures


if __name__ == "__main__":
    main()
