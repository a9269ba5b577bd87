"""Training speed and model FLOPs utilisation (MFU) of the paper's eigenvalue model.

Task ``linalg`` eigenvalues of 5x5 symmetric matrices, FP15 in, P1000 out; model 6 encoder
and 1 decoder layers, d_model 512, 8 heads. Each row trains with the real Trainer (AdamW,
schedule, clipping) on real batches (EncodedSet + TrainBatches, as bench_training.py) and
runs ``--warmup-steps`` untimed steps, then ``--steps`` timed ones, in the same trainer, so
compilation and allocator warm-up stay out of the timing. The clock starts when the loss
of the first timed step is computed and stops at the log point after the last step (CUDA
synchronised both times), so checkpoints and best.pt writes are not timed.

Rows (``--configs``):

- ``fp32``: "fp32 eager" at ``--batch-size`` (64): precision fp32, no compile, no prefetch;
- ``bf16``: "bf16 eager": bf16 autocast and prefetching, no compile (the compile's share);
- ``fast``: bf16 autocast, ``torch.compile`` (mode "default"), 2 batches prefetched in a
  background thread (pinned memory on CUDA) and fused AdamW (automatic on CUDA), same batch;
- ``fill``: "fast" at ``--fill-batch`` (512), to fill the GPU.

Definitions. Tokens are the non-PAD input plus output tokens of the timed batches (BOS/EOS
included, as bench_training.py). Model FLOPs are :func:`synthmath.nn.flops.train_flops` of the
timed batches at their true lengths (3 x the analytic forward FLOPs: no padding, no
recomputation). MFU = model FLOPs / time / peak, with peak the dense bf16 datasheet peak of
a known GPU (:func:`synthmath.nn.flops.peak_flops`) for every row, fp32 included. On a CPU the
peak is measured in each row's own precision: the best rate of 2048 x 2048 matmuls in fp32
or bf16 (bf16 8192 x 8192 on an unknown GPU), the better of a measurement before the rows and
one after (another process on the machine lowers a measurement). A CPU with native bf16
(AVX512-BF16, AMX) runs bf16 matmuls several times faster than fp32, so there a bf16 row's
MFU is a share of that faster peak.

    .venv/bin/python benchmarks/bench_gpu_speed.py                      # GPU: all three rows
    .venv/bin/python benchmarks/bench_gpu_speed.py --fill-batch 1024 --steps 100
    .venv/bin/python benchmarks/bench_gpu_speed.py --device cpu --threads 2 --steps 5 \\
        --warmup-steps 2 --fill-batch 128 [--no-compile]                 # a quick CPU check
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table, set_threads  # noqa: E402

from synthmath.core.task import Task
from synthmath.core.vocab import PAD
from synthmath.nn.config import ModelConfig
from synthmath.nn.flops import measured_matmul_peak, peak_flops, synchronize, train_flops
from synthmath.nn.model import Transformer
from synthmath.tasks.registry import make_task
from synthmath.train.batches import EncodedSet, TrainBatches
from synthmath.train.config import TrainConfig
from synthmath.train.loss import Batch, sequence_loss
from synthmath.train.trainer import Callback, Trainer

TASK_PARAMS = {"op": "eigenvalues", "dim": 5, "input_encoding": "FP15", "output_encoding": "P1000"}
MODEL_PARAMS = {"n_enc_layers": 6, "n_dec_layers": 1, "d_model": 512, "n_heads": 8}


@dataclass(frozen=True)
class Row:
    """One configuration of the table: its --configs key, label and training settings."""

    key: str
    label: str
    precision: str
    compile: str
    prefetch: int
    fill: bool  # batch size from --fill-batch instead of --batch-size


ROWS = (
    Row("fp32", "fp32 eager", "fp32", "off", 0, False),
    Row("bf16", "bf16 eager", "bf16", "off", 2, False),
    Row("fast", "fast", "bf16", "default", 2, False),
    Row("fill", "fast", "bf16", "default", 2, True),
)


@dataclass
class Measurement:
    """Rates over the timed steps, and the TrainConfig settings they ran with."""

    tokens_per_s: float
    examples_per_s: float
    flops_per_s: float
    seconds: float
    applied: dict[str, Any]


class StepClock(Callback):
    """Times the steps after the first ``warmup`` ones.

    Pass :meth:`loss_fn` to the Trainer: it starts the clock when called for step
    ``warmup``, in the training thread, whatever loads the batches. :meth:`on_log` stops it
    at the log point that closes the epoch (``log_every`` larger than the run).
    """

    def __init__(self, device: torch.device, warmup: int, total: int):
        self.device, self.warmup, self.total = device, warmup, total
        self.calls = 0
        self.start: float | None = None
        self.stop: float | None = None

    def loss_fn(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        if self.calls == self.warmup:
            synchronize(self.device)
            self.start = time.perf_counter()
        self.calls += 1
        return sequence_loss(model, batch)

    def on_log(self, trainer: Trainer, records: list[dict[str, Any]]) -> None:
        if trainer.global_step >= self.total and self.stop is None:
            synchronize(self.device)
            self.stop = time.perf_counter()

    @property
    def seconds(self) -> float:
        if self.start is None or self.stop is None:
            raise RuntimeError("the timed steps did not run")
        return self.stop - self.start


def make_data(task_params: dict, n: int, seed: int = 0) -> tuple[Task, EncodedSet]:
    """The linalg task and ``n`` encoded examples."""
    task = make_task("linalg", task_params)
    return task, EncodedSet(task, task.sample(n, np.random.default_rng(seed)))


def measure(
    task: Task,
    encoded: EncodedSet,
    model_params: dict,
    *,
    batch_size: int,
    steps: int,
    warmup_steps: int,
    device: torch.device,
    precision: str,
    compile: str = "off",
    prefetch: int = 0,
) -> Measurement:
    """Train a fresh model for ``warmup_steps + steps`` steps; rates over the last ``steps``."""
    total = warmup_steps + steps
    torch.manual_seed(0)
    cfg = ModelConfig(len(task.src_vocab()), len(task.tgt_vocab()), **model_params)
    model = Transformer(cfg)
    tcfg = TrainConfig(
        batch_size=batch_size,
        epoch_size=total * batch_size,
        max_epochs=1,
        lr=1e-4,
        warmup_steps=100,
        log_every=total + 1,  # no log point (a device sync) before the end
        device=str(device),
        precision=precision,
        compile=compile,
        prefetch=prefetch,
    )
    # per batch, in order (the prefetch thread may run ahead): lengths and token count
    seen: list[tuple[np.ndarray, np.ndarray | None, int]] = []
    encoder_only = cfg.arch == "encoder_only"

    def batches(epoch: int, start: int):
        for src, tgt in TrainBatches(task, batch_size, total, 0, encoded)(epoch, start):
            src_len, tgt_len = (src != PAD).sum(1).numpy(), (tgt != PAD).sum(1).numpy()
            dec_len = None if encoder_only else tgt_len - 1  # decoder input: tgt[:, :-1]
            seen.append((src_len, dec_len, int(src_len.sum() + tgt_len.sum())))
            yield src, tgt

    if compile != "off":
        torch._dynamo.reset()  # each row compiles for its own shapes
    clock = StepClock(device, warmup_steps, total)
    with tempfile.TemporaryDirectory() as tmp:
        hooks: dict[str, Any] = {"callbacks": [clock], "loss_fn": clock.loss_fn}
        Trainer(model, tcfg, batches, None, Path(tmp), progress=False, **hooks).fit()
    timed = seen[warmup_steps:total]
    seconds = clock.seconds
    src_lens = np.concatenate([s for s, _, _ in timed])
    tgt_lens = None if encoder_only else np.concatenate([t for _, t, _ in timed])
    applied = {name: getattr(tcfg, name) for name in ("precision", "compile", "prefetch")}
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return Measurement(
        tokens_per_s=sum(n for _, _, n in timed) / seconds,
        examples_per_s=len(src_lens) / seconds,
        flops_per_s=train_flops(cfg, src_lens, tgt_lens) / seconds,
        seconds=seconds,
        applied=applied,
    )


def reference_peak(device: torch.device, precision: str) -> tuple[float, str, str]:
    """(peak FLOP/s, short label for the table, phrase for the title) of a row's precision.

    GPUs: the bf16 dense datasheet peak for every row (MFU as a share of what the GPU can do);
    CPUs: the measured matmul peak in the row's own precision (fp32 or bf16)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = peak_flops(device, torch.bfloat16)
        if peak is not None:
            return peak, f"bf16 dense {peak / 1e12:.0f} TF", f"the bf16 dense peak of the {name}"
        peak = measured_matmul_peak(device, torch.bfloat16, n=8192)
        return peak, f"meas. bf16 {peak / 1e12:.0f} TF", "the measured bf16 matmul peak"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    peak = measured_matmul_peak(device, dtype, n=2048)
    return (
        peak,
        f"meas. {precision} {peak / 1e12:.2f} TF",
        "the measured matmul peak of its precision",
    )


def run_rows(
    rows: list[Row],
    *,
    device: torch.device,
    batch_size: int,
    fill_batch: int,
    steps: int,
    warmup_steps: int,
    no_compile: bool = False,
    task_params: dict | None = None,
    model_params: dict | None = None,
) -> tuple[list[list[object]], str]:
    """Measure ``rows``; the table rows and the phrase naming the peak of the MFU column."""
    largest = max(fill_batch if row.fill else batch_size for row in rows)
    task, encoded = make_data(task_params or TASK_PARAMS, largest * (warmup_steps + steps))
    peaks = {row.precision: reference_peak(device, row.precision) for row in rows}
    results = []
    for row in rows:
        batch = fill_batch if row.fill else batch_size
        result = measure(
            task,
            encoded,
            model_params or MODEL_PARAMS,
            batch_size=batch,
            steps=steps,
            warmup_steps=warmup_steps,
            device=device,
            precision=row.precision,
            compile="off" if no_compile else row.compile,
            prefetch=row.prefetch,
        )
        results.append((row, batch, result))
    if device.type != "cuda":  # again: a busy machine lowers one measurement
        peaks = {p: max(reference_peak(device, p), old) for p, old in peaks.items()}
    peak_phrase = next(iter(peaks.values()))[2]
    table: list[list[object]] = []
    for row, batch, result in results:
        peak, peak_label, _ = peaks[row.precision]
        rate = result.flops_per_s
        setting = [row.label, batch, row.precision, result.applied["compile"]]
        speed = [result.tokens_per_s, result.examples_per_s, rate / 1e12, 100.0 * rate / peak]
        table.append(setting + speed + [peak_label])
    return table, peak_phrase


HEADER = "config|batch|precision|compile|tokens/s|examples/s|model TFLOP/s|MFU (%)|peak used"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device)
    parser.add_argument("--steps", type=int, default=50, help="timed steps per row")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: as is)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fill-batch", type=int, default=512)
    parser.add_argument(
        "--configs", nargs="+", choices=[r.key for r in ROWS], default=[r.key for r in ROWS]
    )
    parser.add_argument("--no-compile", action="store_true", help="fast rows without compile")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup_steps < 0:
        parser.error("--steps must be >= 1 and --warmup-steps >= 0")
    if args.threads:
        set_threads(args.threads)
    device = torch.device(args.device)
    rows = [r for r in ROWS if r.key in args.configs]
    table, peak_phrase = run_rows(
        rows,
        device=device,
        batch_size=args.batch_size,
        fill_batch=args.fill_batch,
        steps=args.steps,
        warmup_steps=args.warmup_steps,
        no_compile=args.no_compile,
    )
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print_table(
        f"Eigenvalue model (6+1, d512, FP15->P1000) training on {device}{threads}, "
        f"{args.steps} timed steps after {args.warmup_steps}; MFU of every row vs "
        f"{peak_phrase} ({machine()})",
        HEADER.split("|"),
        table,
    )


if __name__ == "__main__":
    main()
