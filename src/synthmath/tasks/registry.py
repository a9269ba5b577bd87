"""The task registry: every task family by name (built-in families and :func:`register_task`)."""

from __future__ import annotations

from typing import Any

from synthmath.core.errors import ConfigError
from synthmath.core.task import Task
from synthmath.tasks.arithmetic.task import ArithmeticTask
from synthmath.tasks.boolean.task import BooleanTask
from synthmath.tasks.differential.task import DifferentialTask
from synthmath.tasks.linalg.task import LinalgTask
from synthmath.tasks.metabolic.task import MetabolicTask
from synthmath.tasks.recurrence.task import RecurrenceTask
from synthmath.tasks.regression.odeformer import OdeformerTask
from synthmath.tasks.regression.symreg import SymregTask
from synthmath.tasks.symbolic.task import SymbolicTask

_REGISTRY: dict[str, type[Task]] = {
    task.name: task
    for task in (
        ArithmeticTask,
        BooleanTask,
        DifferentialTask,
        LinalgTask,
        MetabolicTask,
        OdeformerTask,
        RecurrenceTask,
        SymbolicTask,
        SymregTask,
    )
}


def register_task(cls: type[Task]) -> type[Task]:
    """Make a task (a :class:`Task` subclass outside this package) available by its ``name``.

    Usable as a class decorator. The built-in families are listed in ``_REGISTRY`` above.
    """
    _REGISTRY[cls.name] = cls
    return cls


def unregister_task(name: str) -> None:
    """Remove a task added by :func:`register_task` (tests register throwaway tasks)."""
    _REGISTRY.pop(name, None)


def task_names(capability: str | None = None) -> list[str]:
    """Registered task names; with ``capability``, only the tasks that declare it."""
    if capability is None:
        return sorted(_REGISTRY)
    return sorted(name for name, cls in _REGISTRY.items() if capability in cls.capabilities)


def get_task_class(name: str) -> type[Task]:
    if name not in _REGISTRY:
        raise ConfigError(f"task: unknown task {name!r}; allowed: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_task(name: str, params: dict[str, Any] | None = None, where: str = "") -> Task:
    cls = get_task_class(name)
    cls.validate_params(dict(params or {}), where)
    return cls(**(params or {}))
