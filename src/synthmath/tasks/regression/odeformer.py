"""The ``odeformer`` task: one noisy, irregularly sampled trajectory -> an ODE system
(d'Ascoli et al. 2024, "ODEFormer"; specs/regression.md).

Generation: :mod:`synthmath.tasks.regression.odeformer_gen` (or, with ``benchmark``, the
ODEBench / Strogatz systems of :mod:`~synthmath.tasks.regression.benchmarks`). Corruption is
drawn per example from its own stream after generation (the clean trajectory is kept for
scoring): ``subsample`` drops that fraction of the points, ``noise`` multiplies each value by
(1 + gamma eps); ``random_levels`` draws r and gamma from {0, 1/4, .., 1} x those maxima per
example (the release's training corruption; paper run noise 0.1, subsample 0.5).

Input: one encoder position per observed time point, ``(t, x_0..x_{max_dim-1})`` in
``P10000`` (3 tokens a number, unused coordinates PAD: 21 tokens at ``max_dim`` 6). As in
ODEFormer the encoder has no positions (``point_set``): time is an input feature. The
observations are encoded as they are: generated data already lives on t in [1, 10] with
y0 ~ N(0, I). ``rescale: true`` encodes them as the release's inference does (t onto
[1, 10], each variable divided by its first observed value, 0 -> 1:
:mod:`~synthmath.tasks.regression.odeformer_scale`): the answer is then the system in those
coordinates and each hypothesis is rewritten back before it is scored (benchmark test sets
of a model trained on generated data; ODEBench's t is [0, 10], its values far from N(0, 1)).
Output: the components in prefix, separated by ``|``.

Raw arrays: ``times`` (n, max_points) the full grid, ``clean`` and ``gen_clean`` (n,
max_points, max_dim) the truth from the first and from the generalisation start, ``n_points``,
``obs_times``/``obs_values``/``n_obs`` the corrupted observations, ``dim``, ``tree`` (raw
prefix components joined by `` | ``), ``n_ops``, ``noise_level``, ``drop_level``, ``system``.

Scoring: each hypothesis is integrated from the clean first state on the full grid (the same
solver as the stored data: RK45 at rtol 1e-6, the benchmark's LSODA settings for benchmarks;
at most 4 ``max_rhs_evals`` right-hand-side calls) and compared with the clean trajectory: ``r2``
variance-weighted over dimensions (non-integrable or invalid: 0), ``r2_zero`` clipped at 0,
``acc_r2_0.9`` (main) / ``acc_r2_0.99``, ``acc_biggio`` (95% of values numpy-isclose at
rtol 0.05, atol 1e-3); the same from the generalisation start (``gen_*``); ``recovery``
(every component equal to the truth at 1e-3 relative, the equivalence engine), ``term_diff``
(missing plus extra additive terms of the skeletons over the truth's terms), ``complexity``,
``parse_error`` (with ``rescale``, recovery, terms and complexity read the hypothesis as
predicted, against the answer in the scaled coordinates). ``rerank: true`` first orders each n-best list by sum_d RMSE_d / std_d of
the hypothesis integrated from the first observed state on the observed points (ODEFormer's
selection; it sees only the noisy observations).

A trained model fits a user's CSV trajectory through :meth:`OdeformerTask.fit_file`
(``synthmath fit odeformer``; :mod:`~synthmath.tasks.regression.ode_inference`).
"""

from __future__ import annotations

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
from synthmath.expressions.operators import infix, is_variable
from synthmath.expressions.prefix import PrefixCodec
from synthmath.expressions.shards import attempt_rng
from synthmath.expressions.sympy_bridge import clear_cache
from synthmath.tasks.regression import odeformer_gen as gen
from synthmath.tasks.regression import odeformer_scoring as scoring
from synthmath.tasks.regression.benchmarks import BENCHMARKS, integrate, load_benchmark
from synthmath.tasks.regression.odeformer_scale import Scale
from synthmath.tasks.regression.points import PointsTask

MAX_ATTEMPTS = 2000
#: the stream of an example's corruption (attempt numbers stay below MAX_ATTEMPTS)
CORRUPTION_STREAM = 1_000_000_007
SEPARATOR = "|"
CACHE_CLEAR_EVERY = 10_000
#: operators of the output vocabulary: the generated ones after SymPy, plus the benchmarks'
OUTPUT_OPS = (
    "add", "sub", "mul", "div", "pow", "inv", "pow2", "pow3", "sqrt", "exp", "ln", "abs",
    "sin", "cos", "tan", "cot", "atan",
)  # fmt: skip


def _between(low: float, high: float):
    return lambda v: None if low <= v <= high else f"must be in {low}..{high}"


class OdeformerTask(PointsTask):
    """ODE systems from one trajectory (see module docstring)."""

    name = "odeformer"
    # input_kind "point_set" (PointsTask): ODEFormer's encoder has no positions; t is a feature
    capabilities = frozenset({"predict_file"})
    group_names = ("dim", "ops", "noise", "subsample", "system")
    RAW_ARRAYS = (
        "times", "clean", "gen_clean", "n_points", "obs_times", "obs_values", "n_obs", "dim",
        "tree", "n_ops", "noise_level", "drop_level", "system",
    )  # fmt: skip
    PARAMS = {
        "max_dim": Param(6, "most components (D ~ U{1..max_dim})", int, check=_between(1, 6)),
        "min_points": Param(50, "fewest time points (n ~ U{min..max})", int, check=_between(2, 1000)),
        "max_points": Param(200, "most time points", int, check=_between(2, 1000)),
        "max_binary": Param(5, "most binary operators per component (b ~ U{1..})", int,
                            check=_between(1, 20)),
        "max_unary": Param(3, "most unary operators per component (u ~ U{0..})", int,
                           check=_between(0, 10)),
        "max_rhs_evals": Param(5000, "right-hand-side calls per integration (then rejected / "
                               "not integrable)", int, check=_between(100, 10**7)),
        "max_answer_tokens": Param(510, "longest answer in tokens (longer systems are "
                                   "rejected)", int, check=_between(16, 100_000)),
        "noise": Param(0.0, "multiplicative noise gamma: x (1 + gamma eps)", float,
                       check=_between(0.0, 10.0)),
        "subsample": Param(0.0, "fraction of the time points dropped", float,
                           check=_between(0.0, 0.95)),
        "random_levels": Param(False, "per example r and gamma ~ U{0, 1/4, .., 1} x subsample "
                               "and noise (the release's training corruption)", bool),
        "benchmark": Param("none", "test on benchmark trajectories instead of generated ones "
                           "(odebench: 63 systems, reconstruction from the first initial "
                           "condition, generalisation to the second; strogatz: 7 x 4)", str,
                           ("none", *BENCHMARKS)),
        "rescale": Param(False, "encode the observations as ODEFormer's inference does (t onto "
                         "[1, 10], each variable / its first observed value); answers are "
                         "written, and hypotheses read, in those coordinates", bool),
        "rerank": Param(False, "order each n-best list by the fit to the observed points", bool,
                        data=False),
    }  # fmt: skip

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        if p["min_points"] > p["max_points"]:
            raise ConfigError(
                f"min_points: {p['min_points']} is more than max_points={p['max_points']}"
            )
        self.codec = PrefixCodec(float_encoding="P10000", max_len=4096)
        self.config = gen.GenConfig(
            max_dim=p["max_dim"],
            max_binary=p["max_binary"],
            max_unary=p["max_unary"],
            min_points=p["min_points"],
            max_points=p["max_points"],
            max_rhs_evals=p["max_rhs_evals"],
            operators=frozenset(OUTPUT_OPS),
            max_answer_tokens=p["max_answer_tokens"],
        )
        self.stats: Counter = Counter()

    # ---- data ---------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        """``n`` examples; example i, attempt a draws from ``attempt_rng(seed, i, a)``, its
        corruption from ``attempt_rng(seed, i, CORRUPTION_STREAM)``."""
        seed = int(rng.integers(2**63 - 1))
        if self.params["benchmark"] == "none":
            examples = [(self.generate_one(seed, i), "generated") for i in range(n)]
        else:
            examples = [self.benchmark_example(i) for i in range(n)]
        return self.to_raw(examples, seed)

    def generate_one(self, seed: int, index: int) -> gen.Example:
        for a in range(MAX_ATTEMPTS):
            self.stats["attempts"] += 1
            if self.stats["attempts"] % CACHE_CLEAR_EVERY == 0:
                clear_cache()  # SymPy's cache grows without bound
            result = gen.attempt(self.config, self.codec, attempt_rng(seed, index, a))
            if isinstance(result, gen.Example):
                self.stats["accepted"] += 1
                return result
            self.stats[f"rejected_{result}"] += 1
        raise DataError(f"odeformer: no example accepted in {MAX_ATTEMPTS} attempts (seed {seed})")

    def benchmark_problems(self) -> list[tuple[Any, int, int]]:
        """(system, reconstruction start, generalisation start) per problem: ODEBench's
        first and second initial conditions; Strogatz each of 4 starts, generalising to the
        next one."""
        bench = load_benchmark(self.params["benchmark"])
        problems = []
        for system in bench.systems:
            k = len(system.initial_conditions)
            starts = range(k) if self.params["benchmark"] == "strogatz" else range(1)
            problems += [(system, j, (j + 1) % k) for j in starts]
        return problems

    def benchmark_example(self, index: int) -> tuple[gen.Example, str]:
        """Problem ``index`` modulo their number (a larger test set repeats the systems with
        fresh corruption), integrated with the benchmark's solver on
        ``min(max_points, the benchmark's points)`` times."""
        problems = self._problems
        system, j, k = problems[index % len(problems)]
        if system.dim > self.config.max_dim:
            raise DataError(f"{system.name}: {system.dim} components exceed max_dim")
        solver = load_benchmark(self.params["benchmark"]).solver
        n = min(self.config.max_points, solver.n_points)
        runs = [integrate(system, system.initial_conditions[s], solver, n) for s in (j, k)]
        for run in runs:
            if not run.success or len(run.times) != n:
                raise DataError(f"{system.name}: the benchmark trajectory does not integrate")
        trees = system.trees
        ops = gen.operator_count(trees)
        example = gen.Example(trees, runs[0].times, runs[0].states, runs[1].states, ops, 0)
        return example, system.name

    @cached_property
    def _problems(self) -> list:
        return self.benchmark_problems()

    def length_bound(self) -> tuple[int, int]:
        """Points (no BOS/EOS) and answer tokens with BOS/EOS: generation rejects answers
        over ``max_answer_tokens``; a benchmark's longest answer is measured."""
        if self.params["benchmark"] == "none":
            return self.config.max_points, self.config.max_answer_tokens + 2
        solver = load_benchmark(self.params["benchmark"]).solver
        longest = max(len(self.answer_tokens(s.trees)) for s, _, _ in self._problems)
        return min(self.config.max_points, solver.n_points), longest + 2

    def to_raw(self, examples: Sequence[tuple[gen.Example, str]], seed: int) -> RawBatch:
        n, p, d = len(examples), self.config.max_points, self.config.max_dim
        out: dict[str, np.ndarray] = {
            "times": np.zeros((n, p)),
            "clean": np.zeros((n, p, d)),
            "gen_clean": np.zeros((n, p, d)),
            "obs_times": np.zeros((n, p)),
            "obs_values": np.zeros((n, p, d)),
        }
        counts = np.zeros((3, n), dtype=np.int64)
        levels = np.zeros((2, n))
        for i, (ex, _) in enumerate(examples):
            m, dim = len(ex.times), ex.dim
            out["times"][i, :m] = ex.times
            out["clean"][i, :m, :dim] = ex.states
            out["gen_clean"][i, :m, :dim] = ex.gen_states
            crng = attempt_rng(seed, i, CORRUPTION_STREAM)
            r, g = gen.corruption_levels(
                self.params["subsample"], self.params["noise"], self.params["random_levels"], crng
            )
            t_obs, x_obs = gen.corrupt(ex.times, ex.states, r, g, crng)
            out["obs_times"][i, : len(t_obs)] = t_obs
            out["obs_values"][i, : len(t_obs), :dim] = x_obs
            counts[:, i] = (m, len(t_obs), dim)
            levels[:, i] = (g, r)
        out |= {"n_points": counts[0], "n_obs": counts[1], "dim": counts[2]}
        out["tree"] = np.array([f" {SEPARATOR} ".join(" ".join(t) for t in ex.trees)
                                for ex, _ in examples], dtype=str)  # fmt: skip
        out["n_ops"] = np.array([ex.n_binary + ex.n_unary for ex, _ in examples], dtype=np.int64)
        out |= {"noise_level": levels[0], "drop_level": levels[1]}
        out["system"] = np.array([name for _, name in examples], dtype=str)
        return out

    @staticmethod
    def truth(raw: RawBatch, i: int) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(part.split()) for part in str(raw["tree"][i]).split(SEPARATOR))

    @staticmethod
    def observed(raw: RawBatch, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Example i's observations: times (m,) and values (m, D)."""
        m, d = int(raw["n_obs"][i]), int(raw["dim"][i])
        return np.asarray(raw["obs_times"][i, :m]), np.asarray(raw["obs_values"][i, :m, :d])

    @staticmethod
    def trajectory(raw: RawBatch, i: int, key: str = "clean") -> tuple[np.ndarray, np.ndarray]:
        """Example i's full grid and clean trajectory (``key`` "gen_clean": generalisation)."""
        m, d = int(raw["n_points"][i]), int(raw["dim"][i])
        return np.asarray(raw["times"][i, :m]), np.asarray(raw[key][i, :m, :d])

    # ---- tokens -------------------------------------------------------------------------
    @cached_property
    def _tgt_vocab(self) -> Vocab:
        return Vocab(
            [*self.codec.vocabulary(OUTPUT_OPS, gen.variables(self.config.max_dim)), SEPARATOR]
        )

    def scale(self, raw: RawBatch, i: int) -> Scale | None:
        """Example i's rescaling (``rescale``), from its observations; None without."""
        return Scale.of(*self.observed(raw, i)) if self.params["rescale"] else None

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        counts = np.asarray(raw["n_obs"], dtype=np.int64)
        width = max(1, int(counts.max(initial=1)))
        x = np.asarray(raw["obs_values"])[:, :width]
        times = np.asarray(raw["obs_times"])[:, :width]
        if self.params["rescale"]:
            x, times = x.copy(), times.copy()
            for i in range(len(counts)):
                m, d = int(counts[i]), int(raw["dim"][i])
                times[i, :m], x[i, :m, :d] = self.scale(raw, i).apply(times[i, :m], x[i, :m, :d])
        if x.shape[2] > self.config.max_dim:
            raise ValueError(
                f"odeformer: {x.shape[2]} components exceed max_dim={self.config.max_dim}"
            )
        x = np.pad(x, ((0, 0), (0, 0), (0, self.config.max_dim - x.shape[2])))
        values = np.concatenate([times[:, :, None], x], axis=2)
        unused = np.arange(self.config.max_dim + 1)[None, :] > np.asarray(raw["dim"])[:, None]
        return self.encode_rows(values, unused, counts)

    def answer_tokens(self, trees: Sequence[tuple[str, ...]]) -> list[str]:
        out: list[str] = []
        for k, tree in enumerate(trees):
            out += ([SEPARATOR] if k else []) + self.codec.encode(tree)
        return out

    def target_system(self, raw: RawBatch, i: int) -> tuple[tuple[str, ...], ...]:
        """The answer a model is trained towards: the truth, in the scaled coordinates with
        ``rescale``."""
        scale = self.scale(raw, i)
        truth = self.truth(raw, i)
        return truth if scale is None else scale.to_scaled(truth, self.codec)

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        seqs = [self.answer_tokens(self.target_system(raw, i)) for i in range(len(raw["tree"]))]
        return self._tgt_vocab.padded_ids(seqs)

    def parse_system(self, tokens: Sequence[str], dim: int) -> tuple[tuple[str, ...], ...]:
        """The component trees of a predicted token sequence; :class:`ExprParseError` unless
        it holds exactly ``dim`` well-formed components in the variables x_0..x_{dim-1}."""
        parts: list[list[str]] = [[]]
        for token in tokens:
            if token == SEPARATOR:
                parts.append([])
            else:
                parts[-1].append(token)
        if len(parts) != dim:
            raise ExprParseError(f"{len(parts)} components, expected {dim}")
        trees = tuple(self.codec.parse(part) for part in parts)
        allowed = set(gen.variables(dim))
        for tree in trees:
            if any(is_variable(t) and t not in allowed for t in tree):
                raise ExprParseError(f"a variable outside x_0..x_{dim - 1}")
        return trees

    # ---- scoring ------------------------------------------------------------------------
    def metrics(self) -> tuple[Metric, ...]:
        return scoring.METRICS

    def main_metric(self) -> str:
        return "acc_r2_0.9"

    def solver_args(self) -> dict[str, Any]:
        """How hypotheses are integrated: as the data was (module docstring)."""
        if self.params["benchmark"] == "none":
            return gen.precise_args(self.config)
        s = load_benchmark(self.params["benchmark"]).solver
        return {
            "max_evals": gen.PRECISE_EVALS * self.config.max_rhs_evals,
            "method": s.method, "rtol": s.rtol, "atol": s.atol, "first_step": s.first_step,
        }  # fmt: skip

    def score(self, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]):
        n, k = nbest_shape(hypotheses)
        out = {
            m.name: np.zeros((n, k), dtype=bool if m.accuracy else float) for m in self.metrics()
        }
        solver = self.solver_args()
        for i in range(n):
            dim = int(raw["dim"][i])
            problem = scoring.Problem(
                truth=self.truth(raw, i),
                full=self.trajectory(raw, i),
                gen=self.trajectory(raw, i, "gen_clean"),
                observed=self.observed(raw, i),
            )
            scale = self.scale(raw, i)
            target = self.target_system(raw, i)
            rows = []
            for h in hypotheses[i]:
                try:
                    trees = self.parse_system(list(h), dim)
                except ExprParseError:
                    rows.append(scoring.failed(parse_error=True))
                    continue
                original = trees if scale is None else scale.from_scaled(trees)
                rows.append(
                    scoring.score_system(
                        original, problem, solver, self.params["rerank"], (trees, target)
                    )
                )
            if self.params["rerank"]:
                rows.sort(key=lambda row: row["_fit"])
            for j, row in enumerate(rows):
                row.pop("_fit", None)
                for name, value in row.items():
                    out[name][i, j] = value
        return out

    # ---- a user's trajectory --------------------------------------------------------------
    def fit_file(
        self,
        model: Any,
        path: str,
        *,
        time_column: str | None = None,
        beam_size: int | None = None,
        sampling: int | None = None,
        temperature: float | None = None,
    ):
        """A trained model's system for a CSV trajectory (time column default ``t``, else the
        first): :func:`~synthmath.tasks.regression.ode_inference.fit_file`."""
        from synthmath.tasks.regression.ode_inference import fit_file

        return fit_file(
            model, self, path, time_column=time_column, beam_size=beam_size,
            sampling=sampling, temperature=temperature,
        )  # fmt: skip

    def predict_file(self, model: Any, path: str, beam_size: int | None = None) -> str:
        """The text of :meth:`fit_file` (``beam_size`` None: 50 samples at temperature 0.1)."""
        return self.fit_file(model, path, beam_size=beam_size).text()

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        return {
            "dim": np.asarray(raw["dim"]).astype(str),
            "ops": np.asarray(raw["n_ops"]).astype(str),
            "noise": np.array([f"{v:g}" for v in np.asarray(raw["noise_level"])]),
            "subsample": np.array([f"{v:g}" for v in np.asarray(raw["drop_level"])]),
            "system": np.asarray(raw["system"]).astype(str),
        }

    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        times, values = self.observed(raw, i)
        trees = self.truth(raw, i)
        return {
            "problem": {"times": times.tolist(), "trajectory": values.tolist()},
            "answer": {
                "tokens": self.answer_tokens(trees),
                "infix": f" {SEPARATOR} ".join(infix(t) for t in trees),
            },
        }
