"""The training callback that logs a run's losses and metrics to MLflow."""

from __future__ import annotations

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
            params = flatten({k: spec[k] for k in ("params", "model", "training", "data", "eval")})
            params["init_from"] = str(run_spec.init_from)
            tracker.log_params(mlflow_id, params)
            tracker.log_datasets(mlflow_id, run_datasets(run_spec, tests=()))

        def on_log(self, trainer, records: list[dict]) -> None:
            rows = []
            for r in records:
                for key in ("loss", "lr", "tokens_per_s"):
                    if key in r:
                        rows.append((f"train/{key}", r[key], r["step"]))
            self.log(rows)

        def on_epoch_end(self, trainer, epoch: int, metrics: dict[str, float]) -> None:
            self.log([(k, v, epoch) for k, v in metrics.items()])

        def on_train_end(self, trainer, summary: dict) -> None:
            keep = {
                k: v
                for k, v in summary.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
            self.log([(f"final/{k}", v, 0) for k, v in keep.items()])

    return MlflowCallback()
