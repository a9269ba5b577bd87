"""SLURM through Snakemake: the profiles, and a tiny study run on a real single-node Slurm.

The profile checks run everywhere (the dry runs need snakemake-executor-plugin-slurm). The
end-to-end test starts munged, slurmctld and slurmd on localhost with tools/slurm-up.sh
(root and apt-get), so it runs only when SYNTHMATH_SLURM_TEST=1 (as .ci/run does).
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from synthmath.runs.artifacts import RunDir

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CLUSTER = ROOT / "profiles" / "slurm" / "profile.yaml"
LOCAL = ROOT / "profiles" / "slurm-local" / "profile.yaml"
RUN_TIMEOUT_S = 480

# One linalg study, one run, one test set, one shard per dataset: 8 Slurm jobs.
TINY_CONFIG = {
    "defaults": {
        "model": {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 32, "n_heads": 2},
        "training": {"batch_size": 16, "epoch_size": 64, "max_epochs": 2, "warmup_steps": 4},
        "data": {"train_size": 100, "shards": 1, "valid_size": 16},
        "eval": {"size": 24, "batch_size": 24},
    },
    "studies": {
        "slurm_tiny": {
            "task": "linalg",
            "description": "One tiny transposition run through Slurm.",
            "params": {"op": "transpose", "dim": 3, "encoding": "P1000"},
            "report": {"kind": "bars", "rows": "test_set", "cols": "size"},
        }
    },
}
JOB_RULES = {
    "tracking_init": 1,
    "generate": 3,
    "train": 1,
    "evaluate": 1,
    "report": 1,
    "summary": 1,
}


def workflow_rules() -> set[str]:
    """Rule names defined in the workflow (Snakefile and workflow/rules/*.smk)."""
    sources = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    return {m for p in sources for m in re.findall(r"^rule (\w+):", p.read_text(), re.M)}


def copy_workflow(tmp_path: Path) -> Path:
    """The workflow files in a temporary folder with the tiny config, so results/ lands there."""
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, work / name)
    for name in ("workflow", "profiles"):
        shutil.copytree(ROOT / name, work / name)
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    return work


def job_resources(dry_run_output: str) -> dict[str, list[str]]:
    """rule name -> the `resources:` lines of its jobs in a dry run's output."""
    found: dict[str, list[str]] = {}
    rule = None
    for line in dry_run_output.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif rule and line.strip().startswith("resources:"):
            found.setdefault(rule, []).append(line)
    return found


def test_profiles_name_real_rules_and_request_gpus_where_meant():
    cluster, local = (yaml.safe_load(p.read_text()) for p in (CLUSTER, LOCAL))
    rules = workflow_rules()
    for profile in (cluster, local):
        assert profile["executor"] == "slurm"
        assert set(profile["set-resources"]) <= rules, set(profile["set-resources"]) - rules
        assert set(profile["set-threads"]) <= rules
        assert "train" in profile["set-threads"]  # train's threads otherwise need --cores
        # every rule that becomes a Slurm job has its own runtime and memory
        for rule in JOB_RULES:
            assert {"runtime", "mem_mb"} <= set(profile["set-resources"][rule]), rule
    assert set(local["set-resources"]) == set(cluster["set-resources"])
    # train's GPUs come from the rule (training.devices), so the profile must not fix them
    assert "gpu" not in cluster["set-resources"]["train"]
    assert cluster["set-resources"]["evaluate"]["gpu"] >= 1
    assert "gpu" not in cluster["set-resources"]["generate"]
    assert all(res.get("gpu", 0) == 0 for res in local["set-resources"].values())
    # no accounting database on the local Slurm: squeue, or the plugin hangs (slurm-local.md)
    assert local["slurm-status-command"] == "squeue"
    assert local["slurm-no-account"] is True
    assert "slurm-status-command" not in cluster  # real clusters have sacct


def test_slurm_scripts_parse():
    for script in ("slurm-up.sh", "slurm-down.sh"):
        proc = subprocess.run(["bash", "-n", str(ROOT / "tools" / script)], capture_output=True)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("profile", ["slurm", "slurm-local"])
def test_dry_run_submits_the_profile_resources(tmp_path, profile):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    work = copy_workflow(tmp_path)
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--workflow-profile", f"profiles/{profile}", "--configfile", "tiny.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    resources = job_resources(proc.stdout + proc.stderr)
    assert {rule: len(lines) for rule, lines in resources.items() if rule != "all"} == JOB_RULES
    expected = yaml.safe_load((work / "profiles" / profile / "profile.yaml").read_text())
    for rule in JOB_RULES:
        wanted = expected["set-resources"][rule]
        for line in resources[rule]:
            # `runtime: 60 * attempt` is 60 on the first attempt
            for key in ("runtime", "mem_mb"):
                value = eval(str(wanted[key]), {"attempt": 1})
                assert re.search(rf"\b{key}={value}(,|$)", line), (key, line)
            assert ("gpu=1" in line) == (profile == "slurm" and rule in ("train", "evaluate"))


def slurm_jobs_in(work: Path) -> dict[str, str]:
    """Slurm job id -> state for jobs whose working directory is `work` (also finished ones,
    which squeue keeps for MinJobAge seconds)."""
    out = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%i|%T|%Z"], capture_output=True, text=True
    ).stdout
    rows = [line.split("|") for line in out.splitlines() if line.count("|") == 2]
    return {job: state for job, state, cwd in rows if Path(cwd) == work}


@pytest.fixture(scope="module")
def local_slurm():
    """A running single-node Slurm; stopped afterwards if this fixture started it."""
    if os.environ.get("SYNTHMATH_SLURM_TEST") != "1":
        pytest.skip("real Slurm test: set SYNTHMATH_SLURM_TEST=1 (needs root and apt-get)")
    if os.geteuid() != 0:
        pytest.fail("SYNTHMATH_SLURM_TEST=1 needs root: tools/slurm-up.sh starts system daemons")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    was_up = shutil.which("sinfo") is not None and (
        subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.strip()
        == "idle"
    )
    up = subprocess.run(
        ["bash", str(ROOT / "tools" / "slurm-up.sh")], capture_output=True, text=True, timeout=300
    )
    assert up.returncode == 0, up.stdout + up.stderr
    yield
    if not was_up:
        subprocess.run(["bash", str(ROOT / "tools" / "slurm-down.sh")], timeout=120)


@pytest.mark.slurm
def test_tiny_study_through_real_slurm(local_slurm, tmp_path):
    from mlflow.tracking import MlflowClient

    work = copy_workflow(tmp_path)
    command = [SNAKEMAKE, "--workflow-profile", "profiles/slurm-local", "--configfile", "tiny.yaml"]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            command, cwd=work, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:  # the child got SIGKILL; cancel what it left queued
        subprocess.run(["scancel", *slurm_jobs_in(work)], capture_output=True)
        pytest.fail(f"the Slurm run took longer than {RUN_TIMEOUT_S} s")
    elapsed = time.monotonic() - start
    print(f"tiny study through Slurm: {elapsed:.0f} s")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]

    # every job went through sbatch, and Snakemake saw each of them finish
    submitted = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) == sum(JOB_RULES.values()), log[-5000:]
    finished = set(re.findall(r"Finished jobid: (\d+) \(Rule: (\w+)\)", log))
    assert {job for job, _ in finished} >= {job for job, _ in submitted}
    assert sorted(rule for _, rule in finished if rule != "all") == sorted(
        rule for rule, n in JOB_RULES.items() for _ in range(n)
    )
    assert "steps (100%) done" in log
    # Slurm itself: nothing left in the queue, and the jobs it still lists completed
    states = slurm_jobs_in(work)
    assert set(states) <= {slurm_id for _, slurm_id in submitted}
    assert set(states.values()) <= {"COMPLETED"}, states
    pending = subprocess.run(["squeue", "-h", "-o", "%i|%Z"], capture_output=True, text=True)
    assert str(work) not in pending.stdout

    results = work / "results"
    (run_dir,) = (results / "slurm_tiny").glob("run-*")
    for path in (
        RunDir(run_dir).model,
        RunDir(run_dir).train_record,
        RunDir(run_dir).eval("id"),
        results / "slurm_tiny" / "table.csv",
        results / "slurm_tiny" / "figure.png",
        results / "README.md",
    ):
        assert path.stat().st_size > 0, path

    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("slurm_tiny")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    training = [r for r in runs if r.data.tags.get("snakemake_rule") == "train"]
    assert len(training) == 1
    assert training[0].info.status == "FINISHED"
    assert any(key.startswith("test/") for key in training[0].data.metrics)
    assert len(client.get_metric_history(training[0].info.run_id, "train/loss")) >= 2
