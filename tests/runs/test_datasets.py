"""Dataset shards, deterministic batches, and the command line."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synthmath.cli import main
from synthmath.core.raw import concat_raw
from synthmath.runs.datasets import generate_shard, load_dataset_dir, read_shard

ROOT = Path(__file__).resolve().parents[2]


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


def run_cli(*args):
    exe = Path(sys.executable).with_name("synthmath")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)
