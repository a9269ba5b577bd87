"""synthmath against LAWT, side by side in one process: decoding and training speed.

LAWT is the public code of "Linear algebra with transformers" (facebookresearch/LAWT, commit
50bba04, CC BY-NC 4.0); clone it and pass its path. Its own code runs (see lawt_peer.py for
the two run-time fixes it needs on Python 3.11 / torch 2.x). Without --lawt only synthmath's
side runs (the LAWT columns show "-").

Method. The same model shapes in both codebases (transpose 5x5 P1000: 1+1 layers, width 256;
eigenvalues 5x5 FP15 in / P1000 out: 6+1 layers, width 512; 8 heads, FFN 4x width). Inputs come
from each codebase's own generator and encoder; their sequence lengths are asserted equal.

- Decoding: random weights with the EOS logit biased by -1e9, so that every hypothesis decodes
  exactly answer + 1 steps in both codebases (checked on the returned lengths). A repeat times
  encoder plus decoding of pre-built batches; LAWT under ``torch.no_grad`` with its evaluator's
  ``generate`` / ``generate_beam`` (length penalty 1, early stopping), synthmath with
  ``greedy_decode`` / ``beam_decode`` in fp32 (the evaluation's precision) and bf16 weights.
  Beam 10 and 50 (the symbolic families' widths) run on synthmath's side only.
  ``GFLOP/ex``: our model FLOPs per example (``synthmath.nn.flops.decode_flops``: encoder,
  cross-attention keys/values once, then every step of every hypothesis). ``ceiling x LAWT``:
  the examples/s of a decoder that ran those FLOPs at the measured matmul peak of the
  precision, over LAWT's: an upper bound for any decoder computing them on this machine
  (decoding's thin matmuls and memory-bound attention run below that peak).
- Training: LAWT's ``Trainer.enc_dec_step`` (its Adam, clipping at 5, fp32) on pre-built
  batches, against synthmath's Trainer (bench_gpu_speed.measure: fresh model, warm-up steps,
  then timed steps) in fp32 and in the default precision ("auto": bf16 autocast on a CPU with
  native bf16, else fp32). Tokens: non-PAD input plus output tokens, BOS/EOS included. MFU:
  model FLOPs (synthmath.nn.flops.train_flops at true lengths; LAWT's with its joint
  vocabulary as output layer) per second over the best 2048 x 2048 matmul rate of the row's
  precision, measured before and after the rows.
- Every measurement: one warm-up, then ``--repeats`` repeats alternating between the sides;
  the median is reported, with the largest share of the machine's CPU that other processes
  used during a repeat (from /proc/stat, minus this process's own CPU time).

    .venv/bin/python benchmarks/bench_lawt.py --lawt ~/LAWT --threads 2 --json lawt.json
    .venv/bin/python benchmarks/bench_lawt.py --smoke        # tiny shapes, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table, set_threads  # noqa: E402


@dataclass(frozen=True)
class Shape:
    """One model: synthmath's task and model settings, and LAWT's equivalent arguments."""

    label: str
    task: dict
    model: dict
    lawt: list[str]


def _lawt_args(op: str, dim: int, enc: str, dec: str, model: dict) -> list[str]:
    m = model
    return [
        *("--operation", op, "--min_dimension", str(dim), "--max_dimension", str(dim)),
        *("--input_encoding", enc, "--output_encoding", dec),
        *("--enc_emb_dim", str(m["d_model"]), "--dec_emb_dim", str(m["d_model"])),
        *("--n_enc_layers", str(m["n_enc_layers"]), "--n_dec_layers", str(m["n_dec_layers"])),
        *("--n_enc_heads", str(m["n_heads"]), "--n_dec_heads", str(m["n_heads"])),
        *("--max_len", "512", "--optimizer", "adam,lr=0.0001", "--clip_grad_norm", "5"),
    ]


def shapes(smoke: bool) -> dict[str, Shape]:
    dim = 2 if smoke else 5
    small = {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 32, "n_heads": 4}
    tr = small if smoke else {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 256, "n_heads": 8}
    ev = small if smoke else {"n_enc_layers": 6, "n_dec_layers": 1, "d_model": 512, "n_heads": 8}
    p1000, fp15 = "float,2,1000", "FP15,2,16"
    return {
        "transpose": Shape(
            f"transpose {dim}x{dim} P1000",
            {"op": "transpose", "dim": dim, "encoding": "P1000"},
            tr,
            _lawt_args("transpose", dim, p1000, p1000, tr),
        ),
        "eigenvalues": Shape(
            f"eigenvalues {dim}x{dim} FP15->P1000",
            {"op": "eigenvalues", "dim": dim, "input_encoding": "FP15", "output_encoding": "P1000"},
            ev,
            _lawt_args("eigenvalues", dim, fp15, p1000, ev),
        ),
    }


class CpuWatch:
    """Share (%) of the machine's CPU used by other processes between start() and stop()."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _busy_jiffies() -> int | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError):
            return None
        return sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait

    def start(self) -> None:
        self.busy, self.own, self.wall = (
            self._busy_jiffies(),
            time.process_time(),
            time.perf_counter(),
        )

    def stop(self) -> float | None:
        busy, own, wall = self._busy_jiffies(), time.process_time(), time.perf_counter()
        if busy is None or self.busy is None:
            return None
        others = (busy - self.busy) / self.hz - (own - self.own)
        share = 100.0 * others / ((wall - self.wall) * (os.cpu_count() or 1))
        return min(100.0, max(0.0, share))  # jiffies are 1/hz s: a short span can overshoot


def alternate(sides: dict[str, Callable[[], float]], repeats: int) -> dict[str, dict]:
    """Warm each side up once, then ``repeats`` rounds alternating between them.

    A side's function does its work and returns the number of items it processed (or, as a
    float with ``rate=True`` semantics, see ``_Rate``). Result per side: median rate, the
    repeats' rates and the other processes' CPU share during each repeat.
    """
    for fn in sides.values():
        fn()
    out: dict[str, dict] = {name: {"rates": [], "others_cpu_pct": []} for name in sides}
    watch = CpuWatch()
    for _ in range(repeats):
        for name, fn in sides.items():
            watch.start()
            start = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - start
            rate = result.rate if isinstance(result, _Rate) else result / seconds
            out[name]["rates"].append(rate)
            out[name]["others_cpu_pct"].append(watch.stop())
            if isinstance(result, _Rate):
                out[name].setdefault("flops_per_s", []).append(result.flops_per_s)
    for res in out.values():
        res["median"] = statistics.median(res["rates"])
        if "flops_per_s" in res:
            res["median_flops_per_s"] = statistics.median(res["flops_per_s"])
    return out


@dataclass
class _Rate:
    """A side that times itself (our Trainer: only its timed steps)."""

    rate: float
    flops_per_s: float


def _worst_others(results: dict[str, dict]) -> float | None:
    values = [v for r in results.values() for v in r["others_cpu_pct"] if v is not None]
    return max(values) if values else None


# ---- decoding ------------------------------------------------------------------------------
def decoding(args, shape: Shape, peer_lib) -> list[dict]:
    """Rows of the decoding table for one model (see the module doc)."""
    import numpy as np
    import torch

    from synthmath.core.vocab import EOS, PAD
    from synthmath.eval.decoding import beam_decode, greedy_decode
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.flops import decode_flops
    from synthmath.nn.model import Transformer
    from synthmath.tasks.registry import make_task
    from synthmath.train.batches import EncodedSet

    modes = [
        ("greedy", 1, args.greedy_batch),
        *((f"beam {k}", k, args.beam_batch) for k in args.beams),
    ]
    largest = max(b for _, _, b in modes) * args.batches
    task = make_task("linalg", shape.task)
    encoded = EncodedSet(task, task.sample(largest, np.random.default_rng(0)))
    answer = encoded.max_tgt_len - 2  # tokens between BOS and EOS
    if not (encoded.tgt_len == answer + 2).all():
        raise AssertionError(f"{shape.label}: synthmath answers of different lengths")
    torch.manual_seed(0)
    models = {}
    for dtype in args.dtypes:
        model = Transformer(
            ModelConfig(len(task.src_vocab()), len(task.tgt_vocab()), **shape.model)
        )
        with torch.no_grad():
            model.head.bias[EOS] = -1e9  # never end early: answer + 1 steps
        models[dtype] = model.eval().to(torch.bfloat16 if dtype == "bf16" else torch.float32)
    peer = None
    if peer_lib is not None:
        peer = peer_lib.build(args.lawt_lib, shape.lawt, tempfile.gettempdir())
        peer_lib.suppress_eos(peer)
        peer_batches = peer_lib.batches(peer, args.batches, max(b for _, _, b in modes))
        (x1, len1), (x2, len2), _ = peer_batches[0]
        if int(len1.max()) != encoded.max_src_len or int(len1.min()) != int(encoded.src_len.min()):
            raise AssertionError(
                f"{shape.label}: source lengths differ: LAWT {len1.tolist()[:4]}, synthmath {encoded.src_len[:4]}"
            )
        if not (len2 == answer + 2).all():
            raise AssertionError(
                f"{shape.label}: target lengths differ: LAWT {len2.tolist()[:4]}, synthmath {answer + 2}"
            )
    rows = []
    cfg = models[args.dtypes[0]].cfg
    for mode, beam, batch in modes:
        srcs = [
            encoded.batch(np.arange(i * batch, (i + 1) * batch))[0] for i in range(args.batches)
        ]
        src_lens = np.concatenate([(src != PAD).sum(1).numpy() for src in srcs])
        # model FLOPs of one example, as our decoders compute them (LAWT computes the same
        # matmuls but projects onto its joint vocabulary)
        flops = decode_flops(cfg, src_lens, answer + 1, beam) / len(src_lens)

        def ours(model=None, srcs=srcs, beam=beam):
            for src in srcs:
                if beam == 1:
                    _, lengths = greedy_decode(model, src, max_len=answer + 1)
                else:
                    _, lengths = beam_decode(model, src, beam_size=beam, max_len=answer + 1)
                if not (lengths == answer + 1).all():  # answer + EOS steps, no early end
                    raise AssertionError("synthmath decoded a different number of steps")
            return len(srcs) * len(srcs[0])

        sides: dict[str, Callable[[], float]] = {
            f"ours {d}": (lambda m=models[d], f=ours: f(m)) for d in args.dtypes
        }
        if peer is not None and beam <= 5:
            lawt_in = [(x[:, :batch], n[:batch]) for (x, n), _, _ in peer_batches]

            def theirs(lawt_in=lawt_in, beam=beam):
                for x, n in lawt_in:
                    lengths = peer_lib.decode(peer, x, n, beam, max_len=answer + 2)
                    if not (lengths == answer + 2).all():  # BOS + answer + EOS
                        raise AssertionError("LAWT decoded a different number of steps")
                return len(lawt_in) * batch

            sides = {"LAWT fp32": theirs, **sides}
        results = alternate(sides, args.repeats)
        rows.append(
            {
                "model": shape.label,
                "mode": mode,
                "batch": batch,
                "steps": answer + 1,
                "flops_per_example": flops,
                "sides": results,
            }
        )
        print(
            f"  decoding {shape.label}, {mode}: "
            + ", ".join(f"{k} {v['median']:.1f}/s" for k, v in results.items()),
            flush=True,
        )
    return rows


# ---- training ------------------------------------------------------------------------------
def training(args, shape: Shape, peer_lib) -> list[dict]:
    """One row of the training table (see the module doc)."""

    import torch
    from bench_gpu_speed import make_data, measure

    from synthmath.nn.config import ModelConfig
    from synthmath.nn.flops import train_flops

    steps = args.train_steps
    task, encoded = make_data(shape.task, args.train_batch * (steps + args.train_warmup))
    sides: dict[str, Callable] = {}
    for precision in args.precisions:

        def ours(precision=precision):
            m = measure(
                task,
                encoded,
                shape.model,
                batch_size=args.train_batch,
                steps=steps,
                warmup_steps=args.train_warmup,
                device=torch.device("cpu"),
                precision=precision,
            )
            return _Rate(m.tokens_per_s, m.flops_per_s)

        sides[f"ours {precision}"] = ours
    if peer_lib is not None:
        peer = peer_lib.build(
            args.lawt_lib,
            shape.lawt + ["--batch_size", str(args.train_batch)],
            tempfile.gettempdir(),
        )
        prebuilt = peer_lib.batches(peer, steps, args.train_batch)
        (_, len1), (_, len2), _ = prebuilt[0]
        if int(len1.max()) != int(encoded.src_len.max()) or int(len2.max()) != int(
            encoded.tgt_len.max()
        ):
            raise AssertionError(f"{shape.label}: training lengths differ")
        cfg = ModelConfig(peer.n_words, peer.n_words, **shape.model)  # LAWT: joint vocabulary
        flops = sum(
            train_flops(cfg, l1.numpy(), (l2 - 1).numpy()) for (_, l1), (_, l2), _ in prebuilt
        )
        stepper = peer_lib.TrainStep(peer, prebuilt)
        for _ in range(args.train_warmup):
            stepper.step()

        def theirs():
            start = time.perf_counter()
            tokens = sum(stepper.step() for _ in range(steps))
            seconds = time.perf_counter() - start
            return _Rate(tokens / seconds, flops / seconds)

        sides = {"LAWT fp32": theirs, **sides}
    results = alternate(sides, args.repeats)
    print(
        f"  training {shape.label}: "
        + ", ".join(f"{k} {v['median']:.0f} tokens/s" for k, v in results.items()),
        flush=True,
    )
    return [{"model": shape.label, "batch": args.train_batch, "steps": steps, "sides": results}]


# ---- report --------------------------------------------------------------------------------
def _ratio(results: dict, side: str, base: str = "LAWT fp32") -> float | str:
    if side not in results or base not in results:
        return "-"
    return results[side]["median"] / results[base]["median"]


def _median(results: dict, side: str) -> float | str:
    return results[side]["median"] if side in results else "-"


def _others(results: dict) -> str:
    worst = _worst_others(results)
    return "-" if worst is None else f"{worst:.0f}"


def decoding_table(
    rows: list[dict], dtypes: list[str], peaks: dict[str, float]
) -> tuple[list[str], list[list]]:
    """One line per model and mode. ``ceiling``: the examples/s of a decoder that ran our model
    FLOPs at the measured matmul peak of the precision (2048 x 2048 matmuls; decoding's
    thin matmuls and memory-bound attention run below it), over LAWT's: no implementation
    that computes these FLOPs at that precision can pass this ratio on this machine."""
    header = ["model", "mode", "batch", "steps", "GFLOP/ex", "LAWT fp32 ex/s"]
    for d in dtypes:
        header += [f"ours {d} ex/s", f"{d} x LAWT", f"{d} ceiling x LAWT"]
    header.append("others' CPU % (max)")
    table = []
    for r in rows:
        res = r["sides"]
        flops = r["flops_per_example"]
        line = [r["model"], r["mode"], r["batch"], r["steps"], flops / 1e9]
        line.append(_median(res, "LAWT fp32"))
        for d in dtypes:
            ceiling = peaks[d] / flops / res["LAWT fp32"]["median"] if "LAWT fp32" in res else "-"
            line += [_median(res, f"ours {d}"), _ratio(res, f"ours {d}"), ceiling]
        table.append(line + [_others(res)])
    return header, table


def training_table(rows: list[dict], precisions: list[str], peaks: dict[str, float]):
    header = ["model", "batch", "LAWT fp32 tokens/s", "LAWT MFU %"]
    for p in precisions:
        header += [f"ours {p} tokens/s", f"{p} x LAWT", f"{p} MFU %"]
    header.append("others' CPU % (max)")
    table = []
    for r in rows:
        res = r["sides"]

        def mfu(side: str, dtype: str) -> float | str:
            if side not in res:
                return "-"
            return 100.0 * res[side]["median_flops_per_s"] / peaks[dtype]

        line = [r["model"], r["batch"], _median(res, "LAWT fp32"), mfu("LAWT fp32", "fp32")]
        for p in precisions:
            side = f"ours {p}"
            line += [_median(res, side), _ratio(res, side), mfu(side, r["dtypes"][p])]
        table.append(line + [_others(res)])
    return header, table


def _profile(args, shape: Shape, peer_lib) -> None:
    """torch.profiler tables (top ops by self CPU time) of one greedy batch and 3 train steps."""
    import numpy as np
    import torch
    from bench_gpu_speed import make_data, measure
    from torch.profiler import ProfilerActivity, profile

    from synthmath.eval.decoding import greedy_decode
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer

    task, encoded = make_data(shape.task, args.greedy_batch)
    model = Transformer(
        ModelConfig(len(task.src_vocab()), len(task.tgt_vocab()), **shape.model)
    ).eval()
    src = encoded.batch(np.arange(args.greedy_batch))[0]
    jobs = {"ours greedy fp32": lambda: greedy_decode(model, src, max_len=encoded.max_tgt_len - 1)}
    jobs["ours training fp32"] = lambda: measure(
        task,
        make_data(shape.task, 4 * args.train_batch)[1],
        shape.model,
        batch_size=args.train_batch,
        steps=3,
        warmup_steps=1,
        device=torch.device("cpu"),
        precision="fp32",
    )
    if peer_lib is not None:
        peer = peer_lib.build(
            args.lawt_lib,
            shape.lawt + ["--batch_size", str(args.train_batch)],
            tempfile.gettempdir(),
        )
        (x1, len1), (_, len2), _ = peer_lib.batches(peer, 1, args.greedy_batch)[0]
        jobs["LAWT greedy fp32"] = lambda: peer_lib.decode(peer, x1, len1, 1, int(len2.max()))
        stepper = peer_lib.TrainStep(peer, peer_lib.batches(peer, 4, args.train_batch))
        jobs["LAWT training fp32"] = lambda: [stepper.step() for _ in range(4)]
    for name, job in jobs.items():
        job()  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            job()
        print(f"\nProfile: {shape.label}, {name}\n")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile_rows))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lawt", type=Path, help="path of a LAWT tree (omit: synthmath only)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--models",
        nargs="+",
        choices=["transpose", "eigenvalues"],
        default=["transpose", "eigenvalues"],
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per side (median)")
    parser.add_argument(
        "--batches", type=int, default=1, help="pre-built batches per decoding repeat"
    )
    parser.add_argument("--greedy-batch", type=int, default=128)
    parser.add_argument("--beam-batch", type=int, default=64)
    parser.add_argument(
        "--beams", type=int, nargs="+", default=[5, 10, 50], help="LAWT runs those <= 5"
    )
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=["fp32", "bf16"],
        default=["fp32", "bf16"],
        help="synthmath decoding weights",
    )
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--train-warmup", type=int, default=2)
    parser.add_argument(
        "--precisions", nargs="+", choices=["fp32", "bf16", "auto"], default=["fp32", "auto"]
    )
    parser.add_argument("--skip", nargs="*", choices=["decoding", "training"], default=[])
    parser.add_argument("--profile", action="store_true", help="also print torch.profiler tables")
    parser.add_argument("--profile-rows", type=int, default=12)
    parser.add_argument("--json", type=Path, help="write every measurement there")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes and sizes (a test)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeats, args.greedy_batch, args.beam_batch, args.beams = 1, 4, 2, [2]
        args.train_batch, args.train_steps, args.train_warmup = 4, 2, 1
    if (
        min(args.repeats, args.greedy_batch, args.beam_batch, args.train_batch, args.train_steps)
        < 1
    ):
        parser.error("--repeats, batch sizes and --train-steps must be >= 1")
    if args.lawt is not None and not args.lawt.is_dir():
        parser.error(f"--lawt {args.lawt}: no such directory")
    return args


def run(args: argparse.Namespace) -> dict:
    """Measure, print both tables; the JSON document."""
    set_threads(args.threads)
    import torch

    from synthmath.nn.flops import measured_matmul_peak
    from synthmath.train.device import amp_dtype

    peer_lib = None
    if args.lawt is not None:
        import lawt_peer as peer_lib

        args.lawt_lib = peer_lib.load(args.lawt)
    n = 256 if args.smoke else 2048
    cpu = torch.device("cpu")
    peaks = {
        d: measured_matmul_peak(cpu, t, n=n)
        for d, t in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    models = shapes(args.smoke)
    out: dict = {
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "lawt": str(args.lawt) if args.lawt else None,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "decoding": [],
        "training": [],
    }
    for name in args.models:
        if "decoding" not in args.skip:
            out["decoding"] += decoding(args, models[name], peer_lib)
        if "training" not in args.skip:
            for row in training(args, models[name], peer_lib):
                row["dtypes"] = {
                    p: "bf16" if amp_dtype(p, cpu) == torch.bfloat16 else "fp32"
                    for p in args.precisions
                }
                out["training"].append(row)
    for d, t in (("fp32", torch.float32), ("bf16", torch.bfloat16)):  # a busy moment lowers one
        peaks[d] = max(peaks[d], measured_matmul_peak(cpu, t, n=n))
    out["matmul_peak_flops"] = peaks
    where = f"{out['threads']} threads ({out['machine']})"
    if out["decoding"]:
        print_table(
            f"Decoding, examples/s (encoder + decoding, answer + 1 steps), {where}",
            *decoding_table(out["decoding"], args.dtypes, peaks),
        )
    if out["training"]:
        names = ", ".join(f"{p} = {out['training'][0]['dtypes'][p]}" for p in args.precisions)
        print_table(
            f"Training, tokens/s and MFU vs the measured matmul peak (fp32 {peaks['fp32'] / 1e9:.0f}, "
            f"bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s; {names}), {where}",
            *training_table(out["training"], args.precisions, peaks),
        )
    if args.lawt is None:
        print("\nLAWT: not run (no --lawt PATH given)")
    if args.profile:
        for name in args.models:
            _profile(args, models[name], peer_lib)
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = run(args)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, allow_nan=False) + "\n")
    return out


if __name__ == "__main__":
    main()
