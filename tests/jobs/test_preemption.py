"""Kill-and-resume end to end: a real `synthmath train` process is killed mid-epoch (SIGKILL;
SIGUSR1 then SIGTERM, the signals SLURM sends before preemption), rerun to completion, and
compared with an uninterrupted run of the same seed: same weights, same metrics, and one
FINISHED MLflow run holding each metric step once."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from synthmath.runs.artifacts import RunDir
from synthmath.train.checkpoint import CHECKPOINT_NAME, load_weights

pytestmark = pytest.mark.slow  # five training processes: about a minute on two cores

STUDY = "preempt"
CONFIG = {
    "studies": {
        STUDY: {
            "task": "linalg",
            "description": "kill and resume",
            "params": {"op": "transpose", "dim": 3, "encoding": "P1000"},
            "model": {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 32, "n_heads": 2},
            "training": {
                "batch_size": 16,
                "epoch_size": 640,  # 40 steps per epoch
                "max_epochs": 2,
                "lr": 1.0e-3,
                "warmup_steps": 4,
                "log_every": 2,
                "checkpoint_every": 5,  # so a SIGKILL finds a checkpoint mid-epoch
                "num_threads": 1,
                "device": "cpu",
                "precision": "fp32",
            },
            "data": {"train_size": 200, "valid_size": 16},
            "eval": {"size": 16, "batch_size": 16},
        }
    }
}
EXIT_TEMPFAIL = 75


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory) -> Path:
    """An MLflow database with its tables made once (creating one takes seconds)."""
    from synthmath.track.mlflow import init_tracking

    path = tmp_path_factory.mktemp("db") / "mlflow.db"
    init_tracking(f"sqlite:///{path}", {})
    return path


def workdir(root: Path, name: str, empty_db: Path) -> Path:
    """A folder holding the config; the run writes results/ (and its MLflow db) there."""
    work = root / name
    (work / "results").mkdir(parents=True)
    shutil.copy(empty_db, work / "results" / "mlflow.db")
    config = {"tracking": {"uri": f"sqlite:///{work / 'results' / 'mlflow.db'}"}, **CONFIG}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def start_training(work: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "synthmath.cli", "train", "--config", "config.yaml"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen(
        [*cmd, "--study", STUDY, "--no-progress"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def run_dir(work: Path) -> Path:
    (path,) = (work / "results" / STUDY).iterdir()
    return path


def wait_for_checkpoint_at(work: Path, proc: subprocess.Popen, step: int) -> None:
    """Poll until the run has saved a mid-epoch checkpoint at ``step`` or later."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "training ended before it could be killed:\n" + finish(proc)[1]
        ckpts = list((work / "results" / STUDY).glob(f"*/{CHECKPOINT_NAME}"))
        if ckpts:
            try:
                state = torch.load(ckpts[0], map_location="cpu", weights_only=True)
            except Exception:  # a reader on another OS could race the rename; retry
                state = None
            if state and state["global_step"] >= step:
                return
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no checkpoint within 90 s:\n" + finish(proc)[1])


def checkpoint_state(work: Path) -> dict:
    return torch.load(RunDir(run_dir(work)).checkpoint, map_location="cpu", weights_only=True)


def assert_same_results(work: Path, reference: Path) -> None:
    model = load_weights(RunDir(run_dir(work)).model)[0]
    expected = load_weights(RunDir(run_dir(reference)).model)[0]
    assert model.keys() == expected.keys()
    for name in model:
        assert torch.equal(model[name], expected[name]), name
    summary = json.loads(RunDir(run_dir(work)).train_record.read_text())
    expected_summary = json.loads(RunDir(run_dir(reference)).train_record.read_text())
    for key in ("train_time_s", "mlflow_run_id"):
        summary.pop(key), expected_summary.pop(key)
    assert summary == expected_summary
    assert summary["steps"] == 80 and len(summary["history"]) == 2


def mlflow_history(work: Path) -> dict[str, list[tuple[int, float]]]:
    """Metric key -> [(step, value)] of the study's only MLflow run, which must be FINISHED."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'results' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(STUDY)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1, [(r.info.run_name, r.info.status) for r in runs]
    (run,) = runs
    assert run.info.status == "FINISHED"
    recorded = json.loads(RunDir(run_dir(work)).mlflow_record.read_text())["run_id"]
    assert run.info.run_id == recorded
    return {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }


def assert_same_mlflow(work: Path, reference: Path) -> None:
    history, expected = mlflow_history(work), mlflow_history(reference)
    assert history.keys() == expected.keys()
    assert len(expected["train/loss"]) == 40  # a point every 2 of 80 steps
    for key, points in history.items():
        steps = [s for s, _ in points]
        assert len(steps) == len(set(steps)), f"{key}: steps logged twice: {steps}"
        assert steps == [s for s, _ in expected[key]], key
        if key != "train/tokens_per_s" and key != "final/train_time_s":  # timings differ
            assert points == expected[key], key


class Reference:
    """An uninterrupted run of the same config and seed, trained while the first test runs."""

    def __init__(self, work: Path):
        self.work, self.proc = work, start_training(work)

    def done(self) -> Path:
        if self.proc.returncode is None:
            code, out = finish(self.proc)
            assert code == 0, out
        return self.work


@pytest.fixture(scope="module")
def reference(tmp_path_factory, empty_db):
    ref = Reference(workdir(tmp_path_factory.mktemp("preempt"), "reference", empty_db))
    yield ref
    if ref.proc.poll() is None:
        ref.proc.kill()
        ref.proc.communicate()


def test_sigkill_mid_epoch_then_rerun_matches_uninterrupted(tmp_path, empty_db, reference):
    work = workdir(tmp_path, "killed", empty_db)
    proc = start_training(work)
    wait_for_checkpoint_at(work, proc, step=50)  # epoch 1, step 10
    time.sleep(0.3)  # let it log steps past the checkpoint: the rerun replays them
    proc.send_signal(signal.SIGKILL)
    code, out = finish(proc)
    assert code == -signal.SIGKILL, out
    state = checkpoint_state(work)
    assert not state["done"] and 0 < state["step_in_epoch"] < 40, "not killed mid-epoch"

    code, out = finish(start_training(work))
    assert code == 0, out
    assert "resuming from" in out
    assert_same_results(work, reference.done())
    assert_same_mlflow(work, reference.done())


def test_slurm_warning_signal_and_sigterm_checkpoint_exit_75_and_resume(
    tmp_path, empty_db, reference
):
    """SIGUSR1 (SLURM's warning before the time limit, `--signal=USR1@120`) in epoch 0, then
    SIGTERM (preemption, scancel) in epoch 1: each saves a checkpoint and exits 75."""
    work = workdir(tmp_path, "signalled", empty_db)
    for signum, step in ((signal.SIGUSR1, 10), (signal.SIGTERM, 50)):
        proc = start_training(work)
        wait_for_checkpoint_at(work, proc, step=step)
        proc.send_signal(signum)
        code, out = finish(proc)
        assert code == EXIT_TEMPFAIL, out
        assert f"stopped by {signum.name}" in out
        state = checkpoint_state(work)
        assert not state["done"] and state["global_step"] > step
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{work / 'results' / 'mlflow.db'}")
        run_id = json.loads(RunDir(run_dir(work)).mlflow_record.read_text())["run_id"]
        assert client.get_run(run_id).info.status == "KILLED"  # until the rerun reopens it

    code, out = finish(start_training(work))
    assert code == 0, out
    assert_same_results(work, reference.done())
    assert_same_mlflow(work, reference.done())
