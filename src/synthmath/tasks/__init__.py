"""Task families behind one registry (see :mod:`synthmath.tasks.base`)."""

from synthmath.tasks.base import (
    BOS,
    EOS,
    PAD,
    ConfigError,
    DecodeError,
    Param,
    RawBatch,
    Task,
    Vocab,
    get_task_class,
    make_task,
    register_task,
    task_names,
)

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "ConfigError",
    "DecodeError",
    "Param",
    "RawBatch",
    "Task",
    "Vocab",
    "get_task_class",
    "make_task",
    "register_task",
    "task_names",
]
