"""The workflow plans the CAS baseline when ``cas:`` is configured (dry run): one SymPy job on
the test shards the evaluate jobs read, its report, and the report in the results README."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from synthmath.runs.plan import build_plan

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "defaults": {
        "model": {"n_enc_layers": 1, "n_dec_layers": 1, "d_model": 16, "n_heads": 2},
        "training": {"batch_size": 8, "epoch_size": 24, "max_epochs": 1, "num_threads": 1},
        "data": {"train_size": 40, "valid_size": 8},
        "eval": {"size": 6, "batch_size": 6, "beam_sizes": [1, 2]},
    },
    "studies": {
        "tiny_sym": {
            "task": "symbolic",
            "params": {"max_ops": 4, "max_len": 64},
            "model": {"max_len": 80},
            "grid": {"params.problem": ["prim_bwd", "ode1"]},
        }
    },
    "cas": {"study": "tiny_sym", "size": 4, "timeouts": [0.5, 1], "workers": 1},
}


def dry_run(tmp_path: Path, config: dict) -> str:
    work = tmp_path / "wf"
    work.mkdir()
    shutil.copy(ROOT / "Snakefile", work / "Snakefile")
    shutil.copytree(ROOT / "workflow", work / "workflow")
    (work / "tiny.yaml").write_text(yaml.safe_dump(config))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    proc = subprocess.run(
        [snakemake, "-n", "--cores", "2", "--configfile", "tiny.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def _job(out: str, rule: str) -> dict[str, str]:
    """The fields (input, output, threads...) of the one planned job of ``rule``."""
    blocks = re.findall(rf"^rule {rule}:\n((?:    .*\n)+)", out, flags=re.M)
    assert len(blocks) == 1, f"{len(blocks)} jobs of rule {rule}"
    return dict(line.strip().split(": ", 1) for line in blocks[0].splitlines())


def test_dry_run_plans_the_cas_jobs(tmp_path):
    config = {**TINY, "cas": {**TINY["cas"], "workers": 3}}
    out = dry_run(tmp_path, config)
    cas = build_plan(config).cas
    job = _job(out, "cas")
    shards = sorted(str(p) for ds in cas.datasets.values() for p in ds.shard_paths())
    assert len(shards) == 2  # prim_bwd and ode1: the runs' test sets, no new dataset
    assert sorted(job["input"].split(", ")) == shards
    assert job["output"] == "results/cas/tiny_sym.json"
    assert job["threads"] == "2"  # cas.workers, at most --cores
    evaluate = [line for line in out.splitlines() if line.strip().startswith("input:")]
    for shard in shards:  # the same shards feed an evaluate job
        assert sum(shard in line for line in evaluate) == 2  # cas + evaluate
    report = _job(out, "cas_report")
    assert report["output"] == "results/cas/tiny_sym.md"
    assert report["input"].startswith("results/cas/tiny_sym.json, ")
    assert report["input"].count("/eval/id.json") == 2
    assert "results/cas/tiny_sym.md" in _job(out, "summary")["input"]
    # without cas: the configs of tests/workflow/test_workflow.py::test_dry_run
