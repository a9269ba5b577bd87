"""MLflow as its users see it: one metric namespace, model-training experiments (a real local
SQLite store)."""

from __future__ import annotations

import pytest
import yaml
from mlflow.tracking import MlflowClient

from synthmath.cli import main
from synthmath.runs.config import load_plan
from synthmath.track.callback import epoch_metrics, log_rows
from synthmath.track.mlflow import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, Tracker

NAMESPACES = ("train/", "valid/", "test/", "final/")
CONFIG = {
    "defaults": {
        "model": {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 16, "n_heads": 2},
        "training": {
            "batch_size": 16,
            "epoch_size": 32,  # 2 steps per epoch
            "max_epochs": 2,
            "warmup_steps": 1,
            "log_every": 1,
            "num_threads": 1,
        },
        "data": {"train_size": 64, "shards": 1, "valid_size": 8},
        "eval": {"size": 8, "batch_size": 8},
    },
    "studies": {
        "s": {"task": "linalg", "params": {"op": "transpose", "dim": 2, "encoding": "P1000"}},
    },
}


def test_epoch_metrics_have_one_name_each():
    metrics = {"train_loss": 1.5, "lr": 1e-3, "valid_acc_tol5": 0.25, "valid_loss": 2.0}
    assert epoch_metrics(metrics) == [
        ("train/epoch_loss", 1.5),
        ("valid/acc_tol5", 0.25),
        ("valid/loss", 2.0),
    ]


def test_log_rows_carry_the_dfa_alignment_curve():
    records = [
        {"step": 5, "epoch": 0, "loss": 1.0, "lr": 0.1, "tokens_per_s": 9.0},
        {"step": 4, "epoch": 0, "alignment/enc0": 0.25, "alignment/all": 0.5},
    ]
    assert log_rows(records) == [
        ("train/loss", 1.0, 5),
        ("train/lr", 0.1, 5),
        ("train/tokens_per_s", 9.0, 5),
        ("train/alignment/enc0", 0.25, 4),
        ("train/alignment/all", 0.5, 4),
    ]


@pytest.mark.slow
def test_a_tracked_run_uses_one_namespace_in_a_model_training_experiment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**CONFIG, "tracking": {"uri": uri}}))
    args = ["--no-progress", "--threads", "1"]
    assert main(["train", "--config", "c.yaml", "--study", "s", *args]) == 0
    (run,) = load_plan("c.yaml").studies["s"].runs
    assert main(["evaluate", str(run.dir), *args]) == 0

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("s")
    assert exp.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    (logged,) = client.search_runs([exp.experiment_id])
    assert logged.data.tags["mlflow.source.name"] == "synthmath train"  # the Source column
    assert logged.data.tags["mlflow.source.type"] == "JOB"
    keys = set(logged.data.metrics)
    assert keys and all(k.startswith(NAMESPACES) for k in keys), sorted(keys)
    # each quantity under one name: no unprefixed or underscore-prefixed twins
    for old in ("lr", "train_loss", "valid_loss", "valid_acc_tol5"):
        assert old not in keys
    assert {"train/loss", "train/lr", "train/epoch_loss", "valid/acc_tol5", "valid/loss"} <= keys
    assert "test/id/acc_tol5" in keys and "final/best_epoch" in keys
    # epoch metrics sit at the optimizer step that ends their epoch (2 steps per epoch)
    steps = [m.step for m in client.get_metric_history(logged.info.run_id, "valid/acc_tol5")]
    assert sorted(steps) == [2, 4]


def test_an_experiment_made_before_the_kind_tag_gets_it(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    old = tracker.client.create_experiment("old")  # as an earlier version created it
    assert EXPERIMENT_KIND_TAG not in tracker.client.get_experiment(old).tags
    assert tracker.experiment("old") == old
    assert tracker.client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    new = tracker.experiment("new", "a description")
    tags = tracker.client.get_experiment(new).tags
    assert tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    assert tags["mlflow.note.content"] == "a description"
