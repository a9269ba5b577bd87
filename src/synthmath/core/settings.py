"""Settings declared once: pydantic dataclasses whose fields carry type, default, allowed values
and a one-line doc; this module turns their validation errors into one-line messages.

A settings class is a (pydantic) dataclass, so it builds, copies and compares like one
(``dataclasses.asdict``, ``replace``); building it checks every field, and :func:`build` /
``validate()`` raise :class:`ConfigError` naming the key, the problem and the value:

    @settings_class
    class Eval:
        size: Annotated[int, Field(ge=1, description="Test examples.")] = 1000

    build(Eval, {"size": 0}, "studies.x.eval")
    # ConfigError: studies.x.eval.size: expected a value >= 1 (got 0)

Cross-field checks are ``@model_validator(mode="after")`` methods that raise
:class:`SettingProblem` (the key it is about, and what is wrong).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, TypeVar

from pydantic import ConfigDict, ValidationError
from pydantic.dataclasses import dataclass

from synthmath.core.errors import ConfigError

#: strict types (no "5" -> 5, no True -> 1, no 1.5 -> 1); unknown keys are errors
STRICT = ConfigDict(strict=True, extra="forbid")

T = TypeVar("T")

_TYPES = {
    "int_type": "integer",
    "float_type": "number",
    "bool_type": "boolean",
    "string_type": "string",
    "list_type": "list",
    "tuple_type": "list",
    "dict_type": "mapping",
}


class SettingProblem(ValueError):
    """Raised by a cross-field check: ``key`` is the setting it names."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def settings_class(cls: type[T] | None = None, *, kw_only: bool = True):
    """A pydantic dataclass with strict types and no unknown keys (keyword-only fields unless
    ``kw_only=False``), whose construction raises a one-line :class:`ConfigError`. The class
    attribute ``where`` (if any) prefixes its messages."""

    def wrap(cls: type[T]) -> type[T]:
        cls = dataclass(kw_only=kw_only, config=STRICT)(cls)
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            try:
                init(self, *args, **kwargs)
            except ValidationError as err:
                where = getattr(type(self), "where", "")
                raise ConfigError(explain(err, type(self), where)) from None

        cls.__init__ = __init__
        cls._validating_init = init
        return cls

    return wrap(cls) if cls is not None else wrap


def values(obj: Any) -> dict[str, Any]:
    """The field values of a settings object (shallow, as they are: no validation)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def build(cls: type[T], given: dict[str, Any], where: str = "") -> T:
    """``cls(**given)``; an error is a one-line :class:`ConfigError` naming ``where``.key."""
    obj = cls.__new__(cls)
    try:
        cls._validating_init(obj, **given)
        return obj
    except ValidationError as err:
        raise ConfigError(explain(err, cls, where)) from None


def explain(err: ValidationError, cls: type, where: str = "") -> str:
    """The first error of ``err`` as ``<where>.<key>: <problem> (got <value>)``."""
    prefix = f"{where}." if where else ""
    e = err.errors()[0]
    loc = [str(p) for p in e["loc"]]
    kind, value, ctx = e["type"], e.get("input"), e.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, SettingProblem):
        return f"{prefix}{cause.key}: {cause.problem}"
    key = ".".join(loc) or "(settings)"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        allowed = ", ".join(f.name for f in dataclasses.fields(cls))
        return f"{prefix}{key}: unknown key; allowed: {allowed}"
    if kind == "literal_error":
        allowed = ", ".join(re.findall(r"'([^']*)'", ctx.get("expected", "")))
        return f"{prefix}{key}: unknown value {value!r}; allowed: {allowed}"
    if kind in _TYPES:
        return f"{prefix}{key}: expected {_TYPES[kind]}, got {type(value).__name__} {value!r}"
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        op, name = bounds[kind]
        return f"{prefix}{key}: expected a value {op} {ctx[name]} (got {value!r})"
    if kind == "missing":
        return f"{prefix}{key}: required"
    return f"{prefix}{key}: {e['msg'][:1].lower()}{e['msg'][1:]} (got {value!r})"


def revalidate(obj: Any, where: str | None = None) -> None:
    """Check a settings object again (its fields may have been assigned since it was built);
    ``where`` defaults to the class attribute ``where``."""
    build(type(obj), values(obj), getattr(type(obj), "where", "") if where is None else where)
