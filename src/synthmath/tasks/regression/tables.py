"""CSV tables of numbers with a header line, as ``synthmath fit`` reads them (the points of
``symreg``, the trajectory of ``odeformer``).

Every problem is a one-line :class:`~synthmath.core.errors.DataError` that names the file,
and the row, its line in the file and the column where there is one: an empty or non-text
file, a header of numbers, duplicate or empty column names, fewer than 2 columns, a row of
another width, a cell that is not a number or not finite, too few rows. Blank lines are
skipped; a byte-order mark is not part of the first name.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthmath.core.errors import DataError


@dataclass
class Table:
    """The numbers of a CSV file: ``data[r, k]`` is row ``r + 1``, column ``names[k]``;
    ``lines[r]`` is that row's line number in the file (for messages)."""

    names: list[str]
    data: np.ndarray  # (rows, columns) float64
    lines: list[int]

    def where(self, row: int, column: str | None = None) -> str:
        """``row R (line L)[, column 'c']`` of the 0-based data row ``row``."""
        text = f"row {row + 1} (line {self.lines[row]})"
        return text if column is None else f"{text}, column {column!r}"


def read_table(
    path: str | Path,
    *,
    check_names: Callable[[list[str]], None] | None = None,
    row_name: str = "point",
    layout: str = "inputs, then the target",
    min_rows: int = 2,
) -> Table:
    """The table in ``path`` (module docstring). ``check_names`` sees the header's names
    before any row is read (to report a missing column first); ``row_name`` (a row is one
    ...) and ``layout`` (the columns are ...) word the messages."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            lines = [(n, row) for n, row in enumerate(csv.reader(handle), 1) if any(row)]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    except csv.Error as err:
        raise DataError(f"{path}: not a CSV file ({err})") from None
    if not lines:
        raise DataError(
            f"{path}: empty file (expected a header line, then one {row_name} per line)"
        )
    names = [v.strip() for v in lines[0][1]]
    if all(number(v) is not None for v in names):
        raise DataError(f"{path}: line 1 must be a header of column names, got numbers")
    if len(set(names)) != len(names) or "" in names:
        raise DataError(f"{path}: column names must be distinct and not empty: {names}")
    if len(names) < 2:
        raise DataError(f"{path}: need at least 2 columns ({layout})")
    if check_names is not None:
        check_names(names)
    rows = []
    for r, (line, row) in enumerate(lines[1:], 1):
        if len(row) != len(names):
            raise DataError(
                f"{path}: row {r} (line {line}) has {len(row)} columns, expected {len(names)}"
            )
        values = []
        for name, cell in zip(names, row, strict=True):
            value = number(cell.strip())
            where = f"{path}: row {r} (line {line}), column {name!r}"
            if value is None:
                raise DataError(f"{where}: not a number: {cell.strip()!r}")
            if not math.isfinite(value):
                raise DataError(f"{where}: not finite: {cell.strip()!r}")
            values.append(value)
        rows.append(values)
    if len(rows) < min_rows:
        raise DataError(f"{path}: {len(rows)} row(s) of {row_name}s; need at least {min_rows}")
    data = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
    return Table(names, data, [line for line, _ in lines[1:]])


def number(text: str) -> float | None:
    """``text`` as a float, or None when it is not a number."""
    try:
        return float(text)
    except ValueError:
        return None
