"""Dataset shards, deterministic batches, and the command line."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthmath.cli import main
from synthmath.data import (
    EncodedSet,
    TrainBatches,
    concat_raw,
    generate_shard,
    load_dataset_dir,
    read_shard,
)
from synthmath.tasks.base import BOS, EOS, PAD, make_task

ROOT = Path(__file__).resolve().parents[1]


def test_shards_are_reproducible_and_match_cli(tmp_path):
    params = {"op": "eigenvalues", "dim_min": 2, "dim_max": 4, "dist": "laplace"}
    a = generate_shard("linalg", params, 50, 7, 1, tmp_path / "a.npz")
    b = generate_shard("linalg", params, 50, 7, 1, tmp_path / "b.npz")
    raw_a, meta = read_shard(a)
    raw_b, _ = read_shard(b)
    assert meta["seed"] == 7 and meta["shard"] == 1
    for key in raw_a:
        np.testing.assert_array_equal(raw_a[key], raw_b[key])
    # the CLI writes the shards the workflow writes
    out = tmp_path / "cli"
    assert (
        main(
            [
                "generate",
                "linalg",
                "op=eigenvalues",
                "dim_min=2",
                "dim_max=4",
                "dist=laplace",
                "-n",
                "101",
                "--shards",
                "2",
                "--seed",
                "7",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    shard1, _ = read_shard(out / "shard-0001.npz")
    for key in raw_a:
        np.testing.assert_array_equal(shard1[key], raw_a[key])
    raw, _ = load_dataset_dir(out)
    assert len(raw["a"]) == 101
    # another seed gives other data
    c = generate_shard("linalg", params, 50, 8, 1, tmp_path / "c.npz")
    assert not np.array_equal(read_shard(c)[0]["a"], raw_a["a"])


def test_truncated_shard_is_an_error_naming_the_file(tmp_path):
    path = generate_shard("linalg", {"op": "add", "dim": 3}, 20, 0, 0, tmp_path / "s.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="s.npz"):
        read_shard(path)
    assert not list(tmp_path.glob(".*.tmp"))


def test_concat_pads_ragged_parts():
    a = {"x": np.ones((2, 3, 3)), "n": np.array([3, 3])}
    b = {"x": np.ones((1, 4, 2)), "n": np.array([4])}
    out = concat_raw([a, b])
    assert out["x"].shape == (3, 4, 3)
    assert out["x"][0, 3].sum() == 0 and out["x"][2, :, 2].sum() == 0


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


def test_cli_sample_prints_json_lines():
    proc = run_cli(
        "sample",
        "linalg",
        "op=eigenvalues",
        "dim=5",
        "dist=laplace",
        "encoding=P1000",
        "-n",
        "3",
        "--seed",
        "0",
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 3
    for ex in lines:
        assert set(ex) == {"problem", "answer", "src", "tgt"}
        matrix = np.array(ex["problem"])
        assert matrix.shape == (5, 5) and np.allclose(matrix, matrix.T)
        np.testing.assert_allclose(
            ex["answer"], np.sort(np.linalg.eigvalsh(matrix))[::-1], rtol=1e-9, atol=1e-9
        )
        assert ex["src"].startswith("V5 V5 ") and len(ex["src"].split()) == 77
        assert ex["tgt"].startswith("V5 V1 ") and len(ex["tgt"].split()) == 2 + 5 * 3
    again = run_cli(
        "sample",
        "linalg",
        "op=eigenvalues",
        "dim=5",
        "dist=laplace",
        "encoding=P1000",
        "-n",
        "3",
        "--seed",
        "0",
    )
    assert again.stdout == proc.stdout


def test_cli_two_operands_and_errors():
    proc = run_cli("sample", "linalg", "op=matvec", "dim=3", "-n", "1")
    ex = json.loads(proc.stdout)
    a, v = ex["problem"]
    assert np.array(a).shape == (3, 3) and np.array(v).shape == (3,)
    np.testing.assert_allclose(ex["answer"], np.array(a) @ np.array(v))
    bad = run_cli("sample", "linalg", "op=determinant", "-n", "1")
    assert bad.returncode == 2 and "op: unknown value 'determinant'" in bad.stderr
    bad = run_cli("sample", "linalg", "dimension=3", "-n", "1")
    assert bad.returncode == 2 and "dimension: unknown parameter" in bad.stderr


@pytest.mark.slow
def test_train_evaluate_predict_outside_snakemake(tmp_path, monkeypatch):
    """CLI train -> evaluate -> predict on a tiny run; a second train call resumes (no-op)."""
    config = yaml.safe_load((ROOT / "configs" / "ci.yaml").read_text())
    config["tracking"] = {"enabled": False}
    config["studies"] = {"tiny": copy.deepcopy(config["studies"]["tiny_ops"])}
    config["studies"]["tiny"]["grid"] = {"params.op": ["transpose"]}
    del config["studies"]["tiny"]["report"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    proc = run_cli("train", "--config", str(path), "--study", "tiny", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [p for p in (tmp_path / "results" / "tiny").iterdir() if p.is_dir()]
    assert (run_dir / "model.pt").exists() and (run_dir / "train.json").exists()
    first = json.loads((run_dir / "train.json").read_text())
    proc = run_cli("train", "--config", str(path), "--study", "tiny", "--no-progress")
    assert proc.returncode == 0
    assert json.loads((run_dir / "train.json").read_text())["history"] == first["history"]
    proc = run_cli("evaluate", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert "id: n=24" in proc.stdout
    assert json.loads((run_dir / "eval" / "id.json").read_text())["n"] == 24
    proc = run_cli("predict", str(run_dir), "-n", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("exact:") == 2
