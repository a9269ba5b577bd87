"""The task registry: every task family by name (built-in families and :func:`register_task`)."""

from __future__ import annotations

import importlib
from typing import Any

from synthmath.core.errors import ConfigError
from synthmath.core.task import Task

#: the built-in families: name -> (module, class). Imported on first use, so a job that needs
#: one task (a generate job: about 60 in the CI run) does not import every family's
#: dependencies (SymPy and SciPy take about a second to import).
_BUILTIN: dict[str, tuple[str, str]] = {
    "arithmetic": ("synthmath.tasks.arithmetic.task", "ArithmeticTask"),
    "boolean": ("synthmath.tasks.boolean.task", "BooleanTask"),
    "differential": ("synthmath.tasks.differential.task", "DifferentialTask"),
    "linalg": ("synthmath.tasks.linalg.task", "LinalgTask"),
    "metabolic": ("synthmath.tasks.metabolic.task", "MetabolicTask"),
    "odeformer": ("synthmath.tasks.regression.odeformer", "OdeformerTask"),
    "recurrence": ("synthmath.tasks.recurrence.task", "RecurrenceTask"),
    "symbolic": ("synthmath.tasks.symbolic.task", "SymbolicTask"),
    "symreg": ("synthmath.tasks.regression.symreg", "SymregTask"),
}

#: the tasks imported so far, and those added by :func:`register_task`
_REGISTRY: dict[str, type[Task]] = {}


def _load(name: str) -> type[Task]:
    """The class of a built-in task, imported on first use."""
    if name not in _REGISTRY:
        module, cls_name = _BUILTIN[name]
        cls = getattr(importlib.import_module(module), cls_name)
        if cls.name != name:
            raise RuntimeError(f"task registry: {module}.{cls_name}.name is {cls.name!r}")
        _REGISTRY[name] = cls
    return _REGISTRY[name]


def register_task(cls: type[Task]) -> type[Task]:
    """Make a task (a :class:`Task` subclass outside this package) available by its ``name``.

    Usable as a class decorator. The built-in families are listed in ``_BUILTIN`` above.
    """
    _REGISTRY[cls.name] = cls
    return cls


def unregister_task(name: str) -> None:
    """Remove a task added by :func:`register_task` (tests register throwaway tasks)."""
    _REGISTRY.pop(name, None)


def task_names(capability: str | None = None) -> list[str]:
    """Registered task names; with ``capability``, only the tasks that declare it."""
    names = sorted(set(_BUILTIN) | set(_REGISTRY))
    if capability is None:
        return names
    return [name for name in names if capability in get_task_class(name).capabilities]


def get_task_class(name: str) -> type[Task]:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name not in _BUILTIN:
        raise ConfigError(f"task: unknown task {name!r}; allowed: {', '.join(task_names())}")
    return _load(name)


def make_task(name: str, params: dict[str, Any] | None = None, where: str = "") -> Task:
    cls = get_task_class(name)
    cls.validate_params(dict(params or {}), where)
    return cls(**(params or {}))
