"""Fitting a trained ``symreg`` model to a user's points (specs/regression.md, "Inference and
refinement"; E2E's ``SymbolicTransformerRegressor``), numpy and scipy only.

:class:`SymbolicRegressor` ``fit(X, y)``:

1. feature selection: above the model's ``max_dim`` inputs, the ``max_dim`` columns of largest
   |Pearson correlation| with y (a constant column counts 0; ties: the lower index);
2. standardisation of those columns: z_j = (x_j - mu_j) / sigma_j (sigma 0 -> 1);
3. bags: a seeded permutation of the points cut into ``ceil(N / max_bag)`` near-equal chunks of
   at most ``max_bag`` points, the first ``n_bags`` of them decoded;
4. candidates per bag: beam search (``beam_size``) or ``sampling`` samples at ``temperature``
   (:func:`~synthmath.eval.decoding.sample_decode`);
5. :func:`~synthmath.tasks.regression.fitting.select` on all the (standardised) points: one
   candidate per skeleton, BFGS on the constants of the ``n_refine`` best (``refine``: from
   the predicted constants ``e2e``, from N(0, 1) ``skeleton``, or ``none``), rerank by R^2;
6. the best is rewritten in the original units exactly: every leaf z_j becomes the subtree
   ``(x_k - mu_j) / sigma_j`` (k the selected column), so :meth:`predict` on X computes the
   same floating-point operations as the model's candidate on the standardised points.

:func:`read_points` reads a CSV of points (``synthmath fit symreg FILE --run RUN``);
:func:`fit_file` fits it and reports the expression, its R^2 and the time taken.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
import torch

from synthmath.core.errors import ConfigError, DataError
from synthmath.expressions.errors import ExprParseError
from synthmath.expressions.operators import Tree, float_token, infix, is_variable
from synthmath.expressions.sympy_bridge import to_sympy
from synthmath.tasks.regression import symreg_gen as gen
from synthmath.tasks.regression.fitting import REFINE_MODES, r2, select
from synthmath.tasks.regression.tables import read_table


def select_features(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Indices (ascending) of the ``k`` columns of ``x`` most correlated with ``y`` in
    absolute value (all of them when there are at most ``k``)."""
    d = x.shape[1]
    if d <= k:
        return np.arange(d)
    xc, yc = x - x.mean(axis=0), y - y.mean()
    with np.errstate(all="ignore"):
        corr = (xc * yc[:, None]).sum(axis=0) / np.sqrt((xc**2).sum(axis=0) * (yc**2).sum())
    corr = np.where(np.isfinite(corr), np.abs(corr), 0.0)
    return np.sort(np.argsort(-corr, kind="stable")[:k])


def unstandardise(tree: Tree, columns: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> Tree:
    """``tree`` in variables z_j = (x_{columns[j]} - mu_j) / sigma_j, written in the x."""
    out: list[str] = []
    for token in tree:
        if is_variable(token) and token.startswith("x_"):
            j = int(token[2:])
            out += ["div", "sub", f"x_{int(columns[j])}", float_token(mu[j])]
            out.append(float_token(sigma[j]))
        else:
            out.append(token)
    return tuple(out)


def evaluate(tree: Tree, x: np.ndarray) -> np.ndarray:
    """The values of ``tree`` at the rows of ``x`` (column k is x_k)."""
    return gen.evaluate(tree, np.asarray(x, dtype=np.float64))


class SymbolicRegressor:
    """A trained ``symreg`` model as a scikit-learn-style regressor (see the module docstring).

    After :meth:`fit`: ``tree_`` (prefix tokens in the original columns x_0..x_{d-1}),
    ``expression_`` (its infix), ``r2_`` (R^2 on the fitted points), ``features_`` (the
    columns the model read), ``candidates_`` (the ranked ``(tree, R^2, refined)`` of
    :func:`~synthmath.tasks.regression.fitting.select`, in standardised units),
    ``n_bags_`` (bags decoded), ``n_decoded_`` (hypotheses) and ``fit_seconds_``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        task: Any,
        *,
        beam_size: int = 10,
        sampling: int = 0,
        temperature: float = 0.1,
        n_bags: int = 10,
        max_bag: int = 200,
        refine: str = "e2e",
        n_refine: int = 10,
        refine_seconds: float | None = None,
        max_len: int | None = None,
        seed: int = 0,
    ):
        if refine not in REFINE_MODES:
            raise ConfigError(f"refine: expected one of {', '.join(REFINE_MODES)}, got {refine!r}")
        for name, value in (("beam_size", beam_size), ("n_bags", n_bags), ("max_bag", max_bag)):
            if value < 1:
                raise ConfigError(f"{name}: expected >= 1, got {value}")
        self.model, self.task = model, task
        self.beam_size, self.sampling, self.temperature = beam_size, sampling, temperature
        self.n_bags, self.max_bag = n_bags, min(max_bag, task.config.max_points)
        self.refine, self.n_refine, self.refine_seconds = refine, n_refine, refine_seconds
        self.max_len, self.seed = max_len, seed

    # ---- fitting ------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> SymbolicRegressor:
        start = time.perf_counter()
        x, y = self._check(X, y)
        rng = np.random.default_rng(self.seed)
        self.n_features_in_ = x.shape[1]
        self.features_ = select_features(x, y, self.task.config.max_dim)
        chosen = x[:, self.features_]
        self.mu_ = chosen.mean(axis=0)
        spread = chosen.std(axis=0)
        self.sigma_ = np.where(spread > 0, spread, 1.0)
        z = (chosen - self.mu_) / self.sigma_
        bags = self._bags(len(y), rng)
        self.n_bags_ = len(bags)
        trees = self._decode(z, y, bags)
        self.n_decoded_ = len(trees)
        parsed = []
        for tokens in trees:
            try:
                parsed.append(self.task.codec.parse(tokens))
            except (ExprParseError, ValueError, KeyError):
                continue
        self.candidates_ = select(
            parsed,
            z,
            y,
            n_refine=self.n_refine,
            mode=self.refine,
            rng=rng,
            max_seconds=self.refine_seconds,
        )
        if not self.candidates_:
            raise DataError(
                f"fit: none of the model's {len(trees)} hypotheses evaluates to finite values "
                "at the points"
            )
        self.tree_std_ = self.candidates_[0][0]
        self.tree_ = unstandardise(self.tree_std_, self.features_, self.mu_, self.sigma_)
        self.expression_ = infix(self.tree_)
        self.r2_ = r2(y, self.predict(x))
        self.fit_seconds_ = time.perf_counter() - start
        return self

    @staticmethod
    def _check(X, y) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64).ravel()
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or len(x) != len(y):
            raise DataError(f"fit: X {x.shape} and y {y.shape} do not match (X: points x inputs)")
        if len(y) < 2:
            raise DataError(f"fit: {len(y)} point(s); need at least 2")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise DataError("fit: X and y must be finite (no NaN or inf)")
        return x, y

    def _bags(self, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(n)
        return np.array_split(order, math.ceil(n / self.max_bag))[: self.n_bags]

    def _decode(self, z: np.ndarray, y: np.ndarray, bags: list[np.ndarray]) -> list[list[str]]:
        """Every hypothesis of every bag (rows of ``z``, ``y``), as target tokens."""
        width, dim = max(len(b) for b in bags), z.shape[1]
        raw = {
            "x": np.zeros((len(bags), width, dim)),
            "y": np.zeros((len(bags), width)),
            "n_points": np.array([len(b) for b in bags], dtype=np.int64),
            "dim": np.full(len(bags), dim, dtype=np.int64),
        }
        for i, bag in enumerate(bags):
            raw["x"][i, : len(bag)], raw["y"][i, : len(bag)] = z[bag], y[bag]
        return [hyp for row in decode_candidates(self, raw) for hyp in row]

    # ---- results ------------------------------------------------------------------------
    def _fitted(self) -> None:
        if not hasattr(self, "tree_"):
            raise ValueError("SymbolicRegressor: call fit(X, y) first")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The fitted expression at the rows of ``X`` (the columns it was fitted on)."""
        self._fitted()
        x = np.asarray(X, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise DataError(f"predict: X needs {self.n_features_in_} columns, got {x.shape}")
        return evaluate(self.tree_, x)

    def sympy(self) -> sp.Expr:
        """The fitted expression in SymPy (built from the tree, never from a string)."""
        self._fitted()
        return to_sympy(self.tree_)


# ---- CSV files ----------------------------------------------------------------------------
@torch.inference_mode()
def decode_candidates(regressor: Any, raw: dict[str, np.ndarray]) -> list[list[list[str]]]:
    """Each encoded row's hypotheses as target tokens, decoded as ``regressor`` says (its
    ``model``, ``task``, ``sampling`` and ``temperature`` with its ``seed``, else a beam of
    ``beam_size``, else greedy; at most ``max_len`` tokens, default the model's positions):
    the decoding :class:`SymbolicRegressor` and ``ODERegressor`` share."""
    from synthmath.eval.decoding import beam_decode, greedy_decode, sample_decode

    model = regressor.model
    ids, _ = regressor.task.encode_src(raw)
    device = next(model.parameters()).device
    src = torch.from_numpy(ids.astype(np.int64)).to(device)
    max_len = regressor.max_len or model.cfg.max_len
    if regressor.sampling > 0:
        generator = torch.Generator(device).manual_seed(regressor.seed)
        out, lengths = sample_decode(
            model, src, regressor.sampling, max_len, regressor.temperature, generator
        )
    elif regressor.beam_size > 1:
        out, lengths = beam_decode(model, src, regressor.beam_size, max_len)
    else:
        out, lengths = greedy_decode(model, src, max_len)
        out, lengths = out[:, None], lengths[:, None]
    vocab = regressor.task.tgt_vocab()
    out, lengths = out.cpu().numpy(), lengths.cpu().numpy()
    return [
        [vocab.to_tokens(out[b, k, : lengths[b, k]]) for k in range(out.shape[1])]
        for b in range(out.shape[0])
    ]


@dataclass
class Points:
    x: np.ndarray  # (rows, inputs)
    y: np.ndarray  # (rows,)
    names: list[str]  # input column names (x_k is names[k])
    target: str


def read_points(path: str | Path, target: str | None = None) -> Points:
    """A CSV of points with a header line of column names: the ``target`` column (default
    ``y`` when there is one, else the last column) is the output, the others the inputs.
    A :class:`DataError` naming the file (and row and column) for every problem
    (:func:`~synthmath.tasks.regression.tables.read_table`)."""
    chosen: list[str] = []

    def check(names: list[str]) -> None:
        chosen.append(target or ("y" if "y" in names else names[-1]))
        if chosen[0] not in names:
            raise DataError(f"{path}: no column {chosen[0]!r} (columns: {', '.join(names)})")

    table = read_table(path, check_names=check)
    k = table.names.index(chosen[0])
    inputs = [j for j in range(len(table.names)) if j != k]
    return Points(
        table.data[:, inputs], table.data[:, k], [table.names[j] for j in inputs], chosen[0]
    )


@dataclass
class FileFit:
    """A fit of a CSV file's points: what ``synthmath fit symreg`` prints (and plots)."""

    points: Points
    regressor: SymbolicRegressor
    path: str

    def text(self) -> str:
        reg, pts = self.regressor, self.points
        named = reg.sympy().subs(
            {sp.Symbol(f"x_{k}"): sp.Symbol(name) for k, name in enumerate(pts.names)},
            simultaneous=True,
        )
        used = ", ".join(f"x_{k} = {pts.names[k]}" for k in reg.features_)
        decoding = f"{reg.sampling} samples" if reg.sampling > 0 else f"beam {reg.beam_size}"
        lines = [
            f"expression: {reg.expression_}",
            f"named:      {pts.target} = {named}",
            f"variables:  {used}",
            f"R^2:        {reg.r2_:.6g} on the {len(pts.y)} points of {self.path}",
            f"time:       {reg.fit_seconds_:.3g} s ({reg.n_bags_} bag(s), {decoding}, "
            f"{reg.n_decoded_} hypotheses, refine {reg.refine})",
        ]
        return "\n".join(lines) + "\n"


def fit_file(
    model: Any, task: Any, path: str | Path, *, target: str | None = None, **options: Any
) -> FileFit:
    """Read ``path`` (:func:`read_points`) and fit it (``options``: :class:`SymbolicRegressor`)."""
    points = read_points(path, target)
    regressor = SymbolicRegressor(model, task, **options).fit(points.x, points.y)
    return FileFit(points, regressor, str(path))
