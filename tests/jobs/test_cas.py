"""The CAS jobs: SymPy on the shards of a study's test sets, then Tables 3 and 8 beside the
paper's rows and the model's accuracies (strict JSON, Markdown, the results README)."""

import json

from synthmath.jobs.cas import cas_job, cas_report_job
from synthmath.report.study import write_summary
from synthmath.runs.datasets import generate_shard
from synthmath.runs.plan import CasSpec, make_dataset


def _strict(text: str) -> dict:
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_cas_job_and_report(tmp_path):
    root = str(tmp_path / "results")
    datasets, paths = {}, {}
    for problem, size in (("prim_bwd", 3), ("ode1", 2)):
        ds = make_dataset("symbolic", {"problem": problem, "max_ops": 2}, size, 7, 1, "test", root)
        generate_shard(ds.task, ds.params, size, ds.seed, 0, ds.shard_path(0), dataset=ds.id)
        datasets[problem], paths[problem] = ds, [str(ds.shard_path(0))]
    spec = CasSpec("sym", "id", 2, [0.5, 1.0], datasets, workers=1, results=root)
    out = tmp_path / "results" / "cas" / "sym.json"
    result = cas_job(spec.job_json(), paths, out)
    stored = _strict(out.read_text())
    assert stored == json.loads(json.dumps(result))
    assert list(stored["problems"]) == ["prim_bwd", "ode1"]
    assert stored["datasets"] == {p: ds.id for p, ds in datasets.items()}
    for res in stored["problems"].values():
        assert res["n"] == 2  # the first cas.size problems of each test set
        for row in res["by_timeout"].values():
            assert abs(row["success"] + row["failure"] + row["timeout"] - 1) < 1e-9

    evals = [tmp_path / "bwd.json", tmp_path / "missing.json"]
    evals[0].write_text(
        json.dumps(
            {
                "test_set": "id",
                "n": 6,
                "grid": {"params.problem": "prim_bwd"},
                "test_params": {"problem": "prim_bwd"},
                "beam_size": 1,
                "metrics": {"acc": 0.5, "acc_beam1": 0.5, "acc_beam2": 0.75, "exact": 0.1},
            }
        )
    )
    md = cas_report_job(out, evals, tmp_path / "results" / "cas" / "sym.md")
    assert md == (tmp_path / "results" / "cas" / "sym.md").read_text()
    assert "| Mathematica (30 s), paper | 84.0 | 77.2 |" in md  # Table 3, quoted
    assert "| 30 s | 84.0 / 12.8 / 3.2 |" in md  # Table 8, quoted
    assert "| model, beam 10, paper | 99.6 | 94.0 |" in md
    assert "| model, beam 1 | 50.0 | - |" in md and "| model, beam 2 | 75.0 | - |" in md
    bwd, ode1 = stored["problems"]["prim_bwd"], stored["problems"]["ode1"]
    for t in ("0.5", "1"):
        ours = [100 * r["by_timeout"][t]["success"] for r in (bwd, ode1)]
        assert f"| SymPy ({t} s) | {ours[0]:.1f} | {ours[1]:.1f} |" in md
        cells = [
            " / ".join(
                f"{100 * r['by_timeout'][t][k]:.1f}" for k in ("success", "failure", "timeout")
            )
            for r in (bwd, ode1)
        ]
        assert f"| {t} s | - | {cells[0]} | {cells[1]} |" in md  # no paper row at 0.5 and 1 s

    readme = tmp_path / "results" / "README.md"
    write_summary({}, [], readme, cas_paths=[tmp_path / "results" / "cas" / "sym.md"])
    text = readme.read_text()
    assert "## CAS baseline: sym" in text and "| Mathematica (30 s), paper | 84.0" in text
    assert "<!--" not in text
