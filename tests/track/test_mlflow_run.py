"""What a tiny tracked run leaves in a real local MLflow store (SQLite in a temporary folder):
its datasets as dataset inputs (once, however often the jobs rerun), its final weights as
safetensors artifacts that ``synthmath predict runs:/<id>`` loads, and, when switched on, system
metrics."""

from __future__ import annotations

import json

import pytest

from synthmath.cli import main
from synthmath.jobs.evaluate import evaluate_run
from synthmath.jobs.train import train_run
from synthmath.runs.artifacts import RunDir
from synthmath.runs.config import validate_config
from synthmath.runs.plan import RunSpec
from synthmath.track.mlflow import Tracker, dataset_digest


def tiny_config(uri: str, **tracking) -> dict:
    return {
        "tracking": {"enabled": True, "uri": uri, **tracking},
        "defaults": {
            "model": {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 16, "n_heads": 2},
            "training": {
                "batch_size": 16,
                "epoch_size": 32,
                "max_epochs": 1,
                "warmup_steps": 1,
                "num_threads": 1,
            },
            "data": {"train_size": 32, "shards": 1, "valid_size": 8},
            "eval": {"size": 8, "batch_size": 8},
        },
        "studies": {
            "s": {
                "task": "linalg",
                "params": {"op": "transpose", "dim": 2, "encoding": "P1000"},
                "test_sets": {"id": {}, "big": {"dim": 3}},
            }
        },
    }


@pytest.fixture
def tracked(tmp_path, monkeypatch):
    """(run spec, tracking uri) of a tiny run trained and evaluated on both test sets."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    plan = validate_config(tiny_config(uri))
    (run,) = plan.runs.values()
    train_run(run, progress=False)
    for test in run.test_sets:
        evaluate_run(run.dir, test, progress=False)
    return run, uri


def inputs_of(tracker: Tracker, mlflow_id: str) -> list[tuple[str, str, str, str]]:
    """(name, digest, context, source) of each dataset input of a run."""
    out = []
    for d in tracker.client.get_run(mlflow_id).inputs.dataset_inputs:
        (context,) = [t.value for t in d.tags if t.key == "mlflow.data.context"]
        out.append((d.dataset.name, d.dataset.digest, context, d.dataset.source))
    return sorted(out, key=lambda row: row[2])


def test_datasets_are_dataset_inputs_once_and_searchable(tracked):
    import mlflow

    run, uri = tracked
    check_training_milestones(run, uri)  # here: the tracked fixture trains (12 s) once
    check_precision(run, uri)
    tracker = Tracker(uri)
    mlflow_id = RunDir(run.dir).read_mlflow_id()
    expected = [
        (ds.id, dataset_digest(ds), context, json.dumps({"uri": str(ds.dir.resolve())}))
        for context, ds in [
            ("big", run.test_sets["big"]),
            ("id", run.test_sets["id"]),
            ("train", run.train_data),
            ("valid", run.valid_data),
        ]
    ]
    assert inputs_of(tracker, mlflow_id) == expected
    assert len({row[1] for row in expected}) == 4  # other settings, other digests
    # a rerun of the training (finished checkpoint reused) and of an evaluation adds nothing
    RunDir(run.dir).model.unlink()
    train_run(run, progress=False)
    evaluate_run(run.dir, "id", progress=False)
    assert RunDir(run.dir).read_mlflow_id() == mlflow_id
    assert inputs_of(tracker, mlflow_id) == expected
    # the documented dataset filters of search_runs find the run
    for where in (
        f"dataset.name = '{run.train_data.id}'",
        f"dataset.digest = '{dataset_digest(run.test_sets['big'])}'",
        "dataset.context = 'big'",
    ):
        found = mlflow.search_runs(experiment_names=["s"], filter_string=where)
        assert list(found["run_id"]) == [mlflow_id], where
    found = mlflow.search_runs(experiment_names=["s"], filter_string="dataset.name = 'other'")
    assert found.empty
    check_a_test_set_added_after_training(run, uri)


def check_a_test_set_added_after_training(run, uri: str) -> None:
    """The workflow's evaluate job passes the current config's evaluation fields: a test set
    and eval settings that the trained run never recorded are used without retraining."""
    config = tiny_config(uri)
    config["studies"]["s"]["test_sets"]["later"] = {"dim": 3, "dist": "gaussian"}
    config["defaults"]["eval"]["beam_size"] = 2
    (now,) = validate_config(config).runs.values()
    assert now.run_id == run.run_id and RunSpec.same_training(now.to_json(), run.to_json())
    evaluate_run(run.dir, "later", progress=False, evaluation=now.evaluation_json("later"))
    summary = json.loads(RunDir(run.dir).eval("later").read_text())
    assert summary["test_set"] == "later" and summary["beam_size"] == 2
    assert summary["dataset"] == now.test_sets["later"].id
    assert "later" not in RunDir(run.dir).read_spec().test_sets  # the training record stays


def check_precision(run, uri: str) -> None:
    """eval.precision (default fp32, left out of the spec) in MLflow's params, and what it
    resolved to in each evaluation JSON and in a tag per test set."""
    assert "precision" not in run.eval
    data = Tracker(uri).client.get_run(RunDir(run.dir).read_mlflow_id()).data
    assert data.params["eval.precision"] == "fp32"
    for test in ("id", "big"):
        assert json.loads(RunDir(run.dir).eval(test).read_text())["precision"] == "fp32"
        assert data.tags[f"test/{test}/precision"] == "fp32"


def check_training_milestones(run, uri: str) -> None:
    """train.json's milestones reach the evaluation JSONs (with the validation curve) and
    MLflow's final/* (a level never reached is not logged)."""
    files = RunDir(run.dir)
    record = json.loads(files.train_record.read_text())
    trained = json.loads(files.eval("big").read_text())["training"]
    assert trained["curve"]["metric"] == "valid_acc_tol5" and trained["curve"]["step"] == [2]
    assert trained["curve"]["value"] == [record["history"][0]["valid_acc_tol5"]]
    assert trained["final_loss"] == record["final_loss"] == record["history"][-1]["train_loss"]
    assert trained["steps_to_acc90"] == record["steps_to_acc90"]
    metrics = Tracker(uri).client.get_run(files.read_mlflow_id()).data.metrics
    assert metrics["final/final_loss"] == pytest.approx(record["final_loss"])
    assert ("final/steps_to_acc90" in metrics) == (record["steps_to_acc90"] is not None)


def test_predict_loads_the_logged_model(tracked, capsys):
    run, uri = tracked
    tracker = Tracker(uri)
    mlflow_id = RunDir(run.dir).read_mlflow_id()
    logged = sorted(a.path for a in tracker.client.list_artifacts(mlflow_id, "model"))
    assert logged == ["model/README.md", "model/model.safetensors"]
    local = tracker.client.download_artifacts(mlflow_id, "model/model.safetensors")
    with open(local, "rb") as f:
        assert f.read() == RunDir(run.dir).model.read_bytes()

    assert main(["predict", str(run.dir), "-n", "3", "--beam", "2"]) == 0
    from_dir = capsys.readouterr().out
    assert main(["predict", f"runs:/{mlflow_id}", "-n", "3", "--beam", "2"]) == 0
    from_mlflow = capsys.readouterr().out
    assert from_dir.count("predicted:") == 3 and from_mlflow == from_dir
    # a run without that model: a one-line error naming it
    assert main(["predict", "runs:/0123456789abcdef", "-n", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synthmath: error: runs:/0123456789abcdef: no model") and "\n" not in err


def test_system_metrics_are_logged_when_switched_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    plan = validate_config(tiny_config(uri, system_metrics=True))
    assert plan.system_metrics
    (run,) = plan.runs.values()
    # long enough for a few samples (the monitor logs a sample after each interval)
    run.training["max_epochs"] = 8
    train_run(run, progress=False, system_metrics=plan.system_metrics)
    metrics = Tracker(uri).latest_metrics(RunDir(run.dir).read_mlflow_id())
    system = [k for k in metrics if k.startswith("system/")]
    assert "system/cpu_utilization_percentage" in system, sorted(metrics)
    assert validate_config(tiny_config(uri)).system_metrics is False  # off by default
