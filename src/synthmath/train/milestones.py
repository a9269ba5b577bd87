"""Per-run training milestones from the trainer's epoch history (spec dynamics.md section 1:
"steps to 90% and 99% test accuracy, final loss").

- ``steps_to_acc90``, ``steps_to_acc99``: the first logged step (the optimizer step at the end
  of an epoch, where validation runs) at which the run's main validation metric (e.g.
  ``valid_acc``) reaches 0.9 / 0.99; ``None`` (JSON null) when it never does. Reports read a
  run that never reached the level as +inf ("not reached"), so a median over seeds with a run
  that failed is not the median of the runs that succeeded.
- ``final_loss``: the mean training loss per target token over the last epoch (the
  optimisation objective the schedule studies compare); ``None`` when not finite.

Validation runs once per epoch, so the step resolution is one epoch (``training.epoch_size``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from synthmath.core.metrics import Metric

#: milestone name -> the level the main validation metric must reach
LEVELS = {"steps_to_acc90": 0.9, "steps_to_acc99": 0.99}
FINAL_LOSS = "final_loss"
#: how reports and MLflow read them (lower is better; plain numbers)
METRICS = (
    *(
        Metric(
            name, f"first step with main validation metric >= {level:g}", "mean", False, "number"
        )
        for name, level in LEVELS.items()
    ),
    Metric(
        FINAL_LOSS,
        "mean training loss per target token over the last epoch",
        "mean",
        False,
        "number",
    ),  # fmt: skip
)
NAMES = tuple(m.name for m in METRICS)


def first_step_reaching(
    history: Sequence[Mapping[str, Any]], metric: str, level: float
) -> int | None:
    """The ``step`` of the first history entry whose ``metric`` is >= ``level``, or None."""
    for entry in history:
        value = entry.get(metric)
        if value is not None and math.isfinite(value) and value >= level:
            return int(entry["step"])
    return None


def milestones(history: Sequence[Mapping[str, Any]], main_metric: str | None) -> dict[str, Any]:
    """``steps_to_acc90``, ``steps_to_acc99`` (only with a ``main_metric``) and ``final_loss``
    of an epoch history (entries with ``step``, ``train_loss`` and the validation metrics)."""
    out: dict[str, Any] = {}
    if main_metric is not None:
        for name, level in LEVELS.items():
            out[name] = first_step_reaching(history, main_metric, level)
    last = history[-1].get("train_loss") if history else None
    out[FINAL_LOSS] = float(last) if last is not None and math.isfinite(last) else None
    return out


def training_metrics(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The milestones of a training summary (the trainer's, as saved with the model), plus
    the main validation metric's curve ``{"metric", "step", "value"}`` for reports; a summary
    written before milestones existed gets them computed from its history where it has steps."""
    history = [h for h in summary.get("history", []) if "step" in h]
    main = summary.get("main_metric")
    out = {name: summary[name] for name in NAMES if name in summary}
    if len(out) < len(NAMES) and history:
        out = {**milestones(history, main), **out}
    if main is not None:
        points = [(h["step"], h.get(main)) for h in history]
        points = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
        out["curve"] = {
            "metric": main,
            "step": [int(s) for s, _ in points],
            "value": [float(v) for _, v in points],
        }
    return out
