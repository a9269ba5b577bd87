"""The baseline job: a method answers the shards of a study's test set and the task scores it;
the JSON reads like a run's evaluation."""

import copy
import json

import pytest

from synthmath.jobs.baseline import baseline_job
from synthmath.runs.config import validate_config
from synthmath.runs.datasets import generate_shard

CONFIG = {
    "studies": {
        "ode": {
            "task": "odeformer",
            "params": {"max_dim": 2, "max_points": 60, "min_points": 50, "max_answer_tokens": 100},
            "model": {"max_len": 128},
            "eval": {"size": 3, "beam_sizes": [1, 10]},
            "test_sets": {"strogatz": {"benchmark": "strogatz", "rescale": True}},
        },
    },
    "baselines": {"ode": {"methods": ["sindy"], "size": 2}},
}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    cfg = copy.deepcopy(CONFIG) | {"results": str(root)}
    spec = validate_config(cfg).baselines["ode/sindy"]
    ds = spec.test_sets["strogatz"]
    path = generate_shard(ds.task, ds.params, ds.size, ds.seed, 0, ds.shard_path(0), dataset=ds.id)
    out = spec.eval_path("strogatz")
    summary = baseline_job(spec.job_json("strogatz"), [path], out)
    return summary, json.loads(out.read_text())


def test_the_json_reads_like_a_runs_evaluation(result):
    summary, stored = result
    assert stored == json.loads(json.dumps(summary))
    assert stored["n"] == 2  # baselines.size: the first 2 of the 3 examples
    assert stored["method"] == stored["run_id"] == "baseline:sindy"
    assert stored["test_params"]["noise"] == 0.0 and stored["test_params"]["rescale"] is True
    assert stored["seconds_per_problem"] > 0
    metrics = stored["metrics"]
    assert {"acc_r2_0.9", "median_r2", "acc_gen_0.9", "acc_r2_0.9_beam10"} <= set(metrics)
    # one answer per problem: its "best of 10" is that answer
    assert metrics["acc_r2_0.9_beam10"] == metrics["acc_r2_0.9"]
    assert "rounding" in stored and stored["fit_errors"] == 0
    assert stored["examples"][0]["predicted"]
