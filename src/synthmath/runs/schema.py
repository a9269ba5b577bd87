"""The JSON schema of the workflow configuration, and error messages that name the key."""

from __future__ import annotations

import functools
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


# ---- loading and schema validation ------------------------------------------------------
@functools.cache
def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _subschema(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = {**root["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _explain(error: jsonschema.ValidationError, root: dict) -> str:
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
    if error.validator == "propertyNames":
        return f"{where}: bad name {error.instance!r} ({error.message})"
    return f"{where}: {error.message}"
