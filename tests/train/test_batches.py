"""Dataset shards, deterministic batches, and the command line."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from synthmath.core.vocab import BOS, EOS, PAD
from synthmath.tasks.registry import make_task
from synthmath.train.batches import EncodedSet, TrainBatches

ROOT = Path(__file__).resolve().parents[2]


def test_encoded_set_adds_bos_eos():
    task = make_task("linalg", {"op": "transpose", "dim": 2, "encoding": "P1000"})
    raw = task.sample(5, np.random.default_rng(0))
    enc = EncodedSet(task, raw)
    src, tgt = enc.batch(np.arange(5))
    assert (src[:, 0] == BOS).all() and (tgt[:, 0] == BOS).all()
    assert (src[:, -1] == EOS).all()  # fixed size: every row ends together
    assert src.shape[1] == 2 + 2 + 4 * 3 and PAD not in src.tolist()


def test_train_batches_are_a_function_of_epoch_and_step():
    task = make_task("linalg", {"op": "add", "dim": 2, "encoding": "P10"})
    raw = task.sample(30, np.random.default_rng(0))
    stored = TrainBatches(task, 8, 10, seed=3, encoded=EncodedSet(task, raw))  # epoch > dataset
    full = [b for b in stored(1)]
    assert len(full) == 10
    tail = [b for b in TrainBatches(task, 8, 10, seed=3, encoded=EncodedSet(task, raw))(1, 6)]
    for (s1, t1), (s2, t2) in zip(full[6:], tail):
        assert s1.equal(s2) and t1.equal(t2)
    other = next(iter(stored(2)))
    assert not other[0].equal(full[0][0])
    online = TrainBatches(task, 8, 3, seed=3)
    first = [b[0] for b in online(0)]
    again = [b[0] for b in TrainBatches(task, 8, 3, seed=3)(0, 2)]
    assert first[2].equal(again[0])


def run_cli(*args):
    exe = Path(sys.executable).with_name("synthmath")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)
