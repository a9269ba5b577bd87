"""Scoring of predicted formulas (specs/boolean.md "Scoring").

Each hypothesis is parsed (a malformed one is wrong), evaluated on the example's fit rows
(``fit_error``: the fraction of rows whose observed y it misses) and on its held-out rows
(``test_error``; a full table has none, the table itself is then used), and compared with the
generating formula over every assignment of the variables either uses (``equivalent``).
These per-hypothesis scores keep the decoder's order (column k is hypothesis k).

Boolformer's model wrapper then picks, among the well-formed hypotheses of the whole n-best
list, the first by (fit error, complexity) (:func:`rank`). That pick is a verdict on the list,
not on one hypothesis: ``selected_acc`` and ``selected_test_error`` hold it in column 0 (the
other columns are False / inf, so "best of the top k" is the pick too), and a beam of width k
reports Boolformer's answer with beam k.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from synthmath.core.errors import DecodeError
from synthmath.core.task import RawBatch, Task, nbest_shape
from synthmath.tasks.boolean import formulas as F

#: most distinct variables compared exactly by ``equivalent`` (a table of 2**20 rows)
MAX_EQUIVALENCE_VARS = 20


@functools.lru_cache(maxsize=32)
def _table(n_vars: int) -> tuple[np.ndarray, np.ndarray]:
    return F.truth_table_columns(n_vars), F.row_mask(2**n_vars)


def equivalent(a: F.Tree, b: F.Tree) -> bool:
    """Whether two formulas are the same function (truth tables over the variables either
    uses); False when they use more than :data:`MAX_EQUIVALENCE_VARS` variables together."""
    used = sorted(F.variables(a) | F.variables(b))
    if len(used) > MAX_EQUIVALENCE_VARS:
        return False
    local = {v: i for i, v in enumerate(used)}
    columns, mask = _table(len(used))
    return bool(
        np.array_equal(
            F.evaluate(F.relabel(a, local), columns, mask),
            F.evaluate(F.relabel(b, local), columns, mask),
        )
    )


class Rows:
    """Packed rows and outputs of one set of rows, for repeated error measurements."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.count = len(y)
        self.columns = F.pack_rows(x) if x.shape[1] else np.zeros((0, 1), np.uint64)
        self.mask = F.row_mask(self.count)
        self.y = F.pack_rows(np.asarray(y).reshape(-1, 1))[0] & self.mask

    def error(self, tree: F.Tree) -> float:
        """Fraction of rows whose y the formula misses (0 without rows)."""
        if not self.count:
            return 0.0
        return F.popcount(F.evaluate(tree, self.columns, self.mask) ^ self.y) / self.count


def rank(trees: Sequence[F.Tree | None], fit: Rows) -> list[int]:
    """Positions of the well-formed formulas, best first by (fit error, complexity, position)."""
    keyed = [(fit.error(t), F.complexity(t), i) for i, t in enumerate(trees) if t is not None]
    return [i for _, _, i in sorted(keyed)]


def _parse(tokens: Sequence[str], n_vars: int) -> F.Tree | None:
    try:
        return F.parse_prefix(tokens, n_vars)
    except DecodeError:
        return None


def score_nbest(
    task: Task, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]
) -> dict[str, np.ndarray]:
    n, k = nbest_shape(hypotheses)
    names = [m.name for m in task.metrics()]
    out = {name: np.full((n, k), np.inf) for name in names}
    for name in ("acc", "equivalent", "perfect_match", "selected_acc"):
        out[name] = np.zeros((n, k), dtype=bool)
    out["parse_error"] = np.ones((n, k))
    for i, hyps in enumerate(hypotheses):
        n_vars = int(raw["n_vars"][i])
        fit = Rows(*task.rows(raw, i, "fit"))
        held = Rows(*task.rows(raw, i, "test")) if raw["n_test"][i] else fit
        clean_fit = float(raw["noise"][i]) == 0.0
        target_tokens = str(raw["formula"][i]).split()
        target = F.parse_prefix(target_tokens)
        target_complexity = F.complexity(target)
        trees = [_parse(h, n_vars) for h in hyps]
        for j, tree in enumerate(trees):
            if tree is None:
                continue
            fit_error, test_error = fit.error(tree), held.error(tree)
            out["parse_error"][i, j] = 0.0
            out["fit_error"][i, j] = fit_error
            out["test_error"][i, j] = test_error
            out["acc"][i, j] = test_error == 0 and (fit_error == 0 or not clean_fit)
            out["equivalent"][i, j] = equivalent(tree, target)
            out["perfect_match"][i, j] = list(hyps[j]) == target_tokens
            out["complexity"][i, j] = F.complexity(tree)
            out["complexity_gap"][i, j] = F.complexity(tree) - target_complexity
        order = rank(trees, fit)
        if order:
            out["selected_acc"][i, 0] = out["acc"][i, order[0]]
            out["selected_test_error"][i, 0] = out["test_error"][i, order[0]]
    return {name: out[name] for name in names}
