"""Training throughput (tokens/s) of the paper's transpose and eigenvalue models.

Runs the real Trainer (AdamW, schedule, clipping, logging, end-of-epoch checkpoint) on real
batches. Tokens are input plus output tokens of the batches, BOS/EOS included and padding
excluded. Source and target vocabularies are separate (LAWT's output layer covers a joint
30k-token vocabulary). For a comparison with LAWT measured in the same run, see bench_lawt.py.

    .venv/bin/python benchmarks/bench_training.py [--threads 2] [--steps 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, print_table, set_threads  # noqa: E402

MODELS = {
    # name: (task params, model settings, LAWT's tokens/s measured on another day: not printed,
    # as a ratio against it is not a same-run comparison)
    "transpose 5x5 (1+1, d256, P1000)": (
        {"op": "transpose", "dim": 5, "encoding": "P1000"},
        {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 256, "n_heads": 8},
        23_700.0,
    ),
    "eigenvalues 5x5 (6+1, d512, FP15->P1000)": (
        {"op": "eigenvalues", "dim": 5, "input_encoding": "FP15", "output_encoding": "P1000"},
        {"n_enc_layers": 6, "n_dec_layers": 1, "d_model": 512, "n_heads": 8},
        1_400.0,
    ),
}


def measure(
    task_params: dict, model_params: dict, steps: int, batch_size: int, precision: str, device: str
) -> tuple[float, float]:
    import numpy as np
    import torch

    from synthmath.core.vocab import PAD
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer
    from synthmath.tasks.registry import make_task
    from synthmath.train.batches import EncodedSet, TrainBatches
    from synthmath.train.config import TrainConfig
    from synthmath.train.trainer import Trainer

    task = make_task("linalg", task_params)
    encoded = EncodedSet(task, task.sample(steps * batch_size, np.random.default_rng(0)))
    counted = {"tokens": 0, "examples": 0}

    def batches(epoch: int, start: int):
        for src, tgt in TrainBatches(task, batch_size, steps, 0, encoded)(epoch, start):
            counted["tokens"] += int((src != PAD).sum() + (tgt != PAD).sum())
            counted["examples"] += len(src)
            yield src, tgt

    def run(n_steps: int) -> float:
        torch.manual_seed(0)
        cfg = ModelConfig(len(task.src_vocab()), len(task.tgt_vocab()), **model_params)
        model = Transformer(cfg).to(device)
        tcfg = TrainConfig(
            batch_size=batch_size,
            epoch_size=n_steps * batch_size,
            max_epochs=1,
            lr=1e-4,
            warmup_steps=100,
            log_every=1000,
            device=device,
            precision=precision,
        )
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(model, tcfg, batches, None, Path(tmp), progress=False)
            counted.update(tokens=0, examples=0)
            start = time.perf_counter()
            trainer.fit()
            return time.perf_counter() - start

    run(max(3, steps // 10))  # warm up allocator and kernels
    seconds = run(steps)
    return counted["tokens"] / seconds, counted["examples"] / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()
    set_threads(args.threads)
    rows = []
    for name, (task_params, model_params, _) in MODELS.items():
        tokens, examples = measure(
            task_params, model_params, args.steps, args.batch_size, args.precision, args.device
        )
        rows.append([name, tokens, examples])
    print_table(
        f"Training, batch {args.batch_size}, {args.threads} threads, {args.device} {args.precision} ({machine()})",
        ["model", "tokens/s", "examples/s"],
        rows,
    )


if __name__ == "__main__":
    main()
