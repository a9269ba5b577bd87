"""A formula for a user's 0/1 table: read a CSV, fit it with a trained model or exactly.

The file holds one row per line, ``x_0, ..., x_(n-1), y``, each 0 or 1, with an optional
header line of column names (the last one names the target). A trained model reads the rows
as its input set and its beam is ranked by (fit error, complexity), as Boolformer's ``fit``
does; :func:`fit_exact` is the classical baseline: a minimal two-level formula (SymPy's
SOPform/POSform) that reproduces every row, the rows not given being don't-cares.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
from sympy.logic import POSform, SOPform

from synthmath.core.errors import ConfigError, DataError
from synthmath.tasks.boolean import formulas as F
from synthmath.tasks.boolean.generator import Example, _from_sympy, shortest
from synthmath.tasks.boolean.scoring import Rows, rank

#: most variables of an exact fit (the don't-care rows are enumerated)
MAX_EXACT_VARS = 10


@dataclass
class Table:
    x: np.ndarray  # (rows, n) uint8
    y: np.ndarray  # (rows,) uint8
    names: list[str] | None  # column names from a header (the last one: the target)


def read_table(path: str | Path) -> Table:
    """Read a 0/1 CSV; DataError naming the file, line and column of a bad value."""
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            lines = [row for row in csv.reader(handle) if any(v.strip() for v in row)]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    if not lines:
        raise DataError(f"{path}: no rows")
    names = None
    first = [v.strip() for v in lines[0]]
    if not all(_is_number(v) for v in first):
        names, lines = first, lines[1:]
    width = len(names) if names else len(first)
    if width < 2:
        raise DataError(f"{path}: need at least 2 columns (inputs, then the output y)")
    rows = []
    start = 2 if names else 1
    for number, row in enumerate(lines, start=start):
        if len(row) != width:
            raise DataError(f"{path}: line {number} has {len(row)} columns, expected {width}")
        values = []
        for column, value in enumerate(row, start=1):
            value = value.strip()
            if value not in ("0", "1"):
                raise DataError(
                    f"{path}: line {number}, column {column}: expected 0 or 1, got {value!r}"
                )
            values.append(int(value))
        rows.append(values)
    if not rows:
        raise DataError(f"{path}: a header but no rows")
    data = np.array(rows, dtype=np.uint8)
    return Table(data[:, :-1], data[:, -1], names)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


@dataclass
class Fit:
    tree: F.Tree
    error: float  # fraction of the table's rows it misses
    rows: int
    hypotheses: int = 1  # well-formed hypotheses ranked (model fits)

    def text(self, names: list[str] | None = None, as_json: bool = False) -> str:
        out: dict[str, Any] = {
            "formula": F.to_infix(self.tree),
            "tokens": F.to_prefix(self.tree),
            "fit_error": self.error,
            "wrong_rows": round(self.error * self.rows),
            "rows": self.rows,
            "complexity": F.complexity(self.tree),
        }
        if names:
            out["named"] = f"{names[-1]} = {_named(self.tree, names)}"
        if as_json:
            return json.dumps(out) + "\n"
        lines = [f"formula:    {out['formula']}", f"tokens:     {' '.join(out['tokens'])}"]
        if names:
            lines.append(f"named:      {out['named']}")
        lines.append(
            f"fit error:  {self.error:.4g} ({out['wrong_rows']} of {self.rows} rows wrong); "
            f"complexity {out['complexity']}"
        )
        return "\n".join(lines) + "\n"


def _named(tree: F.Tree, names: list[str]) -> str:
    text = F.to_infix(tree)
    for j in sorted(F.variables(tree), reverse=True):  # x_12 before x_1
        text = text.replace(F.var_token(j), names[j])
    return text


def fit_exact(table: Table) -> Fit:
    """The shortest of SymPy's minimal SOP and POS forms agreeing with every row (a row
    given twice with both outputs takes its majority, ties 1); unseen rows are don't-cares."""
    n = table.x.shape[1]
    if n > MAX_EXACT_VARS:
        raise ConfigError(
            f"fit: {n} inputs; an exact fit handles at most {MAX_EXACT_VARS} (use a model: --run)"
        )
    codes = (table.x.astype(np.int64) << np.arange(n)).sum(axis=1)
    ones = np.bincount(codes, weights=table.y, minlength=2**n)
    seen = np.bincount(codes, minlength=2**n)
    value = 2 * ones >= seen
    minterms = [r for r in range(2**n) if seen[r] and value[r]]
    dontcares = [r for r in range(2**n) if not seen[r]]
    if not minterms:
        tree: F.Tree = F.FALSE
    elif not any(seen[r] and not value[r] for r in range(2**n)):
        tree = F.TRUE
    else:
        symbols = [sp.Symbol(F.var_token(j)) for j in range(n)]
        bits = lambda r: [(r >> j) & 1 for j in range(n)]  # noqa: E731
        forms = [
            form(symbols, [bits(r) for r in minterms], [bits(r) for r in dontcares])
            for form in (SOPform, POSform)
        ]
        tree = shortest([F.simplify_rules(_from_sympy(f)) for f in forms])
    return Fit(tree, Rows(table.x, table.y).error(tree), len(table.y))


def fit_model(model: Any, task: Any, table: Table, beam_size: int = 10) -> Fit:
    """A trained boolean model's formula for the table: its beam, ranked by (fit error,
    complexity); ConfigError when the table is larger than the model was trained for."""
    from synthmath.eval.predict import predict_nbest
    from synthmath.train.batches import EncodedSet

    n = table.x.shape[1]
    max_vars, max_rows = task.config.max_vars, task.length_bound()[0]
    if n > max_vars:
        raise ConfigError(f"fit: {n} input columns; this model reads at most {max_vars}")
    if len(table.y) > max_rows:
        raise ConfigError(f"fit: {len(table.y)} rows; this model reads at most {max_rows}")
    # the target only bounds the decoding length: a placeholder of the longest answer
    length = task.config.max_output_len - (task.config.max_output_len + 1) % 2
    placeholder = ["and", "x_0"] * (length // 2) + ["x_0"]
    example = Example(placeholder, table.x, table.y, len(table.y), n, 0, 0.0, 0.0)
    raw = task.examples_to_raw([example], ["file"])
    hyps = predict_nbest(model, task, EncodedSet(task, raw), beam_size=beam_size)[0]
    trees = []
    for tokens in hyps:
        try:
            trees.append(F.parse_prefix(tokens, n))
        except ValueError:
            trees.append(None)
    rows = Rows(table.x, table.y)
    order = rank(trees, rows)
    if not order:
        raise DataError(f"fit: none of the model's {len(hyps)} hypotheses is a formula")
    best = trees[order[0]]
    assert best is not None
    return Fit(best, rows.error(best), len(table.y), len(order))
