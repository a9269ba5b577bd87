"""Writing files atomically: a reader sees the old file or the new one, never half of one.

Every file the project writes goes through :func:`atomic_path`: it hands out a hidden
temporary path in the target's directory (``.<name>.<pid>.<random>.tmp``); once the writer
is done the file is flushed and fsynced, ``os.replace``d over the target (atomic on POSIX and
Windows) and the directory is fsynced so that the rename survives a crash. A writer that
fails (or a job killed mid-write) leaves the target untouched and at most a stray temporary
file, which :func:`remove_stale_temp_files` deletes. JSON is strict: NaN and infinities are
an error, not the non-standard ``NaN``/``Infinity`` tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

TMP_SUFFIX = ".tmp"


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")


def _fsync_path(path: Path, directory: bool = False) -> None:
    # a directory's fsync makes a rename durable; not possible on every platform (Windows)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; it replaces ``path`` on success.

    For writers that want a file name (``savefig``, ``to_csv``). Use it as
    ``with atomic_path(p) as tmp: writer(tmp)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_path(path.parent, directory=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """An open temporary file (``mode`` "w" or "wb") that replaces ``path`` when closed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode {mode!r}; allowed: w, wb")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    """Strict JSON (numpy scalars and arrays, paths as plain values); a NaN or infinity
    raises ``ValueError``: write ``None`` or a string where a value may be non-finite."""
    return json.dumps(obj, indent=indent, allow_nan=False, default=_json_default)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomic, strict JSON write (see :func:`dumps_json`); the file ends with a newline."""
    try:
        text = dumps_json(obj)
    except ValueError as err:
        raise ValueError(f"{path}: {err} (non-finite numbers are not JSON)") from err
    write_text(path, text + "\n")


def _json_default(obj):
    if isinstance(obj, np.integer | np.floating | np.bool_):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def finite_json(obj: Any) -> Any:
    """``obj`` (dicts, lists, tuples of plain values) with non-finite floats as ``None``
    (strict JSON); tuples become lists."""
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_json(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, NaN or infinite (strict JSON)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def atomic_save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def remove_stale_temp_files(directory: str | os.PathLike, name: str) -> list[Path]:
    """Delete temporary files that an interrupted write of ``directory/name`` left behind.

    Call it only when no other process writes ``name`` in ``directory``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for tmp in directory.glob(f".{name}.*{TMP_SUFFIX}"):
        try:
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed
