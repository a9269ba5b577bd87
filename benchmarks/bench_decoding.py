"""Decoding throughput (examples/s): batched greedy and beam search (beam 5), KV cache.

Models as in bench_training.py, random weights with the EOS logit biased by -1e9, so that
every hypothesis decodes exactly answer + 1 steps (the answer's tokens and EOS), as a trained
model that stops at EOS would (checked on the returned lengths). For a comparison with LAWT
in the same run, see bench_lawt.py.

    .venv/bin/python benchmarks/bench_decoding.py [--threads 2] [--n 512]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import MODELS  # noqa: E402
from common import machine, print_table, set_threads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=512, help="examples per measurement")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--dtype", default="fp32", choices=["fp32", "bf16"], help="model weights for inference"
    )
    args = parser.parse_args()
    set_threads(args.threads)
    import numpy as np
    import torch

    from synthmath.core.vocab import EOS
    from synthmath.eval.decoding import beam_decode, greedy_decode
    from synthmath.nn.config import ModelConfig
    from synthmath.nn.model import Transformer
    from synthmath.tasks.registry import make_task
    from synthmath.train.batches import EncodedSet

    rows = []
    for name, (task_params, model_params, _) in MODELS.items():
        task = make_task("linalg", task_params)
        encoded = EncodedSet(task, task.sample(args.n, np.random.default_rng(0)))
        torch.manual_seed(0)
        model = Transformer(
            ModelConfig(len(task.src_vocab()), len(task.tgt_vocab()), **model_params)
        )
        with torch.no_grad():
            model.head.bias[EOS] = -1e9  # never end early
        model.to(args.device).eval()
        if args.dtype == "bf16":
            model.to(torch.bfloat16)
        # tgt_len counts BOS and EOS: the answer's tokens plus EOS are tgt_len - 1 steps
        max_len = encoded.max_tgt_len - 1
        for mode, beam in (("greedy", 1), ("beam 5", 5)):
            batch = args.batch_size if beam == 1 else max(1, args.batch_size // 4)

            def run() -> float:
                start = time.perf_counter()
                for i in range(0, args.n, batch):
                    src, _ = encoded.batch(np.arange(i, min(i + batch, args.n)))
                    src = src.to(args.device)
                    if beam == 1:
                        _, lengths = greedy_decode(model, src, max_len=max_len)
                    else:
                        _, lengths = beam_decode(model, src, beam_size=beam, max_len=max_len)
                    if not (lengths == max_len).all():
                        raise AssertionError("a hypothesis decoded fewer than answer + 1 steps")
                return args.n / (time.perf_counter() - start)

            run()  # warm up
            rate = max(run() for _ in range(2))
            rows.append([name, mode, batch, max_len, rate])
    print_table(
        f"Decoding, {args.threads} threads, {args.device} {args.dtype} ({machine()})",
        ["model", "mode", "batch", "steps", "examples/s"],
        rows,
    )


if __name__ == "__main__":
    main()
