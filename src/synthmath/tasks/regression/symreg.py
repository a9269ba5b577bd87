"""The ``symreg`` task: points (x, y) -> an expression with constants (Kamienny et al. 2022,
"End-to-end symbolic regression with transformers"; specs/regression.md).

Generation: :mod:`synthmath.tasks.regression.symreg_gen`. Input: a set of points (no
encoder positions, as E2E), one encoder position per point, ``x`` padded to ``max_dim`` coordinates (PAD tokens) then ``y``, every number in
``P10000`` (3 tokens: 33 floats = 99 tokens per point at ``max_dim`` 10). Output: the prefix
tree in variables ``x_0..x_{D-1}``, constants in ``P10000`` (e.g. ``add + N1230 E-4 ...``).

Raw arrays: ``x`` (n, max_points, max_dim) zero-padded, ``y`` (n, max_points), ``n_points``,
``dim``, ``tree`` (space-joined raw prefix), ``n_ops``.

Scoring on the input points, against the truth's noiseless values there (the same as ``y``
unless ``noise`` > 0): R^2 (``r2``: median of the finite values; ``r2_zero`` clipped
at 0), ``acc_r2_0.99``/``acc_r2_0.999``, ``acc_tau_*`` (95% of points within tau |y|),
``recovery`` (:func:`~synthmath.tasks.regression.fitting.symbolic_recovery`), complexity
(the hypothesis's prefix length, fewer nodes is better). With ``rerank: true`` each n-best
list is first ordered by R^2 on the observed (possibly noisy) input points, best first, as
E2E's inference selects.

Test-set options (not data parameters: one dataset, several scorings):

- ``refine``: ``none`` (default: the n-best list as decoded), ``e2e`` or ``skeleton``:
  :func:`~synthmath.tasks.regression.fitting.select` on the observed points (dedupe the
  skeletons, BFGS on the constants of the ``n_refine`` best by R^2, started from the predicted
  constants or, ``skeleton``, from N(0, 1) draws seeded per example; refined and unrefined
  candidates reranked by R^2), then the list is scored as usual: the first k candidates
  (k = the decoded list's length), then those that did not parse, then failed placeholders.
  Three test sets of one run give the "E2E / skeleton + BFGS / E2E without BFGS" ablation.
  The caps are deterministic (BFGS iterations and loss evaluations): scores are reproducible.
- ``extrapolation_scale`` s > 0: score (not refine) on 200 fresh points of a new seeded
  mixture of the generator's (:func:`~synthmath.tasks.regression.symreg_gen.draw_points`),
  multiplied by s, keeping those where the truth is finite (INFERRED protocol: E2E draws its
  "prediction" sets at scales 1, 2, 4, 8, 16; its exact mixture reuse is not known). Refinement
  and reranking still see only the input points.

Benchmark test sets (data parameter ``benchmark``: ``strogatz`` or ``feynman``; ``none``, the
default, is the generator): example i is problem i mod P of the benchmark (the problems of at
most ``max_dim`` variables, file order), ``max_points`` of its points (Strogatz: a subset of
its 400 trajectory rows), standardised, with the truth in the standardised variables
(:mod:`~synthmath.tasks.regression.symreg_bench`); ``noise`` applies, ``points_per_dim``,
``fixed_points``, ``max_unary`` and ``binary_offset`` do not. The breakdown ``problem`` names
each (``strogatz_lv1``, ``I.6.2a``). ``extrapolation_scale`` draws its mixture in the
standardised variables (points outside a formula's domain are dropped). The default leaves
dataset ids and shard metadata as before the option existed.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from synthmath.core.errors import ConfigError, DataError
from synthmath.core.metrics import Metric
from synthmath.core.task import Param, RawBatch, nbest_shape
from synthmath.core.vocab import Vocab
from synthmath.expressions.errors import ExprParseError
from synthmath.expressions.operators import PRESETS, infix
from synthmath.expressions.prefix import PrefixCodec
from synthmath.expressions.shards import attempt_rng
from synthmath.tasks.regression import symreg_bench as bench
from synthmath.tasks.regression import symreg_gen as gen
from synthmath.tasks.regression.fitting import REFINE_MODES, acc_tau, r2, select, symbolic_recovery
from synthmath.tasks.regression.points import PointsTask

MAX_ATTEMPTS = 1000
TAUS = (0.1, 0.01, 0.001)
R2_LEVELS = (0.99, 0.999)
#: points of an extrapolation set (``extrapolation_scale``), as the release's prediction sets
EXTRAPOLATION_POINTS = 200


def _between(low: float, high: float):
    return lambda v: None if low <= v <= high else f"must be in {low}..{high}"


class SymregTask(PointsTask):
    """End-to-end symbolic regression (see module docstring)."""

    name = "symreg"
    #: an unordered set: no encoder positions (E2E's encoder has none)
    group_names = ("dim", "ops", "problem")
    capabilities = frozenset({"predict_file"})
    RAW_ARRAYS = ("x", "y", "n_points", "dim", "tree", "n_ops")
    PARAMS = {
        "max_dim": Param(10, "most input variables (D ~ U{1..max_dim})", int, check=_between(1, 10)),
        "max_points": Param(200, "most points per example", int, check=_between(5, 1000)),
        "points_per_dim": Param(5, "fewest points per variable (N ~ U{k D..max_points})", int),
        "fixed_points": Param(False, "always max_points points (the release's evaluation)", bool),
        "max_unary": Param(4, "most unary operators (u ~ U{0..max_unary})", int),
        "binary_offset": Param(4, "binary operators b ~ U{0..D + offset - 1}", int),
        "noise": Param(0.0, "output noise gamma: y + gamma rms(y) N(0, 1)", float),
        "benchmark": Param(
            "none", "none (generated), or the problems of strogatz (PMLB ODE-Strogatz, 14) or "
            "feynman (AI Feynman, 30), cycled", str, choices=bench.SYMREG_BENCHMARKS,
        ),
        "rerank": Param(
            False, "order each n-best list by R^2 on the input points before scoring", bool,
            data=False,
        ),
        "refine": Param(
            "none", "before scoring: dedupe skeletons, BFGS on the constants (from the predicted "
            "ones: e2e; from N(0, 1): skeleton), rerank by R^2", str, choices=REFINE_MODES,
            data=False,
        ),
        "n_refine": Param(
            10, "candidates refined per example (refine: e2e/skeleton)", int,
            check=_between(1, 1000), data=False,
        ),
        "extrapolation_scale": Param(
            0.0, "score on 200 fresh points at this scale (0: on the input points)", float,
            check=_between(0.0, 1e6), data=False,
        ),
    }  # fmt: skip

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        self.config = gen.GenConfig(
            max_dim=p["max_dim"],
            max_points=p["max_points"],
            points_per_dim=p["points_per_dim"],
            fixed_points=p["fixed_points"],
            binary_offset=p["binary_offset"],
            max_unary=p["max_unary"],
            noise=p["noise"],
        )
        self.codec = PrefixCodec(float_encoding="P10000", max_len=4096)
        self.stats: Counter = Counter()
        self.problems: tuple[bench.Problem, ...] = ()
        if p["benchmark"] != "none":
            self.problems = tuple(
                q for q in bench.problems(p["benchmark"]) if q.dim <= p["max_dim"]
            )
            if not self.problems:
                raise ConfigError(
                    f"benchmark: no {p['benchmark']} problem has at most max_dim="
                    f"{p['max_dim']} variables"
                )
            self.RAW_ARRAYS = (*SymregTask.RAW_ARRAYS, "problem")

    def generator_params(self) -> dict[str, Any]:
        """Data parameters, without ``benchmark`` when it is ``none`` (dataset ids and shard
        metadata as before the option existed)."""
        out = super().generator_params()
        if out["benchmark"] == "none":
            out.pop("benchmark")
        return out

    # ---- data ---------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        """``n`` examples; example i, attempt a draws from ``attempt_rng(seed, i, a)``."""
        seed = int(rng.integers(2**63 - 1))
        if self.problems:
            return self._sample_benchmark(n, seed)
        return self.to_raw([self.generate_one(seed, i) for i in range(n)])

    def _sample_benchmark(self, n: int, seed: int) -> RawBatch:
        """Example i: problem i mod P, its points drawn from ``attempt_rng(seed, i, 0)``."""
        encoding = self.codec.encoding
        chosen = [self.problems[i % len(self.problems)] for i in range(n)]
        examples = [
            bench.example(
                q, self.config.max_points, self.config.noise, attempt_rng(seed, i, 0),
                encoding.round,
            )
            for i, q in enumerate(chosen)
        ]  # fmt: skip
        return {**self.to_raw(examples), "problem": np.array([q.name for q in chosen], dtype=str)}

    def generate_one(self, seed: int, index: int) -> gen.Example:
        for a in range(MAX_ATTEMPTS):
            self.stats["attempts"] += 1
            result = gen.attempt(self.config, self.codec, attempt_rng(seed, index, a))
            if isinstance(result, gen.Example):
                self.stats["accepted"] += 1
                return result
            self.stats[f"rejected_{result}"] += 1
        raise DataError(f"symreg: no example accepted in {MAX_ATTEMPTS} attempts (seed {seed})")

    def to_raw(self, examples: Sequence[gen.Example]) -> RawBatch:
        n, p, d = len(examples), self.config.max_points, self.config.max_dim
        x, y = np.zeros((n, p, d)), np.zeros((n, p))
        for i, ex in enumerate(examples):
            x[i, : len(ex.y), : ex.dim] = ex.x
            y[i, : len(ex.y)] = ex.y
        return {
            "x": x,
            "y": y,
            "n_points": np.array([len(ex.y) for ex in examples], dtype=np.int64),
            "dim": np.array([ex.dim for ex in examples], dtype=np.int64),
            "tree": np.array([" ".join(ex.tree) for ex in examples], dtype=str),
            "n_ops": np.array([ex.n_binary + ex.n_unary for ex in examples], dtype=np.int64),
        }

    @staticmethod
    def points(raw: RawBatch, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Example i's points: x (N, D) and y (N,)."""
        n, d = int(raw["n_points"][i]), int(raw["dim"][i])
        return np.asarray(raw["x"][i, :n, :d]), np.asarray(raw["y"][i, :n])

    # ---- tokens -------------------------------------------------------------------------
    @cached_property
    def _tgt_vocab(self) -> Vocab:
        preset = PRESETS["e2e"]
        ops = [*preset.binary, *preset.unary]
        return Vocab(self.codec.vocabulary(ops, gen.variables(self.config.max_dim)))

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        counts = np.asarray(raw["n_points"], dtype=np.int64)
        width = max(1, int(counts.max(initial=1)))
        x = np.asarray(raw["x"])[:, :width]
        if x.shape[2] > self.config.max_dim:
            raise ValueError(
                f"symreg: points of {x.shape[2]} variables exceed max_dim={self.config.max_dim}"
            )
        x = np.pad(x, ((0, 0), (0, 0), (0, self.config.max_dim - x.shape[2])))
        values = np.concatenate([x, raw["y"][:, :width, None]], axis=2)
        unused = np.arange(self.config.max_dim + 1)[None, :] >= raw["dim"][:, None]
        unused[:, -1] = False  # y
        return self.encode_rows(values, unused, counts)

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        return self._tgt_vocab.padded_ids(self.codec.encode_many(raw["tree"]))

    # ---- scoring ------------------------------------------------------------------------
    def metrics(self) -> tuple[Metric, ...]:
        return (
            *(Metric.acc(f"acc_r2_{t}", f"R^2 >= {t} on the input points") for t in R2_LEVELS),
            *(
                Metric.acc(f"acc_tau_{t}", f"95% of the points within {t} |y| (Acc_tau)")
                for t in TAUS
            ),
            Metric.acc("recovery", "the truth up to an additive or multiplicative constant"),
            Metric("r2", "R^2 on the input points (median of the finite)", "median", True, "number"),
            Metric("r2_zero", "R^2 clipped at 0 (invalid: 0)", "mean", True, "number"),
            Metric("complexity", "prefix nodes of the hypothesis", "median", False, "number"),
            Metric("parse_error", "not one well-formed expression", "mean", False, "percent"),
        )  # fmt: skip

    def main_metric(self) -> str:
        return "acc_r2_0.99"

    def score(self, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]):
        n, k = nbest_shape(hypotheses)
        out = {
            m.name: np.zeros((n, k), dtype=bool if m.accuracy else float) for m in self.metrics()
        }
        mode = self.params["refine"]
        for i in range(n):
            x, observed = self.points(raw, i)
            truth = tuple(str(raw["tree"][i]).split())
            rng = np.random.default_rng(
                [zlib.crc32(x.tobytes()), zlib.crc32(" ".join(truth).encode())]
            )
            x_score = self._scoring_points(x, truth, rng)
            clean = gen.evaluate(truth, x_score)
            parsed = [self._parse(list(h)) for h in hypotheses[i]]
            if mode != "none":
                parsed = self._refined(parsed, x, observed, k, rng)
            rows = [self._score_one(t, x, observed, x_score, clean, truth) for t in parsed]
            if self.params["rerank"] and mode == "none":
                rows.sort(key=lambda row: -row["_fit"])
            for row in rows:
                del row["_fit"]
            for j, row in enumerate(rows):
                for name, value in row.items():
                    out[name][i, j] = value
        return out

    def _scoring_points(self, x: np.ndarray, truth, rng: np.random.Generator) -> np.ndarray:
        """The input points, or (``extrapolation_scale`` s > 0) a fresh seeded mixture times
        s, without the points where the truth is not finite (or too large)."""
        scale = self.params["extrapolation_scale"]
        if scale == 0:
            return x
        fresh = gen.draw_points(EXTRAPOLATION_POINTS, x.shape[1], rng) * scale
        y = gen.evaluate(truth, fresh)
        return fresh[np.isfinite(y) & (np.abs(y) < gen.MAX_ABS_Y)]

    def _parse(self, tokens: list[str]):
        """The tree of a hypothesis, or ``"parse"`` / ``"invalid"`` when it has none."""
        try:
            return self.codec.parse(tokens)
        except ExprParseError:
            return "parse"
        except (ValueError, KeyError):
            return "invalid"

    def _refined(self, parsed: list, x, observed, k: int, rng: np.random.Generator) -> list:
        """``refine``: the selected candidates (best first), then the hypotheses that did not
        parse, then ``"invalid"`` placeholders: k entries."""
        trees = [t for t in parsed if isinstance(t, tuple)]
        ranked = select(
            trees,
            x,
            observed,
            n_refine=self.params["n_refine"],
            mode=self.params["refine"],
            rng=rng,
        )
        failed = [t for t in parsed if not isinstance(t, tuple)]
        return ([t for t, _, _ in ranked] + failed + ["invalid"] * k)[:k]

    def _score_one(self, tree, x, observed, x_score, clean, truth) -> dict:
        """Scores against the noiseless values ``clean`` of the truth at ``x_score``; ``_fit``
        (R^2 on the ``observed`` values at the input points ``x``, what a model sees) orders
        reranking."""
        if not isinstance(tree, tuple):
            return self._failed(tree == "parse") | {"_fit": -np.inf}
        variables = gen.variables(x.shape[1])
        try:
            y_fit = gen.evaluate(tree, x)
            y_hat = y_fit if x_score is x else gen.evaluate(tree, x_score)
        except (ValueError, KeyError):
            return self._failed(False) | {"_fit": -np.inf}
        score = r2(clean, y_hat) if len(clean) else -np.inf
        fit = r2(observed, y_fit)
        row = {f"acc_r2_{t}": bool(score >= t) for t in R2_LEVELS}
        row |= {f"acc_tau_{t}": acc_tau(clean, y_hat, t) for t in TAUS}
        row["recovery"] = tree == truth or symbolic_recovery(tree, truth, variables)
        row |= {"r2": score, "r2_zero": max(score, 0.0), "complexity": float(len(tree))}
        return row | {"parse_error": 0.0, "_fit": fit if np.isfinite(fit) else -np.inf}

    def _failed(self, parse_error: bool) -> dict:
        row: dict[str, Any] = {m.name: False for m in self.metrics() if m.accuracy}
        row |= {"r2": -np.inf, "r2_zero": 0.0, "complexity": np.inf}
        return row | {"parse_error": float(parse_error)}

    # ---- a user's points -----------------------------------------------------------------
    def fit_file(self, model: Any, path: str, beam_size: int = 10, target: str | None = None):
        """A trained model's expression for a CSV of points (header line; ``target`` column,
        default ``y`` or the last): :func:`~synthmath.tasks.regression.inference.fit_file`."""
        from synthmath.tasks.regression.inference import fit_file

        return fit_file(model, self, path, target=target, beam_size=max(beam_size, 1))

    def predict_file(
        self, model: Any, path: str, beam_size: int = 10, target: str | None = None
    ) -> str:
        """The text of :meth:`fit_file`: expression, R^2 on the file's points, time."""
        return self.fit_file(model, path, beam_size, target).text()

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        out = {
            "dim": np.asarray(raw["dim"]).astype(str),
            "ops": np.asarray(raw["n_ops"]).astype(str),
        }
        if "problem" in raw:
            out["problem"] = np.asarray(raw["problem"]).astype(str)
        return out

    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        x, y = self.points(raw, i)
        tree = tuple(str(raw["tree"][i]).split())
        problem: dict[str, Any] = {"x": x.tolist(), "y": y.tolist()}
        if "problem" in raw:
            problem["name"] = str(raw["problem"][i])
        return {
            "problem": problem,
            "answer": {"tokens": self.codec.encode(tree), "infix": infix(tree)},
        }
