"""The shared tracking server (tools/mlflow-server.sh): started on a free localhost port, several
jobs log to it in parallel, and no run, metric point, param or artifact is lost."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from synthmath.runs.artifacts import RunDir

pytestmark = pytest.mark.slow  # a server and four jobs start: about 45 s on two cores

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "mlflow-server.sh"
JOBS, POINTS, BATCH = 4, 300, 50

# one job: open a run through synthmath.track.mlflow (as a training job does), then log POINTS
# steps of two metrics in batches of BATCH steps, params and an artifact, and finish it
JOB = """
import sys
from pathlib import Path
from synthmath.track.mlflow import Tracker

uri, job, run_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
points, batch = int(sys.argv[4]), int(sys.argv[5])
tracker = Tracker(uri)
run_id = tracker.open_run("server_test", f"job{job}", run_dir, {"job": str(job)})
tracker.log_params(run_id, {"job": str(job), "points": str(points)})
for start in range(0, points, batch):
    rows = []
    for step in range(start, min(start + batch, points)):
        rows += [("train/loss", job + step / 1000, step), ("train/lr", 1e-3 * job, step)]
    tracker.log_metrics(run_id, rows)
note = run_dir / "note.txt"
note.write_text(f"job {job}")
tracker.log_artifacts(run_id, [note])
tracker.end_run(run_id)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url}/health did not answer within {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(url, artifact dir) of a server started by the script; stopped (its process group)
    after the test whatever happens."""
    tmp_path = tmp_path_factory.mktemp("server")
    port = free_port()
    artifacts = tmp_path / "shared" / "artifacts"
    env = {
        **os.environ,
        "PORT": str(port),
        "WORKERS": "2",
        "MLFLOW": str(Path(sys.executable).with_name("mlflow")),
    }
    env.pop("HOST", None)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        ["bash", str(SCRIPT), str(tmp_path / "local" / "mlflow.db"), str(artifacts)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the workers stop with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(url, proc)
        except AssertionError as err:
            log_text = (tmp_path / "server.log").read_text()[-3000:]
            raise AssertionError(f"{err}\n{log_text}") from None
        yield url, artifacts
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_bound_to_localhost_by_default(server):
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True)
    if listening.returncode != 0:
        pytest.skip("ss is not available")
    addresses = [line.split()[3] for line in listening.stdout.splitlines() if line.strip()]
    mine = [a for a in addresses if a.rsplit(":", 1)[1] == str(port)]
    assert mine and all(a.startswith("127.0.0.1:") for a in mine), mine


def test_parallel_jobs_lose_nothing(server, tmp_path):
    url, artifacts = server
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", JOB, url, str(job), str(tmp_path / f"run{job}")]
            + [str(POINTS), str(BATCH)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for job in range(JOBS)
    ]
    for job in jobs:
        out, _ = job.communicate(timeout=120)
        assert job.returncode == 0, out[-3000:]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("server_test")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"job{j}" for j in range(JOBS)]
    for run in runs:
        job = int(run.data.tags["job"])
        recorded = json.loads(RunDir(tmp_path / f"run{job}").mlflow_record.read_text())
        assert recorded == {"uri": url, "run_id": run.info.run_id}
        assert run.info.status == "FINISHED"
        assert run.data.params == {"job": str(job), "points": str(POINTS)}
        expected = {
            "train/loss": {step: job + step / 1000 for step in range(POINTS)},
            "train/lr": {step: 1e-3 * job for step in range(POINTS)},
        }
        for key, values in expected.items():
            history = client.get_metric_history(run.info.run_id, key)
            assert sorted(m.step for m in history) == list(range(POINTS)), key
            assert {m.step: m.value for m in history} == pytest.approx(values), key
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["note.txt"]
    # the server stored the artifacts in the shared directory, not next to the jobs
    notes = sorted(p.read_text() for p in artifacts.rglob("note.txt"))
    assert notes == [f"job {j}" for j in range(JOBS)]


def test_evaluation_rerun_logs_only_changed_test_metrics(tmp_path, monkeypatch):
    """Rerunning an evaluation job does not append a second, identical point to each test
    metric; a changed value is logged (and becomes the latest)."""
    from types import SimpleNamespace

    from synthmath.jobs.evaluate import _log_eval
    from synthmath.runs.plan import DatasetSpec
    from synthmath.track.mlflow import Tracker

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    run_id = tracker.open_run("exp", "run", tmp_path / "run", {})
    test_set = DatasetSpec("ds-test", "linalg", {"dim": 2}, 8, 3, 1, "test", str(tmp_path))
    spec = SimpleNamespace(tracking_uri=uri, test_sets={"id": test_set})
    summary = {
        "metrics": {"acc": 0.5, "nan": float("nan")},
        "by_group": {"size": {"3": {"acc": 0.25, "n": 4}}},
    }
    for _ in range(2):
        _log_eval(spec, tmp_path / "run", "id", summary)
    for key in ("test/id/acc", "test/id/size_3/acc"):
        assert len(tracker.client.get_metric_history(run_id, key)) == 1, key
    assert "test/id/nan" not in tracker.latest_metrics(run_id)
    summary["metrics"]["acc"] = 0.75
    _log_eval(spec, tmp_path / "run", "id", summary)
    assert [m.value for m in tracker.client.get_metric_history(run_id, "test/id/acc")] == [
        0.5,
        0.75,
    ]
    assert tracker.latest_metrics(run_id)["test/id/acc"] == 0.75
    assert len(tracker.client.get_metric_history(run_id, "test/id/size_3/acc")) == 1
    # the test set is the run's dataset input once, however often it was evaluated
    inputs = tracker.client.get_run(run_id).inputs.dataset_inputs
    assert [(d.dataset.name, [t.value for t in d.tags]) for d in inputs] == [("ds-test", ["id"])]
