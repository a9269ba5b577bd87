"""The training callback that logs a run's losses and metrics to MLflow.

One metric namespace (each quantity under one name; steps are optimizer steps):

- ``train/loss``, ``train/lr``, ``train/tokens_per_s``: every ``training.log_every`` steps;
- ``train/alignment/<point>`` and ``train/alignment/all`` (``training.train_rule: dfa``): the
  gradient alignment, every ``training.dfa_align_every`` steps;
- ``train/epoch_loss`` (mean per target token over the epoch) and ``valid/<metric>`` (the
  validation set: the task's metrics and ``valid/loss``): at the last step of each epoch;
- ``final/<key>``: the training summary (best_metric, best_epoch, epochs_run, steps,
  train_time_s, and :mod:`synthmath.train.milestones`' steps_to_acc90, steps_to_acc99, absent
  when never reached, and final_loss), at step 0;
- ``test/<test set>/<metric>`` and ``test/<test set>/<group>_<label>/<metric>``: logged by
  the evaluation jobs (:mod:`synthmath.jobs.evaluate`).
"""

from __future__ import annotations

from synthmath.runs.settings import DEFAULT_EVAL_PRECISION
from synthmath.track.mlflow import flatten, open_run_for, run_datasets


def make_callback(run_spec):
    """The training callback that logs to MLflow (None when tracking is off)."""
    from synthmath.train.trainer import Callback

    opened = open_run_for(run_spec)
    if opened is None:
        return None
    tracker, mlflow_id = opened

    class MlflowCallback(Callback):
        logged: dict[str, int] = {}  # metric -> last step already in MLflow (resumed runs)

        def log(self, rows: list[tuple[str, float, int]]) -> None:
            fresh = [r for r in rows if r[2] > self.logged.get(r[0], -1)]
            if fresh:
                tracker.log_metrics(mlflow_id, fresh)

        def on_train_start(self, trainer) -> None:
            self.logged = tracker.last_logged_steps(mlflow_id)
            spec = run_spec.to_json()
            # eval.precision: a spec leaves out its default (fp32), MLflow shows it
            spec["eval"] = {"precision": DEFAULT_EVAL_PRECISION, **spec["eval"]}
            params = flatten({k: spec[k] for k in ("params", "model", "training", "data", "eval")})
            params["init_from"] = str(run_spec.init_from)
            tracker.log_params(mlflow_id, params)
            tracker.log_datasets(mlflow_id, run_datasets(run_spec, tests=()))

        def on_log(self, trainer, records: list[dict]) -> None:
            self.log(log_rows(records))

        def on_epoch_end(self, trainer, epoch: int, metrics: dict[str, float]) -> None:
            self.log([(name, v, trainer.global_step) for name, v in epoch_metrics(metrics)])

        def on_train_end(self, trainer, summary: dict) -> None:
            keep = {
                k: v
                for k, v in summary.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            self.log([(f"final/{k}", v, 0) for k, v in keep.items()])

    return MlflowCallback()


def log_rows(records: list[dict]) -> list[tuple[str, float, int]]:
    """MLflow rows of the trainer's log records: ``loss``, ``lr``, ``tokens_per_s`` and the
    DFA gradient alignments ``alignment/<point>``, each under ``train/``, at its step."""
    rows = []
    for r in records:
        for key, value in r.items():
            if key in ("loss", "lr", "tokens_per_s") or key.startswith("alignment/"):
                rows.append((f"train/{key}", value, r["step"]))
    return rows


def epoch_metrics(metrics: dict[str, float]) -> list[tuple[str, float]]:
    """MLflow names of the trainer's end-of-epoch metrics: ``train_loss`` -> ``train/epoch_loss``,
    ``valid_<m>`` -> ``valid/<m>``; the epoch's last ``lr`` is left out (``train/lr`` has it)."""
    out = []
    for key, value in metrics.items():
        if key == "lr":
            continue
        if key == "train_loss":
            out.append(("train/epoch_loss", value))
        else:
            out.append((f"valid/{key.removeprefix('valid_')}", value))
    return out
