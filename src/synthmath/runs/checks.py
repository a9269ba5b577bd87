"""Config-time checks that need the task's data: sequence lengths and metric names.

They run when a config is expanded (before any job) on a small seeded sample of each
dataset, so a model too short for its test sequences or a token budget smaller than one
example stops the workflow with a message naming the key instead of failing inside a job.
A sample can only under-estimate the longest sequence, so the checks never refuse a config
that would have worked.
"""

from __future__ import annotations

import functools
import json
import re

import numpy as np

from synthmath.core.errors import ConfigError
from synthmath.core.task import Task
from synthmath.tasks.registry import make_task
from synthmath.train.milestones import NAMES as TRAINING_NAMES

#: examples sampled per dataset to estimate its longest sequence
SAMPLE_SIZE = 64


@functools.lru_cache(maxsize=512)
def _longest(task_name: str, params_json: str) -> tuple[int, int]:
    """(longest source, longest target) in model positions (BOS/EOS included where the
    model adds them) over a seeded sample of the task with these parameters."""
    from synthmath.train.batches import EncodedSet

    task = make_task(task_name, json.loads(params_json))
    bound = task.length_bound()
    if bound is not None:
        return bound
    encoded = EncodedSet(task, task.sample(SAMPLE_SIZE, np.random.default_rng(0)))
    return int(encoded.src_len.max()), int(encoded.tgt_len.max())


def longest(task_name: str, params: dict) -> tuple[int, int]:
    return _longest(task_name, json.dumps(params, sort_keys=True, default=str))


def check_lengths(
    where: str,
    task_name: str,
    params: dict,
    test_params: dict[str, dict],
    model: dict,
    training: dict,
) -> None:
    """model.max_len holds the training and test sequences; training.batch_tokens holds one
    training example (per device)."""
    encoder_only = model["arch"] == "encoder_only"
    sets = {"the training set": params, **{f"test set {k!r}": p for k, p in test_params.items()}}
    for label, p in sets.items():
        src, tgt = longest(task_name, p)
        length = src if encoder_only else max(src, tgt)
        if length > model["max_len"]:
            raise ConfigError(
                f"{where}.model.max_len: {model['max_len']} is shorter than the sequences of "
                f"{label} (at least {length} positions in a sample of {SAMPLE_SIZE}); raise it"
            )
    budget = training["batch_tokens"]
    if budget > 0:
        src, tgt = longest(task_name, params)
        one = src if encoder_only else src + tgt
        need = one * training["devices"]
        if need > budget:
            per = f" x {training['devices']} devices" if training["devices"] > 1 else ""
            raise ConfigError(
                f"{where}.training.batch_tokens: {budget} is smaller than one training example "
                f"(at least {one} tokens{per} in a sample of {SAMPLE_SIZE}); raise it to at "
                f"least {need}"
            )


#: what every evaluation reports besides the task's metrics (overall only, no breakdown)
EVAL_METRICS = ("seconds_per_problem",)


def task_metrics(task: Task) -> list[str]:
    """The metric names an evaluation of ``task`` reports (what a report may show): the
    summary names of the metrics the task declares (:meth:`Task.metrics`), and
    :data:`EVAL_METRICS` (the inference time per problem)."""
    return [m.summary_name for m in task.metrics()] + list(EVAL_METRICS)


def check_metric(where: str, task: Task, metric: str) -> None:
    """``metric`` is one the task's evaluation reports, or a training milestone of the run
    (:mod:`synthmath.train.milestones`: steps_to_acc90, steps_to_acc99, final_loss)."""
    if metric in TRAINING_NAMES:
        return
    allowed = task_metrics(task)
    base, _, k = metric.partition("@")  # acc@10: the best of the top 10 hypotheses (a beam)
    beam = re.fullmatch(r"(rank_)?(.+)_beam([1-9][0-9]*)", base)  # eval.beam_sizes metrics
    if beam and not k and beam.group(2) in allowed and beam.group(2) not in EVAL_METRICS:
        if not beam.group(1) or beam.group(2) == task.main_metric():
            return
    if base not in allowed or (k and (base in EVAL_METRICS or not (k.isdigit() and int(k) >= 1))):
        raise ConfigError(
            f"{where}: unknown metric {metric!r}; allowed: {', '.join(allowed)}, "
            f"{', '.join(TRAINING_NAMES)} "
            "(or name@k, the best of the top k hypotheses of a beam; name_beam<b> and "
            "rank_<main metric>_beam<b> with eval.beam_sizes)"
        )
