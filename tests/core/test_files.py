"""The one atomic writer: whole files or none, strict JSON, no temporary files left."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from synthmath.core import files
from synthmath.core.files import (
    atomic_open,
    atomic_path,
    atomic_save_npz,
    remove_stale_temp_files,
    write_json,
    write_text,
)


def test_write_replaces_whole_file_and_fsyncs(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    path = tmp_path / "sub" / "a.json"
    write_json(path, {"x": np.float32(0.5), "n": np.int64(3), "v": np.arange(2)})
    assert json.loads(path.read_text()) == {"x": 0.5, "n": 3, "v": [0, 1]}
    assert path.read_text().endswith("\n")
    assert len(synced) >= 2  # the file and its directory
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_json_is_strict(tmp_path, value):
    path = tmp_path / "a.json"
    write_json(path, {"ok": 1})
    with pytest.raises(ValueError, match="a.json"):
        write_json(path, {"median": value})
    assert json.loads(path.read_text()) == {"ok": 1}  # the old file stays
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failed_writer_leaves_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "t.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w") as f:
            f.write("half")
            raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_npz_and_stale_temporaries(tmp_path):
    path = tmp_path / "s.npz"
    atomic_save_npz(path, {"a": np.arange(3)})
    assert np.load(path)["a"].tolist() == [0, 1, 2]
    stray = tmp_path / ".s.npz.123.abcd.tmp"
    stray.write_bytes(b"half")
    assert remove_stale_temp_files(tmp_path, "s.npz") == [stray] and path.exists()


def test_finite_or_none():
    assert files.finite_or_none(1) == 1.0 and files.finite_or_none(None) is None
    assert files.finite_or_none(math.inf) is None and files.finite_or_none(np.nan) is None


def test_no_other_writer_in_the_package():
    """Every file goes through core.files: no direct writes, no unpickling torch.load."""
    import re
    from pathlib import Path

    src = Path(files.__file__).resolve().parents[1]
    unsafe = re.compile(
        r"\.write_(text|bytes)\(|os\.replace\(|weights_only=False|\.savefig\((?!tmp)"
        r"|\.to_csv\((?!tmp)|torch\.save\((?!obj, f\))|np\.savez\((?!f,)"
    )
    offenders = [
        f"{path.relative_to(src)}:{n}: {line.strip()}"
        for path in src.rglob("*.py")
        if path.name != "files.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if unsafe.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []
