"""The ``symbolic`` task: integration and ODEs (Lample & Charton 2019, specs/symbolic.md).

Problems (``problem``, one name or a list that interleaves them in one run):
``prim_fwd``, ``prim_bwd``, ``prim_ibp`` (integrate f: the answer is a primitive, no
constant) and ``ode1``, ``ode2`` (the input is the expression that vanishes, in ``x``, ``Y``,
``Y'``, ``Y''``; the answer a solution with constants ``c`` or ``c1``/``c2``). Example
(prim_bwd, f = x e^x)::

    src: sub Y' mul x exp x        tgt: mul add INT- 1 x exp x

Raw arrays: ``problem`` (the problem name), ``src`` and ``tgt`` (space-joined raw prefix
trees, :mod:`synthmath.expressions.operators`; an integration ``src`` is the integrand, the
model reads ``sub Y' <f>``), ``n_ops`` (the sampled operator count, a breakdown axis).

Generation is SymPy-bound (seconds per example for FWD and ODEs): each example is attempted
under the released per-problem time limit and retried, and the counts of attempts,
rejections by reason and timeouts are kept in :attr:`SymbolicTask.stats` (the generate job
writes them to the shard's metadata and log). Scoring verifies each hypothesis
(:mod:`synthmath.tasks.symbolic.scoring`).

IBP's known integrals: ``ibp_warm`` BWD pairs drawn from a seed of the task parameters, made
once per process before its first IBP attempt (outside the attempt time limit; a shard child
does it in run_shard's ``init``), plus each attempt's own pairs. Attempts do not add to the
warm set, so an example depends on its seed alone (in-process, in a child, resumed); the
stats count the lookups and hits (``ibp_lookups``, ``ibp_hits``, ``ibp_hit_rate``).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from synthmath.core.errors import ConfigError, DataError
from synthmath.core.metrics import Metric
from synthmath.core.task import NBestTask, Param, RawBatch
from synthmath.core.vocab import Vocab
from synthmath.expressions.numeric import VALIDITY_CHECKS
from synthmath.expressions.operators import OPERATORS, PRESETS, get_preset, infix
from synthmath.expressions.prefix import PrefixCodec
from synthmath.expressions.shards import example_seed, run_shard
from synthmath.expressions.sympy_bridge import clear_cache
from synthmath.tasks.symbolic import generators as gen
from synthmath.tasks.symbolic.integration import PrimitiveCache, known_integrals
from synthmath.tasks.symbolic.scoring import score_nbest

INTEGRATION = ("prim_fwd", "prim_bwd", "prim_ibp", "robust_poly", "robust_exp", "robust_coeff")
#: attempts allowed per accepted example before generation stops with an error
MAX_ATTEMPTS = 2000
#: SymPy's cache grows without bound: cleared every this many attempts
CLEAR_CACHE_EVERY = 10_000
#: operators the vocabulary holds (generators and SymPy output)
_VOCAB_OPS = tuple(n for n in OPERATORS if n not in ("idiv", "mod", "id", "relu", "sqr"))
_VOCAB_LEAVES = ("x", "Y", "Y'", "Y''", "c", "c1", "c2", "pi", "E")
#: most BWD pairs IBP may know in advance (about 15 ms each to make at max_ops 15)
MAX_IBP_WARM = 100_000


def problem_names(value: str | list) -> tuple[str, ...]:
    """``"prim_bwd"``, ``"prim_bwd,prim_ibp"`` or a list -> the problem names."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def _check_problem(value: Any) -> str | None:
    names = problem_names(value)
    if not names:
        return "needs at least one problem"
    bad = [v for v in names if v not in gen.PROBLEMS]
    if bad:
        return f"unknown problem {bad[0]!r}; allowed: {', '.join(gen.PROBLEMS)}"
    return None


def _check_preset(value: Any) -> str | None:
    return None if value in PRESETS else f"unknown preset; allowed: {', '.join(PRESETS)}"


def _check_ops(value: Any) -> str | None:
    return None if 0 <= value <= 40 else "must be in 0..40"


def _check_warm(value: Any) -> str | None:
    return None if 0 <= value <= MAX_IBP_WARM else f"must be in 0..{MAX_IBP_WARM}"


class SymbolicTask(NBestTask):
    """Symbolic integration and differential equations (see module docstring)."""

    name = "symbolic"
    capabilities = frozenset({"generate_shard"})
    group_names = ("problem", "ops", "length")
    RAW_ARRAYS = ("problem", "src", "tgt", "n_ops")
    PARAMS = {
        "problem": Param(
            "prim_bwd",
            "prim_fwd, prim_bwd, prim_ibp, ode1, ode2, or a list of them (interleaved; on the "
            "command line comma-separated)",
            (str, list),
            check=_check_problem,
        ),
        "preset": Param(
            "lc_released",
            "operators and leaves: lc_released (the released generator), lc_paper (paper 4.1), chh",
            str,
            check=_check_preset,
        ),
        "max_ops": Param(15, "most operators of a sampled expression", int, check=_check_ops),
        "min_ops": Param(
            0, "fewest operators (e.g. 11 for a complexity test set)", int, check=_check_ops
        ),
        "sampler": Param(
            "uniform", "uniform (D(e, n) counting) or naive tree shapes", str, ("uniform", "naive")
        ),
        "max_ops_g": Param(4, "prim_ibp: most operators of G", int, check=_check_ops),
        "ibp_warm": Param(
            0,
            "prim_ibp: BWD pairs (F', F) known before the first attempt (the same in every "
            "process: drawn from the task parameters; 0: each attempt's own pairs only)",
            int,
            check=_check_warm,
        ),
        "validity": Param(
            "released",
            "numeric check of a drawn expression at the released generator's 18 points: "
            "released (as its numexpr check: ln, trig, inverse trig, tanh, inverse hyperbolic, "
            "abs and sign stand for their argument) or strict (every function evaluated)",
            str,
            VALIDITY_CHECKS,
        ),
        "simplify_prob": Param(0.5, "prim_bwd/ode1: probability of simplifying the input", float),
        "max_len": Param(512, "reject examples with more tokens (+2) in input or output", int),
        "int_base": Param(10, "base of integer digits", int, (10, 100, 1000, 10000), data=False),
        "verify_timeout": Param(
            5.0, "seconds to verify one hypothesis (then it counts as wrong)", float, data=False
        ),
        "verify_workers": Param(
            0, "processes verifying hypotheses (0: one per core, at most 8)", int, data=False
        ),
    }

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str = "") -> dict[str, Any]:
        out = super().validate_params(params, where)
        prefix = f"{where}." if where else ""
        if out["min_ops"] > out["max_ops"]:
            raise ConfigError(f"{prefix}min_ops: must be <= max_ops={out['max_ops']}")
        if not 0.0 <= out["simplify_prob"] <= 1.0:
            raise ConfigError(f"{prefix}simplify_prob: must be in [0, 1]")
        if not 8 <= out["max_len"] <= 4096:
            raise ConfigError(f"{prefix}max_len: must be in 8..4096")
        if isinstance(out["problem"], list):
            out["problem"] = list(out["problem"])
        return out

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        self.problems = problem_names(p["problem"])
        self.config = gen.GenConfig(
            preset=get_preset(p["preset"], "preset"),
            max_ops=p["max_ops"],
            min_ops=p["min_ops"],
            sampler=p["sampler"],
            max_len=p["max_len"],
            max_ops_g=p["max_ops_g"],
            simplify_prob=p["simplify_prob"],
            ibp_warm=p["ibp_warm"],
            validity=p["validity"],
        )
        # integers of any length: the released generator bounds only the sequence length
        # (max_len), and SymPy's simplifications make 100+ digit coefficients now and then
        self.codec = PrefixCodec(int_base=p["int_base"], float_encoding=None, max_int_digits=None)
        self.stats = _new_stats("prim_ibp" in self.problems)

    def generator_params(self) -> dict[str, Any]:
        """Data parameters, without ``ibp_warm`` unless a problem is prim_ibp (same data, one
        dataset)."""
        out = super().generator_params()
        if "prim_ibp" not in self.problems:
            out.pop("ibp_warm")
        return out

    # ---- data ---------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        """``n`` examples, in this process (see :meth:`generate_shard` for the same examples
        made in a watched child process)."""
        rows: list[dict] = [{}] * n
        for problem, seed, index in self._plan(n, rng):
            for j, i in enumerate(index):
                rows[i] = self.generate_one(problem, example_seed(seed, j))
        return self.rows_to_raw(rows)

    def _plan(self, n: int, rng: np.random.Generator) -> list[tuple[str, int, range]]:
        """Example i is problem ``problems[i % P]`` (a list interleaves them) and the j-th
        example of that problem draws attempt a from ``default_rng([example_seed(seed_p, j),
        a])``: a timeout changes only that example."""
        seed = int(rng.integers(2**63 - 1))
        plan = []
        for p, problem in enumerate(self.problems):
            seed_p = example_seed(seed, 1_000_000 + p) if len(self.problems) > 1 else seed
            plan.append((problem, seed_p, range(p, n, len(self.problems))))
        return plan

    def generate_shard(
        self, n: int, rng: np.random.Generator, state_dir: str | os.PathLike | None = None
    ) -> tuple[RawBatch, dict]:
        """The examples of :meth:`sample` made by :func:`~synthmath.expressions.shards.run_shard`
        (a child process per problem, killed and resumed if it stops reporting, progress kept
        in ``state_dir``), with the statistics: attempts, accepted, rejections by reason,
        timeouts, seconds and the time share of timeouts."""
        rows: list[dict] = [{}] * n
        total: Counter = Counter()
        rejected: Counter = Counter()
        params = json.dumps(self.params, sort_keys=True)
        for problem, seed, index in self._plan(n, rng):
            if not len(index):
                continue
            generate_one = SymbolicAttempt(params, problem)
            ibp = problem == "prim_ibp"
            result = run_shard(
                generate_one,
                len(index),
                seed,
                None,
                attempt_timeout_s=gen.TIMEOUTS[problem],
                stall_timeout_s=4 * gen.TIMEOUTS[problem] + 30,
                max_attempts_per_example=MAX_ATTEMPTS,
                state_dir=Path(state_dir) / problem if state_dir is not None else None,
                init=generate_one.warm if ibp else None,
                counters=generate_one.counts if ibp else None,
            )
            for i, row in zip(index, result.examples):
                rows[i] = row
            stats = dict(result.stats)
            rejected.update(stats.pop("rejected_by_reason", {}))
            total.update(stats.pop("counts", {}))
            total.update({k: v for k, v in stats.items() if isinstance(v, int | float)})
        stats = {k: round(v, 2) if isinstance(v, float) else v for k, v in total.items()}
        stats["rejected_by_reason"] = dict(rejected.most_common())
        stats["timeout_share"] = round(total["timeout_seconds"] / max(total["seconds"], 1e-9), 4)
        if "prim_ibp" in self.problems:
            stats["ibp_hit_rate"] = _hit_rate(total["ibp_hits"], total["ibp_lookups"])
        return self.rows_to_raw(rows), stats

    def generate_one(self, problem: str, seed: int) -> dict:
        """One accepted example of ``problem``: attempt a draws from ``default_rng([seed, a])``
        (attempts counted in :attr:`stats`); raises :class:`DataError` after
        :data:`MAX_ATTEMPTS` attempts."""
        for a in range(MAX_ATTEMPTS):
            row = self.attempt(problem, seed, a)
            if isinstance(row, dict):
                return row
        raise DataError(
            f"symbolic {problem}: no example accepted in {MAX_ATTEMPTS} attempts (seed {seed}); "
            f"rejections so far: {dict(self.stats['rejected'])}"
        )

    def attempt(self, problem: str, seed: int, attempt: int) -> dict | str:
        """Attempt ``attempt`` of the example with ``seed``: a raw row or a rejection reason."""
        stats = self.stats
        if stats["attempts"] and stats["attempts"] % CLEAR_CACHE_EVERY == 0:
            clear_cache()
        known = self.known_integrals() if problem == "prim_ibp" else None
        if known is not None:
            seen = known.lookups, known.hits
        stats["attempts"] += 1
        t0 = time.perf_counter()
        result, timed_out = gen.attempt(
            problem, np.random.default_rng([seed, attempt]), self.config
        )
        seconds = time.perf_counter() - t0
        if known is not None:
            stats["ibp_lookups"] += known.lookups - seen[0]
            stats["ibp_hits"] += known.hits - seen[1]
        stats["seconds"] += seconds
        if timed_out:
            stats["timeouts"] += 1
            stats["timeout_seconds"] += seconds
        if isinstance(result, str):
            stats["rejected"][result] += 1
            return result
        stats["accepted"] += 1
        return _row(problem, result)

    def known_integrals(self, heartbeat: Callable[[], None] | None = None) -> PrimitiveCache:
        """IBP's warm set for these parameters (made on the first call in this process,
        outside any attempt time limit; ``heartbeat`` is called after each BWD draw)."""
        return known_integrals(self.config, heartbeat)

    @staticmethod
    def rows_to_raw(rows: Sequence[dict]) -> RawBatch:
        return {
            "problem": np.array([r["problem"] for r in rows], dtype="<U12"),
            "src": np.array([r["src"] for r in rows], dtype=str),
            "tgt": np.array([r["tgt"] for r in rows], dtype=str),
            "n_ops": np.array([r["n_ops"] for r in rows], dtype=np.int32),
        }

    def length_bound(self) -> tuple[int, int]:
        """Generation rejects longer examples: model positions with BOS/EOS (and ``sub Y'``)."""
        return self.params["max_len"] + 2, self.params["max_len"]

    # ---- tokens -------------------------------------------------------------------------
    @cached_property
    def _vocab(self) -> Vocab:
        return Vocab(self.codec.vocabulary(_VOCAB_OPS, _VOCAB_LEAVES))

    def src_vocab(self) -> Vocab:
        return self._vocab

    def tgt_vocab(self) -> Vocab:
        return self._vocab

    def src_tokens(self, raw: RawBatch) -> list[list[str]]:
        """Model tokens of the inputs (integration: ``sub Y' <f>``)."""
        seqs = self.codec.encode_many(raw["src"])
        return [["sub", "Y'", *s] if p in INTEGRATION else s for p, s in zip(raw["problem"], seqs)]

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        return self._vocab.padded_ids(self.src_tokens(raw))

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        return self._vocab.padded_ids(self.codec.encode_many(raw["tgt"]))

    # ---- scoring ------------------------------------------------------------------------
    def metrics(self) -> tuple[Metric, ...]:
        return (
            Metric.acc("acc", "verified symbolically (derivative or substitution simplifies to 0)"),
            Metric.acc("acc_numeric", "verified symbolically or numerically (expressions.md)"),
            Metric.acc("exact", "token-for-token equal to the reference"),
            Metric("parse_error", "not one well-formed expression", "mean", False, "percent"),
            Metric("verify_timeout", "verification ran out of time", "mean", False, "percent"),
        )

    def main_metric(self) -> str:
        return "acc"

    def score(self, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]):
        return score_nbest(self, raw, hypotheses)

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        lengths = np.array([len(s) for s in self.src_tokens(raw)])
        edges = np.array([0, 25, 50, 100, 200])
        labels = np.array(["0-24", "25-49", "50-99", "100-199", "200-more"])
        return {
            "problem": np.asarray(raw["problem"]).astype(str),
            "ops": np.asarray(raw["n_ops"]).astype(str),
            "length": labels[np.searchsorted(edges, lengths, side="right") - 1],
        }

    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        src = tuple(str(raw["src"][i]).split())
        tgt = tuple(str(raw["tgt"][i]).split())
        return {
            "type": str(raw["problem"][i]),
            "problem": {"tokens": self.codec.encode(src), "infix": infix(src)},
            "answer": {"tokens": self.codec.encode(tgt), "infix": infix(tgt)},
        }


def _row(problem: str, example: gen.Example) -> dict:
    return {
        "problem": problem,
        "src": " ".join(example.src),
        "tgt": " ".join(example.tgt),
        "n_ops": example.n_ops,
    }


class SymbolicAttempt:
    """One generation attempt in a shard child process: ``(rng) -> raw row | reason``.

    Picklable by reference (the task parameters travel as JSON); the task is built once per
    process. Its ``__qualname__`` names the problem and parameters, so a shard's progress log
    refuses to resume with other settings.
    """

    _tasks: dict[str, SymbolicTask] = {}

    def __init__(self, params_json: str, problem: str):
        self.params_json = params_json
        self.problem = problem
        self.__qualname__ = f"SymbolicAttempt[{problem}]{params_json}"
        self._seen = (0, 0)

    def _task(self) -> SymbolicTask:
        task = self._tasks.get(self.params_json)
        if task is None:
            task = self._tasks[self.params_json] = SymbolicTask(**json.loads(self.params_json))
        return task

    def warm(self, heartbeat: Callable[[], None]) -> None:
        """run_shard's ``init``: make IBP's warm set before the first attempt."""
        if self.problem == "prim_ibp":
            known = self._task().known_integrals(heartbeat)
            self._seen = known.lookups, known.hits

    def counts(self) -> dict[str, int]:
        """run_shard's ``counters``: IBP's lookups and hits since the last call."""
        if self.problem != "prim_ibp":
            return {}
        known = self._task().known_integrals()
        seen, self._seen = self._seen, (known.lookups, known.hits)
        return {"ibp_lookups": known.lookups - seen[0], "ibp_hits": known.hits - seen[1]}

    def __call__(self, rng: np.random.Generator) -> dict | str:
        task = self._task()
        task.stats["attempts"] += 1
        if task.stats["attempts"] % CLEAR_CACHE_EVERY == 0:
            clear_cache()
        result = gen.attempt_unlimited(self.problem, rng, task.config)
        return result if isinstance(result, str) else _row(self.problem, result)


def _new_stats(ibp: bool = False) -> dict:
    stats = {
        "attempts": 0,
        "accepted": 0,
        "rejected": Counter(),
        "timeouts": 0,
        "seconds": 0.0,
        "timeout_seconds": 0.0,
    }
    return stats | ({"ibp_lookups": 0, "ibp_hits": 0} if ibp else {})


def _hit_rate(hits: int, lookups: int) -> float:
    """IBP's share of lookups that found a known integral (0 without lookups)."""
    return round(hits / lookups, 4) if lookups else 0.0
