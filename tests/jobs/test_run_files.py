"""The files of a run directory as a hostile user leaves them: planted pickles, truncated or
foreign checkpoints, stale models after the data changed, shards of another dataset."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from synthmath.cli import main
from synthmath.core.errors import CheckpointError
from synthmath.jobs.train import train_run
from synthmath.runs.artifacts import RunDir
from synthmath.runs.config import load_plan
from synthmath.runs.datasets import generate_shard

CONFIG = {
    "tracking": {"enabled": False},
    "defaults": {
        "model": {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 16, "n_heads": 2},
        "training": {
            "batch_size": 16,
            "epoch_size": 32,
            "max_epochs": 1,
            "warmup_steps": 1,
            "num_threads": 1,
        },
        "data": {"train_size": 64, "shards": 1, "valid_size": 8},
        "eval": {"size": 8, "batch_size": 8},
    },
    "studies": {
        "s": {
            "task": "linalg",
            "params": {"op": "transpose", "dim": 2, "encoding": "P1000"},
            "grid": {"training.seed": [0, 1]},  # two runs with the same shapes
        },
        "grow": {
            "task": "linalg",
            "init_from": {"study": "s", "match": {"training.seed": 0}},
            "params": {"op": "transpose", "dim": 2, "encoding": "P1000"},
        },
    },
}


class Planted:
    """Unpickling this creates ``path``: what a malicious file in a run directory would do."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def plant(target: Path, marker: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 2, "model": Planted(marker)}, target)


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    return tmp_path


def train_cli(study: str = "s", run: str | None = None) -> int:
    args = ["train", "--config", "c.yaml", "--study", study, "--no-progress", "--threads", "1"]
    return main(args + (["--run", run] if run else []))


def runs(study: str = "s"):
    return load_plan("c.yaml").studies[study].runs


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("synthmath: error: "), err
    return err[-1]


def test_planted_pickles_run_nothing(work, capsys):
    a, b = runs()
    marker = work / "pwned"
    # resume: a pickle as the checkpoint
    plant(RunDir(a.dir).checkpoint, marker)
    assert train_cli(run=a.run_id) == 2
    assert str(RunDir(a.dir).checkpoint) in error_line(capsys) and not marker.exists()
    RunDir(a.dir).checkpoint.unlink()
    assert train_cli(run=a.run_id) == 0
    capsys.readouterr()
    files = RunDir(a.dir)
    # predict and evaluate: a pickle as the final model
    good = files.model.read_bytes()
    plant(files.model, marker)
    assert main(["predict", str(a.dir), "-n", "1"]) == 2
    assert str(files.model) in error_line(capsys) and not marker.exists()
    assert main(["evaluate", str(a.dir), "--no-progress"]) == 2
    assert str(files.model) in error_line(capsys) and not marker.exists()
    # init_from: the grow study starts from run a's final model
    assert train_cli("grow") == 2
    assert str(files.model) in error_line(capsys) and not marker.exists()
    files.model.write_bytes(good)
    # the best epoch's weights, read after training (a rerun reuses the finished checkpoint)
    plant(files.best, marker)
    assert train_cli(run=a.run_id) == 2
    assert str(files.best) in error_line(capsys) and not marker.exists()


def test_truncated_and_foreign_checkpoints_are_one_line_errors(work, capsys):
    a, b = runs()
    assert train_cli(run=a.run_id) == 0
    capsys.readouterr()
    fa, fb = RunDir(a.dir), RunDir(b.dir)
    # another run's checkpoint (same shapes) copied into run b
    fb.path.mkdir(parents=True)
    shutil.copy(fa.checkpoint, fb.checkpoint)
    assert train_cli(run=b.run_id) == 2
    line = error_line(capsys)
    assert str(fb.checkpoint) in line and a.run_id in line and b.run_id in line
    # another run's model copied into run b (its config.json says b)
    shutil.copy(fa.model, fb.model)
    assert main(["predict", str(b.dir), "-n", "1"]) == 2
    line = error_line(capsys)
    assert str(fb.model) in line and a.run_id in line
    # a truncated checkpoint
    data = fa.checkpoint.read_bytes()
    fa.checkpoint.write_bytes(data[: len(data) // 2])
    assert train_cli(run=a.run_id) == 2
    assert str(fa.checkpoint) in error_line(capsys)
    # a truncated model
    data = fa.model.read_bytes()
    fa.model.write_bytes(data[: len(data) // 2])
    assert main(["predict", str(a.dir), "-n", "1"]) == 2
    assert str(fa.model) in error_line(capsys)


def _shards(run, root: Path, train_seed: int | None = None) -> tuple[list[str], list[str]]:
    """The run's train and valid shards; ``train_seed`` writes other training examples under
    the same dataset id (the data changed, e.g. a generator fix)."""
    out = []
    for ds, seed in ((run.train_data, train_seed), (run.valid_data, None)):
        path = root / ds.id / "shard-0000.npz"
        generate_shard(
            ds.task, ds.params, ds.size, ds.seed if seed is None else seed, 0, path, dataset=ds.id
        )
        out.append([str(path)])
    return out[0], out[1]


def test_rerun_retrains_when_the_data_changed_and_reuses_otherwise(work, caplog, monkeypatch):
    run = runs()[0]
    files = RunDir(run.dir)
    train, valid = _shards(run, work / "data")
    first = train_run(run, train, valid, progress=False)
    model_bytes = files.model.read_bytes()
    meta = json.loads(files.train_record.read_text())
    assert meta["history"] == first["history"]

    # same data and settings: the finished checkpoint is reused, nothing trains
    from synthmath.train.trainer import Trainer

    def no_training(self):
        raise AssertionError("trained although the data did not change")

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_run_epoch", no_training)
        files.model.unlink()  # what snakemake --forcerun does with the rule's outputs
        again = train_run(run, train, valid, progress=False)
    assert again["history"] == first["history"] and files.model.read_bytes() == model_bytes

    # new shards under the same dataset id: trains again from scratch, and says why
    train, valid = _shards(run, work / "data", train_seed=run.train_data.seed + 100)
    with caplog.at_level(logging.WARNING, logger="synthmath"):
        changed = train_run(run, train, valid, progress=False)
    assert "training from scratch" in caplog.text and "data" in caplog.text
    assert changed["history"] != first["history"]
    assert files.model.read_bytes() != model_bytes
    with pytest.raises(CheckpointError, match="not a synthmath weights file"):
        from synthmath.train.checkpoint import load_weights

        files.best.write_bytes(b"\0" * 16)
        load_weights(files.best)


def test_runs_shows_status_and_no_tracking_uri_when_disabled(work, capsys):
    assert main(["runs", "--config", "c.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("tracking: off") and "sqlite" not in out and "mlruns" not in out
    assert " new " in out
    config = dict(CONFIG, tracking={"enabled": True, "uri": "sqlite:///x.db"})
    (work / "on.yaml").write_text(yaml.safe_dump(config))
    assert main(["runs", "--config", "on.yaml"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("tracking: sqlite:///x.db")


def test_a_retrain_from_scratch_gets_a_new_mlflow_run(work):
    config = dict(CONFIG, tracking={"enabled": True, "uri": f"sqlite:///{work / 'ml.db'}"})
    (work / "c.yaml").write_text(yaml.safe_dump(config))
    run = runs()[0]
    files = RunDir(run.dir)
    train, valid = _shards(run, work / "data")
    train_run(run, train, valid, progress=False)
    first = files.read_mlflow_id()
    assert first and json.loads(files.train_record.read_text())["mlflow_run_id"] == first
    train_run(run, train, valid, progress=False)  # same data: same MLflow run
    assert files.read_mlflow_id() == first
    train, valid = _shards(run, work / "data", train_seed=run.train_data.seed + 100)
    train_run(run, train, valid, progress=False)  # new data: trained again, in a new run
    assert files.read_mlflow_id() not in (None, first)
