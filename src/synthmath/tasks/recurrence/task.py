"""The ``recurrence`` task: find the recurrence of a sequence (d'Ascoli et al. 2022).

Input: the first L terms of a sequence (L ~ U{5..30} per example), each a number block:
integers as a sign and base-``int_base`` digits (``INT- 1 2345`` is -12345 in base 10000),
floats in the ``float_encoding`` (P10000: ``+ N3142 E-3``). Output (``output``):

- ``symbolic``: the recurrence in prefix, in ``n`` and ``u_k`` = u_(n-k), integers in base 10
  (``add u_1 u_2`` is Fibonacci; ``mul n u_1`` the factorials);
- ``numeric``: the next ``n_predict`` terms as number blocks.

Example (mode int, symbolic): src ``INT+ 0 INT+ 1 INT+ 1 INT+ 2 INT+ 3``, tgt ``add u_1 u_2``.

Raw arrays: ``terms`` (the L given and ``n_predict`` target terms, space-joined, exact:
decimal integers or ``repr`` floats), ``n_input`` (L), ``tree`` (the raw prefix recurrence),
``degree`` (the number of initial terms d) and ``n_ops``. Generation and its rejections:
:mod:`synthmath.tasks.recurrence.generator`; scoring (the hypothesis rolled forward from the
given terms): :mod:`synthmath.tasks.recurrence.scoring`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from synthmath.codecs.numbers import get_encoding
from synthmath.core.errors import ConfigError, DataError, DecodeError
from synthmath.core.metrics import Metric
from synthmath.core.task import NBestTask, Param, RawBatch
from synthmath.core.vocab import Vocab
from synthmath.expressions.operators import infix, n_operators
from synthmath.expressions.prefix import INT_NEG, INT_POS, PrefixCodec
from synthmath.expressions.shards import example_seed
from synthmath.tasks.recurrence import generator as gen
from synthmath.tasks.recurrence.known import PROBES, classic_sequences
from synthmath.tasks.recurrence.scoring import declared_metrics, score_nbest

#: attempts allowed per accepted example before generation stops with an error
MAX_ATTEMPTS = 1000
FLOAT_ENCODINGS = ("P10000", "P1000", "P10")
FAMILIES = ("random", "classic", "probes")
_LENGTH_EDGES = np.array([0, 10, 15, 20, 25])
_LENGTH_LABELS = np.array(["5-9", "10-14", "15-19", "20-24", "25-30"])


def _in(lo: int, hi: int):
    return lambda v: None if lo <= v <= hi else f"must be in {lo}..{hi}"


class RecurrenceTask(NBestTask):
    """Recurrent sequences, integer or float, symbolic or numeric output (module docstring)."""

    name = "recurrence"
    capabilities = frozenset({"predict_file"})
    group_names = ("degree", "ops", "length")
    RAW_ARRAYS = ("terms", "n_input", "tree", "degree", "n_ops")
    PARAMS = {
        "mode": Param("int", "int (integer sequences) or float", str, gen.MODES),
        "family": Param(
            "random", "random (generated recurrences), classic (the shipped classic "
            "sequences with a recurrence, cycled; int mode) or probes (out-of-vocabulary "
            "float sequences: Bessel J0, J1, (pi^2/6)^n; float mode)", str, FAMILIES,
        ),
        "output": Param(
            "symbolic", "symbolic (the recurrence) or numeric (the next terms)", str,
            ("symbolic", "numeric"), data=False,
        ),
        "min_degree": Param(1, "fewest initial terms d", int, check=_in(1, gen.MAX_DEGREE)),
        "max_degree": Param(6, "most initial terms d (u_k, k <= d)", int,
                            check=_in(1, gen.MAX_DEGREE)),
        "min_ops": Param(1, "fewest operators of a recurrence", int, check=_in(1, 30)),
        "max_ops": Param(10, "most operators of a recurrence", int, check=_in(1, 30)),
        "min_len": Param(5, "fewest given terms (at least d)", int, check=_in(1, 200)),
        "max_len": Param(30, "most given terms", int, check=_in(1, 200)),
        "n_predict": Param(10, "target terms after the given ones", int, check=_in(1, 50)),
        "max_tokens": Param(
            1024, "reject examples with more tokens in input or output", int,
            check=_in(16, 8192),
        ),
        # data parameters: max_tokens rejects examples by their length in these tokens
        "int_base": Param(10000, "base of the digits of input integers", int,
                          (10, 100, 1000, 10000)),
        "float_encoding": Param("P10000", "number encoding of float terms", str,
                                FLOAT_ENCODINGS),
    }  # fmt: skip

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str = "") -> dict[str, Any]:
        out = super().validate_params(params, where)
        prefix = f"{where}." if where else ""
        for lo, hi in (
            ("min_degree", "max_degree"),
            ("min_ops", "max_ops"),
            ("min_len", "max_len"),
        ):
            if out[lo] > out[hi]:
                raise ConfigError(f"{prefix}{lo}: must be <= {hi}={out[hi]}")
        if out["family"] == "classic" and out["mode"] != "int":
            raise ConfigError(f"{prefix}family: classic sequences are integer sequences (mode int)")
        if out["family"] == "probes" and out["mode"] != "float":
            raise ConfigError(f"{prefix}family: the probes are float sequences (mode float)")
        if out["max_len"] < out["max_degree"]:
            raise ConfigError(f"{prefix}max_len: must be >= max_degree={out['max_degree']}")
        return out

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        self.mode = p["mode"]
        self.config = gen.GenConfig(
            mode=p["mode"],
            min_degree=p["min_degree"],
            max_degree=p["max_degree"],
            min_ops=p["min_ops"],
            max_ops=p["max_ops"],
            min_len=p["min_len"],
            max_len=p["max_len"],
            n_predict=p["n_predict"],
        )
        self.preset = gen.preset(p["mode"], p["max_ops"])
        self.encoding = get_encoding(p["float_encoding"]) if self.mode == "float" else None
        # numbers of the terms; the recurrence's integers (-10..10 when generated) in base 10
        self.codec = PrefixCodec(int_base=p["int_base"], float_encoding=None, max_int_digits=None)
        self.tgt_codec = PrefixCodec(int_base=10, float_encoding=None, max_int_digits=None)
        self.stats: dict[str, Any] = {"attempts": 0, "accepted": 0, "rejected": Counter()}

    # ---- data ---------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        """``n`` examples; example i's attempt a draws from ``default_rng([seed_i, a])``."""
        seed = int(rng.integers(2**63 - 1))
        if self.params["family"] != "random":
            return self.rows_to_raw([self.known_one(i, example_seed(seed, i)) for i in range(n)])
        return self.rows_to_raw([self.generate_one(example_seed(seed, i)) for i in range(n)])

    def known_one(self, i: int, seed: int) -> gen.Example:
        """Example i of the classic set or the probes: sequence i (cycled) with L ~
        U{max(min_len, d)..max_len} given terms drawn from ``seed``; the tree is its
        definition (classic) or the reference approximation (probes)."""
        if self.params["family"] == "classic":
            known = [s for s in classic_sequences() if s.recurrence is not None]
        else:
            known = list(PROBES)
        seq = known[i % len(known)]
        d = len(seq.initial)
        rng = np.random.default_rng(seed)
        lo = max(self.params["min_len"], d)
        n_input = int(rng.integers(lo, self.params["max_len"] + 1))
        while True:  # fewer given terms while the example is longer than max_tokens
            terms = tuple(seq.terms(n_input + self.params["n_predict"]))
            ex = gen.Example(seq.recurrence, terms, n_input, d, n_operators(seq.recurrence))
            if not self._too_long(ex):
                return ex
            if n_input == lo:
                raise DataError(
                    f"recurrence: {seq.name} with {lo} given terms is longer than "
                    f"max_tokens={self.params['max_tokens']}"
                )
            n_input -= 1

    def generate_one(self, seed: int) -> gen.Example:
        for a in range(MAX_ATTEMPTS):
            self.stats["attempts"] += 1
            result = gen.attempt(np.random.default_rng([seed, a]), self.config, self.preset)
            if isinstance(result, gen.Example):
                if self._too_long(result):
                    result = "too_long"
                else:
                    self.stats["accepted"] += 1
                    return result
            self.stats["rejected"][result] += 1
        raise DataError(
            f"recurrence: no example accepted in {MAX_ATTEMPTS} attempts (seed {seed}); "
            f"rejections: {dict(self.stats['rejected'])}"
        )

    def _too_long(self, ex: gen.Example) -> bool:
        limit = self.params["max_tokens"]
        src = self.n_number_tokens(ex.terms[: ex.n_input])
        tgt = max(self.tgt_codec.n_tokens(ex.tree), self.n_number_tokens(ex.terms[ex.n_input :]))
        return src > limit or tgt > limit

    def rows_to_raw(self, rows: Sequence[gen.Example]) -> RawBatch:
        return {
            "terms": np.array([" ".join(gen.format_term(t, self.mode) for t in r.terms)
                               for r in rows], dtype=str),
            "n_input": np.array([r.n_input for r in rows], dtype=np.int32),
            "tree": np.array([" ".join(r.tree) for r in rows], dtype=str),
            "degree": np.array([r.degree for r in rows], dtype=np.int32),
            "n_ops": np.array([r.n_ops for r in rows], dtype=np.int32),
        }  # fmt: skip

    def length_bound(self) -> tuple[int, int]:
        """Generation rejects longer examples (model positions with BOS/EOS)."""
        return self.params["max_tokens"] + 2, self.params["max_tokens"] + 2

    # ---- tokens -------------------------------------------------------------------------
    def numbers_tokens(self, values: Sequence) -> list[str]:
        """The tokens of several terms, one block after the other."""
        if self.mode == "int":
            return [tok for v in values for tok in self.codec.encode_int(int(v))]
        return self.encoding.encode(np.array(values, dtype=np.float64)) if len(values) else []

    def n_number_tokens(self, values: Sequence) -> int:
        """``len(self.numbers_tokens(values))`` without encoding floats (fixed width)."""
        if self.mode == "float":
            return len(values) * self.encoding.tokens_per_number
        return sum(len(self.codec.encode_int(int(v))) for v in values)

    def _number_vocab(self) -> list[str]:
        if self.mode == "int":
            return [INT_POS, INT_NEG, *map(str, range(self.params["int_base"]))]
        return self.encoding.vocabulary()

    @cached_property
    def _src_vocab(self) -> Vocab:
        return Vocab(self._number_vocab())

    @cached_property
    def _tgt_vocab(self) -> Vocab:
        if self.params["output"] == "numeric":
            return Vocab(self._number_vocab())
        leaves = ["n", *(f"u_{k}" for k in range(1, self.params["max_degree"] + 1))]
        if self.mode == "float":
            leaves += gen.FLOAT_CONSTANTS
        ops = [*self.preset.binary, *self.preset.unary]
        return Vocab(self.tgt_codec.vocabulary(ops, leaves))

    def src_vocab(self) -> Vocab:
        return self._src_vocab

    def tgt_vocab(self) -> Vocab:
        return self._tgt_vocab

    def terms(self, raw: RawBatch, i: int) -> list:
        return gen.parse_terms(str(raw["terms"][i]), self.mode)

    def src_tokens(self, raw: RawBatch) -> list[list[str]]:
        out = []
        for i in range(len(raw["terms"])):
            out.append(self.numbers_tokens(self.terms(raw, i)[: int(raw["n_input"][i])]))
        return out

    def tgt_tokens(self, raw: RawBatch) -> list[list[str]]:
        if self.params["output"] == "symbolic":
            return [self.tgt_codec.encode(tuple(str(t).split())) for t in raw["tree"]]
        out = []
        for i in range(len(raw["terms"])):
            out.append(self.numbers_tokens(self.terms(raw, i)[int(raw["n_input"][i]) :]))
        return out

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        return self._src_vocab.padded_ids(self.src_tokens(raw))

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        return self._tgt_vocab.padded_ids(self.tgt_tokens(raw))

    def decode_terms(self, tokens: Sequence[str], count: int) -> list:
        """Exactly ``count`` numbers from number tokens; :class:`DecodeError` otherwise."""
        tokens = list(tokens)
        if self.mode == "float":
            return self.encoding.decode(tokens, count).tolist()
        values: list[int] = []
        base, i = self.params["int_base"], 0
        while i < len(tokens):
            if tokens[i] not in (INT_POS, INT_NEG):
                raise DecodeError(f"expected a sign token at position {i}, got {tokens[i]!r}")
            j, value = i + 1, 0
            while j < len(tokens) and tokens[j].isdigit() and int(tokens[j]) < base:
                value, j = value * base + int(tokens[j]), j + 1
            if j == i + 1:
                raise DecodeError(f"sign token without digits at position {i}")
            values.append(-value if tokens[i] == INT_NEG else value)
            i = j
        if len(values) != count:
            raise DecodeError(f"expected {count} numbers, got {len(values)}")
        return values

    def shown_targets(self, targets: Sequence) -> list:
        """The targets as the answer tokens write them (floats rounded by the encoding)."""
        if self.mode == "int":
            return list(targets)
        return self.encoding.round(np.array(targets, dtype=np.float64)).tolist()

    # ---- scoring ------------------------------------------------------------------------
    def metrics(self) -> tuple[Metric, ...]:
        return declared_metrics(self.mode, self.params["n_predict"])

    def main_metric(self) -> str:
        return "acc"

    def score(self, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]):
        return score_nbest(self, raw, hypotheses)

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        lengths = np.asarray(raw["n_input"])
        return {
            "degree": np.asarray(raw["degree"]).astype(str),
            "ops": np.asarray(raw["n_ops"]).astype(str),
            "length": _LENGTH_LABELS[np.searchsorted(_LENGTH_EDGES, lengths, side="right") - 1],
        }

    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        terms, n_input = self.terms(raw, i), int(raw["n_input"][i])
        tree = tuple(str(raw["tree"][i]).split())
        answer = {
            "tokens": self.tgt_tokens({k: v[i : i + 1] for k, v in raw.items()})[0],
            "infix": infix(tree),
            "next": terms[n_input:],
        }
        if self.params["output"] == "numeric":
            answer["recurrence"] = self.tgt_codec.encode(tree)
        return {"problem": {"terms": terms[:n_input]}, "answer": answer}

    # ---- capabilities -------------------------------------------------------------------
    def predict_file(self, model: Any, path: str, beam_size: int = 1) -> str:
        """A trained model's recurrence (or next terms) for terms written comma- or
        space-separated, in a file or given directly (``1,1,2,3,5,8``)."""
        from synthmath.tasks.recurrence.commands import predict_terms

        return predict_terms(model, self, path, beam_size=beam_size)
