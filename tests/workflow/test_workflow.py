"""The Snakemake workflow: dry runs of every config, config errors, a tiny end-to-end run."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CONFIGS = [
    "config.yaml",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "configs").rglob("*.yaml")),
]


def workdir_copy(tmp_path: Path) -> Path:
    """A copy of the workflow files, so results/ goes to a temporary folder."""
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, work / name)
    for name in ("workflow", "configs", "profiles"):
        shutil.copytree(ROOT / name, work / name, symlinks=False)
    return work


def snakemake(work: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, "--cores", "2", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """``snakemake -n`` of every config, run side by side (one Snakemake is one busy core for
    most of its 20-60 s), each in its own copy of the workflow."""
    from concurrent.futures import ThreadPoolExecutor

    def dry_run(config: str) -> subprocess.CompletedProcess:
        work = workdir_copy(tmp_path_factory.mktemp("dry"))
        return snakemake(work, "-n", "--configfile", config)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        return dict(zip(CONFIGS, pool.map(dry_run, CONFIGS)))


@pytest.mark.parametrize("config", CONFIGS)
def test_dry_run(dry_runs, config):
    proc = dry_runs[config]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "train" in proc.stdout


def test_configfile_replaces_default(dry_runs):
    proc = dry_runs["configs/ci.yaml"]
    assert proc.returncode == 0
    studies = yaml.safe_load((ROOT / "configs/ci.yaml").read_text())["studies"]
    default = yaml.safe_load((ROOT / "config.yaml").read_text())["studies"]
    for name in set(default) - set(studies):
        assert f"results/{name}/" not in proc.stdout


def test_bad_config_stops_before_any_job(tmp_path):
    work = workdir_copy(tmp_path)
    config = yaml.safe_load((ROOT / "configs/ci.yaml").read_text())
    config["studies"]["tiny_ops"]["model"] = {"positions": "spiral"}
    (work / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "--configfile", "bad.yaml")
    assert proc.returncode != 0
    assert "studies.tiny_ops.model.positions: unknown value 'spiral'" in proc.stderr + proc.stdout
    assert "allowed: learned" in proc.stderr + proc.stdout
    assert not (work / "results").exists()


def test_cross_field_check_stops_a_dry_run(tmp_path):
    work = workdir_copy(tmp_path)
    config = yaml.safe_load((ROOT / "configs/ci.yaml").read_text())
    config["studies"]["tiny_ops"]["model"] = {"n_heads": 3}  # does not divide d_model=32
    (work / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--configfile", "bad.yaml")
    assert proc.returncode != 0
    assert "studies.tiny_ops.model.n_heads: must divide d_model=32" in proc.stderr + proc.stdout


def test_results_root_from_the_config(tmp_path):
    work = workdir_copy(tmp_path)
    config = yaml.safe_load((ROOT / "configs/ci.yaml").read_text())
    config["results"] = "elsewhere/out"
    (work / "other.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--configfile", "other.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "elsewhere/out/tiny_ops/table.csv" in proc.stdout
    assert "elsewhere/out/data/" in proc.stdout and "elsewhere/out/README.md" in proc.stdout
    assert "results/" not in proc.stdout


@pytest.mark.slow
def test_tiny_end_to_end(tmp_path):
    from mlflow.tracking import MlflowClient

    work = workdir_copy(tmp_path)
    proc = snakemake(work, "--configfile", "configs/ci.yaml", timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = work / "results"
    studies = (
        "tiny_ops", "tiny_ood", "tiny_grow", "tiny_metab", "tiny_known", "tiny_arith",
        "tiny_symbolic", "tiny_differential", "tiny_boolean", "tiny_recur", "tiny_symreg",
        "tiny_odeformer",
    )  # fmt: skip
    for study in studies:
        for name in ("table.csv", "table.md", "figure.png"):
            assert (results / study / name).stat().st_size > 0
    assert "tiny_ood" in (results / "README.md").read_text()
    evals = sorted(results.glob("*/*/eval/*.json"))
    # tiny_ops: 2 runs x 1 test set; tiny_ood: 2 x 2; tiny_grow 1; tiny_metab 2 x 2;
    # tiny_known 1; tiny_arith 2; tiny_symbolic 2 x 2; tiny_differential 2 x 1; tiny_boolean 2;
    # tiny_recur 1 x 2; tiny_symreg 1 x 2; tiny_odeformer 1 x 2
    assert len(evals) == 2 * 1 + 2 * 2 + 1 + 2 * 2 + 1 + 2 + 2 * 2 + 2 * 1 + 2 + 2 + 2 + 2
    symreg = json.loads(next(results.glob("tiny_symreg/*/eval/strogatz.json")).read_text())
    assert {"acc_r2_0.99_beam2", "recovery", "r2_zero"} <= set(symreg["metrics"])
    assert len(symreg["by_group"]["problem"]) == 8 and symreg["seconds_per_problem"] > 0
    assert "strogatz_lv1" in (results / "tiny_symreg" / "table-problems.md").read_text()
    assert (results / "tiny_symreg" / "figure-problems.png").stat().st_size > 0
    # the baseline, scored by the task on the model's test shards, in the study's table
    sindy = json.loads((results / "baselines/tiny_odeformer/sindy/n10_s50.json").read_text())
    assert sindy["method"] == "baseline:sindy" and "acc_r2_0.9" in sindy["metrics"]
    assert "baseline:sindy" in (results / "tiny_odeformer" / "table.md").read_text()
    differential = json.loads(next(results.glob("tiny_differential/*/eval/id.json")).read_text())
    assert "acc" in differential["metrics"] and set(differential["by_group"]["size"]) <= {"2", "3"}
    recur = json.loads(next(results.glob("tiny_recur/*/eval/classic.json")).read_text())
    assert {"acc_beam2", "acc_terms10", "median_rel_error"} <= set(recur["metrics"])
    assert set(recur["by_group"]) >= {"degree", "ops", "length"}
    symbolic = json.loads(next(results.glob("tiny_symbolic/*/eval/longer.json")).read_text())
    assert {"acc_beam1", "acc_beam2", "acc_numeric_beam2", "parse_error"} <= set(
        symbolic["metrics"]
    )
    assert "dropped_train_overlap" in symbolic and set(symbolic["by_group"]) >= {"ops", "length"}
    # the CAS baseline: SymPy in a spawned worker, beside the paper's Mathematica rows
    cas = json.loads((results / "cas" / "tiny_symbolic.json").read_text())
    assert {"prim_bwd", "ode1"} <= set(cas["problems"])
    assert "84.0" in (results / "cas" / "tiny_symbolic.md").read_text()
    assert "CAS baseline" in (results / "README.md").read_text()
    known = json.loads(next(results.glob("tiny_known/*/eval/known.json")).read_text())
    assert {"cholesterol", "tca_cycle"} <= set(known["by_group"]["network"])
    table = (results / "tiny_known" / "table.md").read_text()
    assert "cholesterol" in table
    metab = json.loads(next(results.glob("tiny_metab/*/eval/tree.json")).read_text())
    assert "acc" in metab["metrics"] and metab["n"] == 24
    primed = [json.loads(p.read_text()) for p in results.glob("tiny_arith/*/config.json")]
    assert sorted(bool(r["prime_data"]) for r in primed) == [False, True]
    arith = json.loads(next(results.glob("tiny_arith/*/eval/long.json")).read_text())
    assert set(arith["by_group"]["size"]) <= {"4", "5", "6"} and arith["n"] == 24
    grow = json.loads(next(results.glob("tiny_grow/*/eval/id.json")).read_text())
    assert set(grow["by_group"]["size"]) == {"3x3", "4x4"}
    grow_run = json.loads(next(results.glob("tiny_grow/*/config.json")).read_text())
    assert grow_run["init_from"].startswith("results/tiny_ops/op-transpose")
    grow_log = next((results / "logs" / "train" / "tiny_grow").glob("*.log")).read_text()
    assert "initialised from results/tiny_ops/op-transpose" in grow_log
    boolean = json.loads(next(results.glob("tiny_boolean/*/eval/circuits.json")).read_text())
    assert {"selected_acc_beam2", "equivalent_beam2", "median_fit_error"} <= set(boolean["metrics"])
    assert {"parity_4", "adder_2[1]"} <= set(boolean["by_group"]["source"])
    summary = json.loads(next(results.glob("tiny_ops/*/eval/id.json")).read_text())
    assert summary["n"] == 24 and "acc_tol5" in summary["metrics"]

    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    tests = {"tiny_ops": {"id"}, "tiny_ood": {"semicircle", "positive"}, "tiny_grow": {"id"}}
    for study, n_runs in (("tiny_ops", 2), ("tiny_ood", 2), ("tiny_grow", 1)):
        exp = client.get_experiment_by_name(study)
        assert exp is not None
        runs = client.search_runs([exp.experiment_id])
        training = [r for r in runs if r.data.tags.get("snakemake_rule") == "train"]
        assert len(training) == n_runs
        for run in training:
            assert run.info.status == "FINISHED"
            assert {"study", "run_id", "git_commit", "config_hash"} <= set(run.data.tags)
            assert run.data.params["training.batch_size"] == "16"
            assert any(k.startswith("test/") for k in run.data.metrics)
            history = client.get_metric_history(run.info.run_id, "train/loss")
            assert len(history) >= 2
            # its datasets as dataset inputs, its final weights as model/ artifacts
            inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
            contexts = sorted(t.value for d in inputs for t in d.tags)
            assert contexts == sorted({"train", "valid"} | tests[study]), contexts
            model = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
            assert model == {"model/model.safetensors", "model/README.md"}
        reports = client.search_runs(
            [exp.experiment_id], filter_string="tags.kind = 'study-report'"
        )
        assert len(reports) == 1
        artifacts = {a.path for a in client.list_artifacts(reports[0].info.run_id)}
        assert {"figure.png", "table.csv", "table.md"} <= artifacts

    # snakemake --report: one HTML file with every study's captioned figure and table
    html = work / "report.html"
    proc = snakemake(work, "--configfile", "configs/ci.yaml", "--report", str(html))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    text = html.read_text(errors="replace")
    for study in studies:
        assert study in text

    # a second invocation has nothing to do
    again = snakemake(work, "--configfile", "configs/ci.yaml", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr

    # a new test set, other eval settings and a new study re-run evaluations (and run the new
    # study), never a finished training (nor tracking_init, whose output every job reads)
    config = yaml.safe_load((work / "configs" / "ci.yaml").read_text())
    config["studies"]["tiny_ops"].setdefault("test_sets", {"id": {}})["later"] = {"dim": 4}
    config["defaults"].setdefault("eval", {})["beam_size"] = 2
    config["studies"]["tiny_new"] = {**config["studies"]["tiny_known"], "description": "New."}
    (work / "later.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    later = snakemake(work, "--configfile", "later.yaml", "-n")
    assert later.returncode == 0, later.stdout[-3000:] + later.stderr[-3000:]
    stats = later.stdout.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    jobs = [line.split()[0] for line in stats]
    assert "evaluate" in jobs and "tracking_init" not in jobs, later.stdout[-3000:]
    trained = [
        line for line in later.stdout.splitlines() if line.startswith("    output: results/")
    ]
    assert all("tiny_new" in line for line in trained if "model.safetensors" in line), trained
    assert any("tiny_new" in line and "model.safetensors" in line for line in trained), trained
