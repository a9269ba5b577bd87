"""Train set priming: config expansion, run specs, and the mixed training set."""

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthmath.core.errors import ConfigError
from synthmath.jobs.train import load_train_data
from synthmath.runs.datasets import generate_shard
from synthmath.runs.plan import RunSpec, build_plan
from synthmath.tasks.registry import make_task
from synthmath.train.batches import EncodedSet

STUDY = {
    "task": "arithmetic",
    "params": {"op": "mul", "max_digits": 5},
    "data": {"train_size": 200, "seed": 4, "prime_params": {"min_digits": 35, "max_digits": 35}},
    "grid": {"data.prime_size": [0, 7, 20]},
    "test_sets": {"id": {}, "n35": {"min_digits": 35, "max_digits": 35}},
}


def plan_of(**changes):
    study = copy.deepcopy(STUDY)
    for key, value in changes.items():
        section, sub = key.split("__")
        study.setdefault(section, {})[sub] = value
    return build_plan({"studies": {"prime": study}})


def runs_by_size(plan):
    return {run.data["prime_size"]: run for run in plan.studies["prime"].runs}


def test_prime_datasets_in_the_plan():
    plan = plan_of()
    runs = runs_by_size(plan)
    assert runs[0].prime_data is None
    for k in (7, 20):
        prime = runs[k].prime_data
        assert prime.role == "prime" and prime.size == k and prime.shards == 1
        assert prime.params["min_digits"] == prime.params["max_digits"] == 35
        assert prime.params["op"] == "mul"  # the run's own parameters under the overrides
        assert plan.datasets[prime.id] is prime
        seeds = {runs[k].train_data.seed, runs[k].valid_data.seed, prime.seed}
        seeds |= {ds.seed for ds in runs[k].test_sets.values()}
        assert len(seeds) == 4 and prime.seed == 4 + 2
    assert runs[7].prime_data.id != runs[20].prime_data.id
    # one training set shared by every priming size; distinct run ids
    assert len({r.train_data.id for r in runs.values()}) == 1
    assert len({r.run_id for r in runs.values()}) == 3


def test_runs_without_priming_keep_their_ids():
    plain = copy.deepcopy(STUDY)
    del plain["grid"], plain["data"]["prime_params"]
    before = build_plan({"studies": {"prime": plain}}).studies["prime"].runs[0]
    explicit = copy.deepcopy(plain)
    explicit["data"]["prime_size"] = 0
    after = build_plan({"studies": {"prime": explicit}}).studies["prime"].runs[0]
    assert before.run_id == after.run_id and before.config_hash == after.config_hash


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"data__prime_params": {"max_digit": 35}}, "studies.prime.data.prime_params.max_digit: "),
        ({"data__prime_params": {"min_digits": 40}}, "prime_params.min_digits: must be <="),
        ({"data__prime_params": {"reversed": True}}, "prime_params.reversed: not a generator"),
        ({"data__online": True}, "studies.prime.data.prime_size: priming needs a stored"),
    ],
)
def test_bad_priming_settings_name_the_key(changes, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        plan_of(**changes)


def test_run_spec_json_round_trip_and_old_json():
    run = runs_by_size(plan_of())[7]
    obj = json.loads(json.dumps(run.to_json()))
    again = RunSpec.from_json(obj)
    assert again.prime_data == run.prime_data and again == run
    del obj["prime_data"]  # a run spec written before priming existed
    assert RunSpec.from_json(obj).prime_data is None


def test_mixed_training_set_has_s_plus_k_examples(tmp_path):
    run = runs_by_size(plan_of())[7]
    task = make_task(run.task, run.params)
    mixed = load_train_data(run, task)
    labels = task.groups(mixed)["size"]
    assert len(labels) == 200 + 7
    assert (labels == "35x3").sum() == 7 and (labels[-7:] == "35x3").all()
    assert all(int(label.split("x")[0]) <= 5 for label in labels[:200])
    answers = [task.to_json(mixed, i) for i in range(len(labels))]
    assert all(ex["answer"] == ex["problem"][0] * ex["problem"][1] for ex in answers)
    encoded = EncodedSet(task, mixed)
    assert encoded.max_src_len == 35 + 1 + 3 and len(encoded) == 207
    # the workflow's shards on disk give the same mixed set as the in-memory draw
    paths = {}
    for name, ds in (("train", run.train_data), ("prime", run.prime_data)):
        paths[name] = [
            str(
                generate_shard(
                    run.task,
                    ds.params,
                    ds.shard_size(i),
                    ds.seed,
                    i,
                    tmp_path / f"{name}{i}.npz",
                    dataset=ds.id,
                )
            )
            for i in range(ds.shards)
        ]
    from_disk = load_train_data(run, task, paths["train"], paths["prime"])
    assert all(np.array_equal(from_disk[k], mixed[k]) for k in mixed)


def test_no_priming_is_the_plain_training_set():
    run = runs_by_size(plan_of())[0]
    task = make_task(run.task, run.params)
    assert len(task.groups(load_train_data(run, task))["size"]) == 200


def test_dry_run_generates_prime_data_for_the_train_job(tmp_path):
    """The workflow plan has a generate job for the priming shard and feeds it to training."""
    root = Path(__file__).resolve().parents[2]
    work = tmp_path / "wf"
    work.mkdir()
    shutil.copy(root / "Snakefile", work / "Snakefile")
    for name in ("workflow", "profiles"):
        shutil.copytree(root / name, work / name)
    study = {**copy.deepcopy(STUDY), "grid": {"data.prime_size": [5]}}
    (work / "prime.yaml").write_text(yaml.safe_dump({"studies": {"prime": study}}))
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    proc = subprocess.run(
        [snakemake, "-n", "--cores", "1", "--configfile", "prime.yaml"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    prime = runs_by_size(build_plan({"studies": {"prime": study}}))[5].prime_data
    shard = str(prime.shard_path(0))
    assert f"output: {shard}" in proc.stdout
    train_inputs = [
        line
        for line in proc.stdout.splitlines()
        if line.strip().startswith("input:") and shard in line
    ]
    assert len(train_inputs) == 1  # the one training job
