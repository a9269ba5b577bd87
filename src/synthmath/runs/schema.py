"""The JSON schema of the workflow configuration, and error messages that name the key.

The schema is generated from the settings classes (:mod:`synthmath.runs.settings`);
``workflow/schemas/config.schema.yaml`` is the same schema, committed for Snakemake.
"""

from __future__ import annotations

import jsonschema

from synthmath.runs.settings import config_schema


def load_schema() -> dict:
    """The config schema (generated from the settings classes)."""
    return config_schema()


def _key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _subschema(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = {**root["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _explain(error: jsonschema.ValidationError, root: dict) -> str:
    if error.validator in ("anyOf", "oneOf") and error.context:
        # e.g. an optional integer: explain the branch that is not "null"
        branches = [e for e in error.context if e.validator_value != "null"]
        error = jsonschema.exceptions.best_match(branches or error.context)
    where = _key_path(error.absolute_path)
    schema = _subschema(error.schema, root)
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        key = _key_path([*error.absolute_path, extra[0]]) if extra else where
        return f"{key}: unknown key; allowed: {', '.join(allowed)}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{where}: unknown value {error.instance!r}; allowed: {allowed}"
    if error.validator == "type":
        expected = error.validator_value
        expected = "/".join(expected) if isinstance(expected, list) else expected
        return (
            f"{where}: expected {expected}, got {type(error.instance).__name__} {error.instance!r}"
        )
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "uniqueItems":
        seen, dupes = [], []
        for item in error.instance:
            (dupes if item in seen else seen).append(item)
        return f"{where}: duplicate value {dupes[0]!r} (each value of a grid axis once)"
    if error.validator == "propertyNames":
        return f"{where}: bad name {error.instance!r} ({error.message})"
    return f"{where}: {error.message}"
