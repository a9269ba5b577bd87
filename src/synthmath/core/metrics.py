"""Declared metrics: what a task's per-example scores mean and how they are summarised.

A task declares each per-example score it returns (:meth:`synthmath.core.task.Task.metrics`)
as a :class:`Metric`: how it aggregates over examples, whether higher or lower is better,
and how reports format it. Evaluation (:mod:`synthmath.eval.summary`), report tables and
the MLflow logging read these declarations; nothing is guessed from a metric's name.

Scores are per *hypothesis*: :meth:`Task.score` gets the n-best list of every example and
returns arrays of shape ``(n, k)``. :func:`best_of` reduces the top ``k`` hypotheses of each
example to one value (an accuracy: any of them right; an error: the smallest), so "the first
hypothesis is right" (``k = 1``) and "solved if any of the top k verifies" are the same
aggregation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

AGGREGATES = ("mean", "median")
FORMATS = ("percent", "number")


@dataclass(frozen=True)
class Metric:
    """One per-example score of a task.

    ``name`` is the key in :meth:`Task.score`'s result; the summary stores the aggregate as
    :attr:`summary_name` (``name`` for means, ``median_<name>`` for medians, as before).
    ``accuracy`` marks per-example verdicts (booleans: the example is solved); the exact
    answer must make every accuracy true. ``median`` aggregates the finite values only (None,
    JSON null, when there are none: a metric of examples that all failed to decode).
    """

    name: str
    doc: str
    aggregate: str = "mean"
    higher_is_better: bool = True
    format: str = "percent"
    accuracy: bool = False

    def __post_init__(self) -> None:
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"metric {self.name}: aggregate must be one of {AGGREGATES}")
        if self.format not in FORMATS:
            raise ValueError(f"metric {self.name}: format must be one of {FORMATS}")

    @classmethod
    def acc(cls, name: str, doc: str) -> Metric:
        """A per-example verdict (bool), summarised as the fraction of solved examples."""
        return cls(name, doc, "mean", True, "percent", accuracy=True)

    @classmethod
    def fraction(cls, name: str, doc: str) -> Metric:
        """A per-example fraction in [0, 1] (e.g. of right digits), summarised by its mean."""
        return cls(name, doc, "mean", True, "percent")

    @classmethod
    def error(cls, name: str, doc: str) -> Metric:
        """A per-example error (lower is better, inf when wrong), summarised by its median."""
        return cls(name, doc, "median", False, "number")

    @property
    def summary_name(self) -> str:
        return self.name if self.aggregate == "mean" else f"{self.aggregate}_{self.name}"

    def summarise(self, values: np.ndarray) -> float | None:
        """The aggregate over examples of one value per example; ``None`` (JSON null) when there
        is none (no example, or a median over examples none of which has a finite value)."""
        v = np.asarray(values)
        if self.aggregate == "mean":
            return float(v.mean()) if len(v) else None
        finite = v[np.isfinite(v)]
        return float(np.median(finite)) if len(finite) else None

    def best_of(self, values: np.ndarray, k: int) -> np.ndarray:
        """Per example, the best of its first ``k`` hypotheses: ``values`` is ``(n, K)``."""
        top = np.asarray(values)[:, :k]
        if top.dtype == bool:
            return top.any(axis=1)
        return top.max(axis=1) if self.higher_is_better else top.min(axis=1)

    def info(self) -> dict:
        """The declaration as plain JSON (stored beside the values in evaluation summaries)."""
        return {
            "aggregate": self.aggregate,
            "higher_is_better": self.higher_is_better,
            "format": self.format,
            "accuracy": self.accuracy,
        }


def at_k(name: str, k: int) -> str:
    """Summary name of a metric over the best of the top ``k`` hypotheses (``acc@5``)."""
    return f"{name}@{k}"


def by_summary_name(metrics: Sequence[Metric]) -> dict[str, Metric]:
    return {m.summary_name: m for m in metrics}
