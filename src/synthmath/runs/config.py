"""Read and validate a config file; errors name the file and the key."""

from __future__ import annotations

import os
from pathlib import Path

import jsonschema
import yaml

from synthmath.core.errors import ConfigError
from synthmath.runs.plan import Plan, build_plan
from synthmath.runs.schema import _explain, load_schema


def _read_config(path: Path) -> dict:
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a YAML config is expected)") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'studies' key")
    return config


def _load(path: str | os.PathLike) -> tuple[dict, Plan]:
    path = Path(path)
    config = _read_config(path)
    try:
        return config, validate_config(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def load_config(path: str | os.PathLike) -> dict:
    """Read a YAML config and validate it (errors name the file and the key)."""
    return _load(path)[0]


def load_plan(path: str | os.PathLike) -> Plan:
    """Read, validate and expand a config file in one pass (errors name the file and key)."""
    return _load(path)[1]


def validate_config(config: dict) -> Plan:
    """Schema check, then task-level checks of every study (params, grid values, test sets).

    Returns the expanded plan (expansion is where the task-level checks happen).
    """
    schema = load_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), str(e.path)))
    if errors:
        # the deepest error is usually the most specific one
        best = max(errors, key=lambda e: len(e.absolute_path))
        raise ConfigError(_explain(best, schema))
    return build_plan(config)  # task params, grid values, init_from: errors name the key
