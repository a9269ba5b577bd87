"""The ``boolean`` task: Boolean formulas from truth tables (Boolformer; specs/boolean.md).

The input is a set of rows ``(x_0 .. x_(n-1), y)`` of 0/1 values, one encoder position per
row (``input_kind = "point_set"``: the model ignores the order of the rows); the answer is
the formula in prefix. Example (n = 3, the full table; x_0 is the least significant bit of
the row number)::

    rows: 0 0 0 | 0   1 0 0 | 1   0 1 0 | 0   1 1 0 | 0   ...   (x_0 x_1 x_2 | y)
    tgt:  or and x_0 not x_1 x_2          infix: x_0 & ~x_1 | x_2

Each row is ``max_active + max_inactive + 1`` tokens: the bits of x, PAD for the variables
the example does not have, then y. Regimes: ``noiseless`` (full truth tables of 3..10
variables) and ``noisy`` (random-walk rows of up to 130 variables, flipped bits, held-out
rows); see :mod:`synthmath.tasks.boolean.generator`.

Raw arrays: ``formula`` (the answer's tokens, space-joined), ``x`` ((n, rows, bytes) uint8,
each row's bits packed little-endian: x_j is bit j % 8 of byte j // 8), ``y`` ((n, rows)
uint8), ``n_fit`` (the rows the model sees come first), ``n_test`` (held-out rows after them;
0 for a full table), ``n_vars``, ``n_active``, ``n_ops`` (sampled gates), ``noise`` (flip
probability), ``p_traj`` (walk flip probability).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from synthmath.core.errors import ConfigError, DataError
from synthmath.core.metrics import Metric
from synthmath.core.task import NBestTask, Param, RawBatch
from synthmath.core.vocab import PAD, Vocab
from synthmath.tasks.boolean import circuits
from synthmath.tasks.boolean import formulas as F
from synthmath.tasks.boolean import generator as gen
from synthmath.tasks.boolean.scoring import score_nbest

#: attempts allowed per accepted example before generation stops with an error
MAX_ATTEMPTS = 1000
REGIMES = ("noiseless", "noisy")
#: the release's settings per regime (scripts/run_noiseless.py, run_noisy.py)
REGIME_DEFAULTS = {
    "noiseless": dict(
        min_active=3, max_active=10, max_inactive=0, max_ops=500, max_points=1024, max_flip=0.0
    ),
    "noisy": dict(
        min_active=1, max_active=10, max_inactive=120, max_ops=20, max_points=600, max_flip=0.1
    ),
}
OPS_BINS = np.array([0, 5, 10, 20, 50, 100, 200])
OPS_LABELS = np.array(["0-4", "5-9", "10-19", "20-49", "50-99", "100-199", "200-more"])


def _opt(doc: str, kind: type = int) -> Param:
    return Param(None, doc + " (default: the regime's)", (kind, type(None)))


class BooleanTask(NBestTask):
    """Boolean formulas from (possibly noisy, partial) truth tables; see module docstring."""

    name = "boolean"
    input_kind = "point_set"
    capabilities = frozenset({"known_sets", "solve_file", "predict_file"})
    group_names = ("source", "active", "ops", "points", "noise")
    RAW_ARRAYS = ("source", "formula", "x", "y", "n_fit", "n_test", "n_vars", "n_active", "n_ops", "noise",
                  "p_traj")  # fmt: skip
    PARAMS = {
        "regime": Param(
            "noiseless", "noiseless (full tables) or noisy (walks, flips)", str, REGIMES
        ),
        "min_active": _opt("fewest active variables (3 noiseless, 1 noisy)"),
        "max_active": _opt("most active variables (10)"),
        "max_inactive": _opt("most distractor variables (0 noiseless, 120 noisy)"),
        "max_ops": _opt("most sampled binary gates (500 noiseless, 20 noisy)"),
        "max_points": _opt(
            "noiseless: most rows of a full table, else that many random rows to fit and as "
            "many held out (1024); noisy: most fit rows N (600; N in linspace(30, 601, 5))"
        ),
        "max_flip": _opt("noisy: most flip probability of fit inputs and outputs (0.1)", float),
        "unary_prob": Param(0.5, "probability of a not above each node", float),
        "max_output_len": Param(200, "reject simplified formulas with more tokens", int),
        "exact_max_vars": Param(
            6, "exact two-level minimisation (SymPy) up to this many variables, else rules", int
        ),
        "simplify": Param(True, "simplify the targets (ablation: raw formulas)", bool),
        "source": Param(
            "generated",
            "generated (random formulas), circuits (the logic-circuit zoo that fits max_vars "
            "and the rows, one problem per output bit, cycled), or circuit:<name>[,<name>...]",
            str,
        ),
    }

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str = "") -> dict[str, Any]:
        out = super().validate_params(params, where)
        prefix = f"{where}." if where else ""
        for key, value in REGIME_DEFAULTS[out["regime"]].items():
            if out[key] is None:
                out[key] = value
        checks = {
            "min_active": 1 <= out["min_active"] <= out["max_active"],
            "max_active": 1 <= out["max_active"] <= 16,
            "max_inactive": 0 <= out["max_inactive"] <= 240,
            "max_ops": max(out["max_active"] - 1, 0) <= out["max_ops"] <= 2000,
            "max_points": 2 <= out["max_points"] <= 100_000,
            "max_flip": 0.0 <= out["max_flip"] <= 0.5,
            "unary_prob": 0.0 <= out["unary_prob"] <= 1.0,
            "max_output_len": 1 <= out["max_output_len"] <= 4096,
            "exact_max_vars": 0 <= out["exact_max_vars"] <= 10,
        }
        wants = {
            "min_active": "in 1..max_active",
            "max_active": "in 1..16",
            "max_inactive": "in 0..240",
            "max_ops": "in max_active - 1..2000",
            "max_points": "in 2..100000",
            "max_flip": "in [0, 0.5]",
            "unary_prob": "in [0, 1]",
            "max_output_len": "in 1..4096",
            "exact_max_vars": "in 0..10",
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"{prefix}{key}: must be {wants[key]} (got {out[key]!r})")
        if out["source"] != "generated":
            names = _circuit_names(out["source"], f"{prefix}source")
            task = cls.__new__(cls)
            task.params = out
            task.config = task._config()
            if not task.zoo():
                raise ConfigError(
                    f"{prefix}source: no circuit of {', '.join(names)} fits max_active + "
                    f"max_inactive = {task.config.max_vars} inputs and "
                    f"{task._generated_bound()[0]} rows"
                )
        if out["regime"] == "noisy" and out["max_points"] < 30:
            raise ConfigError(
                f"{prefix}max_points: noisy rows start at 30 (got {out['max_points']})"
            )
        return out

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.config = self._config()
        self.stats: dict[str, int] = {"attempts": 0, "accepted": 0}

    def _config(self) -> gen.GenConfig:
        names = [f.name for f in dataclasses.fields(gen.GenConfig) if f.name in self.params]
        return gen.GenConfig(**{name: self.params[name] for name in names})

    # ---- data ---------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        """``n`` examples; example j's attempt a draws from ``default_rng([seed, j, a])``.
        A circuit source cycles through :meth:`zoo` instead (rng unused)."""
        if self.params["source"] != "generated":
            zoo = self.zoo()
            picked = [circuits.zoo_example(*zoo[j % len(zoo)]) for j in range(n)]
            return self.examples_to_raw([e for _, e in picked], [name for name, _ in picked])
        seed = int(rng.integers(2**63 - 1))
        return self.examples_to_raw([self.generate_one(seed, j) for j in range(n)])

    def zoo(self) -> list[tuple[str, int]]:
        """The (circuit, output bit) problems of a circuit ``source`` that fit this task."""
        names = _circuit_names(self.params["source"], "source")
        return circuits.zoo_problems(names, self.config.max_vars, self._generated_bound()[0])

    def solve_file(self, path: str, as_json: bool = False) -> str:
        """The classical baseline on a 0/1 CSV (``x_0..x_(n-1), y`` per line, optional
        header): a minimal two-level formula reproducing every row (:mod:`.fit`)."""
        from synthmath.tasks.boolean.fit import fit_exact, read_table

        table = read_table(path)
        return fit_exact(table).text(table.names, as_json)

    def predict_file(self, model: Any, path: str, beam_size: int = 1) -> str:
        """A trained model's formula for a 0/1 CSV, its beam ranked by (fit error, complexity)."""
        from synthmath.tasks.boolean.fit import fit_model, read_table

        table = read_table(path)
        return fit_model(model, self, table, beam_size=max(beam_size, 1)).text(table.names)

    def known_sets(self) -> tuple[str, ...]:
        """The logic-circuit zoo (``source=circuits``; any ``circuit:<kind>_<size>`` works)."""
        return circuits.ZOO

    def generate_one(self, seed: int, index: int) -> gen.Example:
        rejected: dict[str, int] = {}
        for a in range(MAX_ATTEMPTS):
            self.stats["attempts"] += 1
            result = gen.attempt(np.random.default_rng([seed, index, a]), self.config)
            if isinstance(result, gen.Example):
                self.stats["accepted"] += 1
                return result
            rejected[result] = rejected.get(result, 0) + 1
        raise DataError(
            f"boolean: no example accepted in {MAX_ATTEMPTS} attempts (seed {seed}, example "
            f"{index}); rejections: {rejected}"
        )

    def examples_to_raw(
        self, examples: Sequence[gen.Example], sources: Sequence[str] | None = None
    ) -> RawBatch:
        n = len(examples)
        rows = max((len(e.x) for e in examples), default=1)
        width = -(-self.config.max_vars // 8)
        x = np.zeros((n, rows, width), dtype=np.uint8)
        y = np.zeros((n, rows), dtype=np.uint8)
        for i, e in enumerate(examples):
            if e.n_vars:
                x[i, : len(e.x), : -(-e.n_vars // 8)] = np.packbits(e.x, axis=1, bitorder="little")
            y[i, : len(e.y)] = e.y
        formulas = [" ".join(e.tokens) for e in examples]
        return {
            "source": np.array(sources or ["generated"] * n, dtype=str),
            "formula": np.array(formulas, dtype=str),
            "x": x,
            "y": y,
            "n_fit": np.array([e.n_fit for e in examples], dtype=np.int32),
            "n_test": np.array([len(e.x) - e.n_fit for e in examples], dtype=np.int32),
            "n_vars": np.array([e.n_vars for e in examples], dtype=np.int32),
            "n_active": np.array(
                [len(F.variables(F.parse_prefix(e.tokens))) for e in examples], dtype=np.int32
            ),
            "n_ops": np.array([e.n_ops for e in examples], dtype=np.int32),
            "noise": np.array([e.noise for e in examples], dtype=np.float64),
            "p_traj": np.array([e.p_traj for e in examples], dtype=np.float64),
        }

    def rows(self, raw: RawBatch, i: int, part: str = "fit") -> tuple[np.ndarray, np.ndarray]:
        """Example i's fit (``part="fit"``) or held-out rows: ``(x (rows, n_vars), y (rows,))``."""
        n_fit, n_test = int(raw["n_fit"][i]), int(raw["n_test"][i])
        span = slice(0, n_fit) if part == "fit" else slice(n_fit, n_fit + n_test)
        bits = np.unpackbits(raw["x"][i, span], axis=1, bitorder="little")
        return bits[:, : int(raw["n_vars"][i])], raw["y"][i, span]

    def length_bound(self) -> tuple[int, int]:
        """(most fit rows, longest answer with BOS/EOS): the generator guarantees both; a
        circuit source measures its zoo (reference formulas may exceed max_output_len)."""
        rows, longest = self._generated_bound()
        if self.params["source"] != "generated":
            picked = [circuits.zoo_example(*p)[1] for p in self.zoo()]
            rows = max(e.n_fit for e in picked)
            longest = max(len(e.tokens) for e in picked) + 2
        return rows, longest

    def _generated_bound(self) -> tuple[int, int]:
        cfg = self.config
        if cfg.regime == "noiseless":
            rows = min(2**cfg.max_vars, cfg.max_points) if cfg.max_vars < 40 else cfg.max_points
        else:
            rows = cfg.max_points + 1
        return rows, cfg.max_output_len + 2

    # ---- tokens -------------------------------------------------------------------------
    def src_vocab(self) -> Vocab:
        return Vocab(["0", "1"])

    @cached_property
    def _tgt_vocab(self) -> Vocab:
        leaves = [F.var_token(j) for j in range(self.config.max_vars)]
        return Vocab(["and", "or", "not", "xor", "True", "False", *leaves])

    def tgt_vocab(self) -> Vocab:
        return self._tgt_vocab

    def tokens_per_point(self) -> int:
        return self.config.max_vars + 1

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        n_fit = np.asarray(raw["n_fit"], dtype=np.int64)
        points = max(1, int(n_fit.max(initial=1)))
        width = self.config.max_vars
        bits = np.unpackbits(raw["x"][:, :points], axis=2, bitorder="little")
        bits = np.pad(bits, ((0, 0), (0, 0), (0, max(0, width - bits.shape[2]))))[..., :width]
        zero = self.src_vocab().offset("0")
        ids = np.empty((len(n_fit), points, width + 1), dtype=np.int32)
        absent = np.arange(width)[None, None, :] >= np.asarray(raw["n_vars"])[:, None, None]
        ids[..., :width] = np.where(absent, PAD, zero + bits)
        ids[..., width] = zero + raw["y"][:, :points]
        ids[np.arange(points)[None, :] >= n_fit[:, None]] = PAD
        return ids, n_fit

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        return self._tgt_vocab.padded_ids([str(f).split() for f in raw["formula"]])

    # ---- scoring ------------------------------------------------------------------------
    def metrics(self) -> tuple[Metric, ...]:
        return (
            Metric.acc("acc", "reproduces every noise-free row (fit rows without flips, held out)"),
            Metric.acc("equivalent", "the same Boolean function as the generating formula"),
            Metric.acc("perfect_match", "token-for-token equal to the reference"),
            Metric.error("fit_error", "fraction of fit rows (as observed) predicted wrong"),
            Metric.error("test_error", "fraction of held-out rows (the table if none) wrong"),
            Metric("complexity", "and/or gates after flattening", "median", False, "number"),
            Metric("complexity_gap", "complexity minus the reference's", "median", False, "number"),
            Metric("parse_error", "not one well-formed formula", "mean", False, "percent"),
            Metric.fraction(
                "selected_acc",
                "the n-best list's pick by (fit error, complexity) is right (Boolformer's answer)",
            ),
            Metric.error("selected_test_error", "test error of that pick"),
        )

    def main_metric(self) -> str:
        return "acc"

    def score(self, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]):
        """Per-hypothesis scores in the decoder's order, and the pick of the whole list by
        (fit error, complexity), Boolformer's selection (:mod:`.scoring`)."""
        return score_nbest(self, raw, hypotheses)

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        ops = OPS_LABELS[np.searchsorted(OPS_BINS, np.asarray(raw["n_ops"]), side="right") - 1]
        return {
            "source": np.asarray(raw["source"]).astype(str),
            "active": np.asarray(raw["n_active"]).astype(str),
            "ops": ops,
            "points": np.asarray(raw["n_fit"]).astype(str),
            "noise": np.array([f"{v:g}" for v in np.asarray(raw["noise"])]),
        }

    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        x, y = self.rows(raw, i)
        tokens = str(raw["formula"][i]).split()
        return {
            "problem": {"rows": np.c_[x, y].astype(int).tolist()},
            "answer": {"tokens": tokens, "infix": F.to_infix(F.parse_prefix(tokens))},
            "info": {
                "source": str(raw["source"][i]),
                "n_vars": int(raw["n_vars"][i]),
                "n_active": int(raw["n_active"][i]),
                "n_ops": int(raw["n_ops"][i]),
                "held_out_rows": int(raw["n_test"][i]),
                "noise": float(raw["noise"][i]),
                "p_traj": float(raw["p_traj"][i]),
            },
        }


def _circuit_names(source: str, key: str) -> tuple[str, ...]:
    """``circuits`` -> the zoo; ``circuit:a,b`` -> (a, b), each checked; else ConfigError."""
    if source == "circuits":
        return circuits.ZOO
    if not source.startswith("circuit:") or not source[8:].strip():
        raise ConfigError(
            f"{key}: unknown value {source!r}; allowed: generated, circuits, circuit:<name>"
        )
    names = tuple(v.strip() for v in source[8:].split(",") if v.strip())
    for name in names:
        try:
            circuits.circuit(name)
        except ConfigError as err:
            raise ConfigError(f"{key}: {err}") from None
    return names
