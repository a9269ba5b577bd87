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


def _spec(task="linalg", params=None, seed=0):
    from synthmath.runs.plan import make_dataset

    return make_dataset(task, params or {"op": "add", "dim": 3}, 20, seed, 1, "train")


def test_shards_are_checked_against_the_expected_dataset(tmp_path):
    """A shard of another dataset, without an id, or with other arrays is a named error."""
    from synthmath.core.errors import DataError
    from synthmath.runs.datasets import load_dataset
    from synthmath.tasks.registry import make_task

    spec, other = _spec(seed=0), _spec(seed=1)
    task = make_task("linalg", spec.params)
    good = generate_shard("linalg", spec.params, 20, 0, 0, tmp_path / "good.npz", dataset=spec.id)
    raw, meta = load_dataset([good], spec, task)
    assert meta["dataset"] == spec.id and len(raw["a"]) == 20

    foreign = generate_shard("linalg", spec.params, 20, 1, 0, tmp_path / "o.npz", dataset=other.id)
    with pytest.raises(DataError, match=rf"o.npz: shard of dataset '{other.id}'.*'{spec.id}'"):
        load_dataset([foreign], spec, task)
    anonymous = generate_shard("linalg", spec.params, 20, 0, 0, tmp_path / "anon.npz")
    with pytest.raises(DataError, match="anon.npz: the shard records no dataset id"):
        load_dataset([anonymous], spec, task)

    renamed = tmp_path / "renamed.npz"
    arrays = dict(np.load(good))
    arrays["matrix"] = arrays.pop("a")  # same data under another name
    np.savez(renamed, **arrays)
    with pytest.raises(DataError, match=r"renamed.npz: arrays do not match.*missing: a.*matrix"):
        load_dataset([renamed], spec, task)


def test_data_digest_sees_contents_not_files(tmp_path):
    from synthmath.runs.datasets import data_digest

    spec = _spec()
    a = generate_shard("linalg", spec.params, 20, 0, 0, tmp_path / "a.npz", dataset=spec.id)
    b = generate_shard("linalg", spec.params, 20, 0, 0, tmp_path / "b.npz", dataset=spec.id)
    c = generate_shard("linalg", spec.params, 20, 5, 0, tmp_path / "c.npz", dataset=spec.id)
    digest = data_digest([read_shard(a)[0]])
    assert digest == data_digest([read_shard(b)[0]]) != data_digest([read_shard(c)[0]])


def test_dedupe_drops_repeats_of_input_and_answer_keeping_the_first():
    from synthmath.core.raw import take
    from synthmath.runs.datasets import dedupe
    from synthmath.tasks.registry import make_task

    task = make_task("arithmetic", {"op": "add", "max_digits": 1})  # 100 distinct problems
    raw = task.sample(400, np.random.default_rng(0))
    pairs = [tuple(task.to_json(raw, i)["problem"]) for i in range(400)]
    first = [i for i, p in enumerate(pairs) if p not in pairs[:i]]
    out, dropped = dedupe(task, raw)
    assert dropped == 400 - len(first) > 0
    for key in raw:
        np.testing.assert_array_equal(out[key], take(raw, np.array(first))[key])
    # a set without repeats is returned as it is
    again, none = dedupe(task, out)
    assert none == 0 and again is out


def test_data_dedupe_in_a_run_and_with_online_data():
    from synthmath.core.errors import ConfigError
    from synthmath.jobs.train import load_train_data
    from synthmath.runs.plan import build_plan
    from synthmath.tasks.registry import make_task

    study = {"task": "arithmetic", "params": {"op": "add", "max_digits": 1},
             "data": {"train_size": 300, "dedupe": True}}  # fmt: skip
    (run,) = build_plan({"studies": {"s": study}}).studies["s"].runs
    task = make_task(run.task, run.params)
    deduped = load_train_data(run, task)
    problems = [tuple(task.to_json(deduped, i)["problem"]) for i in range(len(deduped["a"]))]
    assert len(set(problems)) == len(problems) < 100  # at most 100 distinct 1-digit sums
    online = {**study, "data": {"online": True, "dedupe": True}}
    with pytest.raises(ConfigError, match=r"s\.data\.dedupe: deduplication needs a stored"):
        build_plan({"studies": {"s": online}})
