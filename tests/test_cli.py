"""Dataset shards, deterministic batches, and the command line."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthmath.runs.artifacts import RunDir

ROOT = Path(__file__).resolve().parents[1]


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
    config.pop("cas", None)  # it names a study this config drops
    config.pop("baselines", None)  # so does this
    config["studies"] = {"tiny": copy.deepcopy(config["studies"]["tiny_ops"])}
    config["studies"]["tiny"]["grid"] = {"params.op": ["transpose"]}
    del config["studies"]["tiny"]["report"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    proc = run_cli("train", "--config", str(path), "--study", "tiny", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = [p for p in (tmp_path / "results" / "tiny").iterdir() if p.is_dir()]
    files = RunDir(run_dir)
    assert files.model.exists() and files.train_record.exists()
    assert files.status() == "trained"
    first = json.loads(files.train_record.read_text())
    proc = run_cli("train", "--config", str(path), "--study", "tiny", "--no-progress")
    assert proc.returncode == 0
    assert json.loads(files.train_record.read_text())["history"] == first["history"]
    proc = run_cli("evaluate", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert "id: n=24" in proc.stdout
    assert json.loads(files.eval("id").read_text())["n"] == 24
    assert files.status() == "evaluated"
    proc = run_cli("predict", str(run_dir), "-n", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("exact:") == 2


def test_cli_capabilities_are_declared_and_named(capsys, tmp_path, monkeypatch):
    """solve / predict FILE work for the tasks that declare them and name those tasks
    otherwise; predict --beam shows every hypothesis with its scores."""
    from synthmath.cli import main
    from synthmath.runs.artifacts import RunDir, build_model, save_model
    from synthmath.runs.plan import build_plan
    from synthmath.tasks.registry import make_task, task_names

    assert task_names("solve_file") == ["boolean", "differential", "metabolic"]
    problem = tmp_path / "problem.json"
    problem.write_text("{}")
    assert main(["solve", "linalg", str(problem)]) == 2
    err = capsys.readouterr().err
    assert "solve: task 'linalg' cannot; tasks that can: boolean, differential, metabolic" in err

    monkeypatch.chdir(tmp_path)
    config = {
        "studies": {
            "s": {
                "task": "linalg",
                "params": {"op": "transpose", "dim": 2},
                "model": {"d_model": 16, "n_heads": 2, "max_len": 64},
            }
        }
    }
    run = next(iter(build_plan(config).runs.values()))
    task = make_task("linalg", run.params)
    save_model(RunDir(tmp_path / "run").model, build_model(run, task), task, run)
    assert main(["predict", str(tmp_path / "run"), str(problem)]) == 2
    err = capsys.readouterr().err
    assert "task 'linalg' cannot; tasks that can: boolean, metabolic" in err
    assert main(["predict", str(tmp_path / "run"), "-n", "2", "--beam", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("predicted:") == 2 and out.count("beam 3:") == 2
    assert out.count("scores:") == 6


def test_sample_help_params_lists_every_parameter(capsys):
    from synthmath.cli import main
    from synthmath.tasks.registry import get_task_class, task_names

    for name in task_names():
        assert main(["sample", name, "--help-params"]) == 0
        out = capsys.readouterr().out
        for key, spec in get_task_class(name).PARAMS.items():
            assert f" {key} (" in out and spec.doc in out
    assert main(["sample", "nosuch", "--help-params"]) == 2
    assert "unknown task 'nosuch'" in capsys.readouterr().err
