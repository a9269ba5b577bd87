"""The task interface every problem family implements.

A task owns four things: a seeded, vectorised generator of raw problems with their answers,
the token vocabularies of its inputs and outputs, the (vectorised) encoding of raw problems
into token ids, and the scoring of predicted token sequences (the n-best list of each example)
against the raw answer, with the declaration of the metrics that scoring returns.

Raw batches are plain ``dict[str, np.ndarray]`` whose arrays all share the leading dimension
(the number of examples); they are what dataset shards store (``np.savez``), so encodings
stay an ablation axis applied at load time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from synthmath.core.errors import ConfigError, NotSupported
from synthmath.core.metrics import Metric, by_summary_name
from synthmath.core.vocab import Vocab

RawBatch = dict[str, np.ndarray]

#: what :meth:`Task.encode_src` returns: token sequences, or numeric points (one row of
#: ``tokens_per_point()`` tokens per point) as an ordered sequence or as an unordered set
INPUT_KINDS = ("tokens", "points", "point_set")

#: optional capabilities a task may declare in :attr:`Task.capabilities`
CAPABILITIES = (
    "decode_answer",
    "digit_tokens",
    "solve_file",
    "predict_file",
    "known_sets",
    "generate_shard",
)


@dataclass(frozen=True)
class Param:
    """One task parameter: its default, type, allowed values and whether it shapes the data.

    ``data=True`` marks generator parameters: two runs whose generator parameters agree share
    one generated dataset, whatever their encodings or models.
    """

    default: Any
    doc: str
    type: type | tuple[type, ...] = object
    choices: Sequence[Any] | None = None
    data: bool = True
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)


def nbest_shape(hypotheses: Sequence[Sequence[Sequence[str]]]) -> tuple[int, int]:
    """``(n, k)`` of n-best lists (k = 1 without examples); ValueError unless every example
    has the same k >= 1 hypotheses (for overrides of :meth:`Task.score`)."""
    n = len(hypotheses)
    k = len(hypotheses[0]) if n else 1
    if any(len(h) != k for h in hypotheses):
        raise ValueError("score: every example needs the same number of hypotheses")
    if k < 1:
        raise ValueError("score: every example needs at least one hypothesis")
    return n, k


#: :meth:`Task.answer_limit` of answers bounded only by the model's positions
ANY_LENGTH = 1 << 30


class Task(ABC):
    """Base class of a task family; families are listed in :mod:`synthmath.tasks.registry`.

    Optional capabilities are declared in :attr:`capabilities` (names from
    :data:`CAPABILITIES`); the matching methods raise :class:`NotSupported` otherwise, so a
    command can tell a user which tasks offer what
    (:func:`synthmath.tasks.registry.task_names` with a capability).
    """

    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, Param]]
    #: "encoder_decoder" (sequence to sequence) or "encoder_only" (aligned outputs).
    model_kind: ClassVar[str] = "encoder_decoder"
    #: one of :data:`INPUT_KINDS`; "points"/"point_set": see :meth:`encode_src`
    input_kind: ClassVar[str] = "tokens"
    #: names of the breakdowns :meth:`groups` returns (report axes, e.g. "size", "network")
    group_names: ClassVar[tuple[str, ...]] = ("size",)
    #: the optional methods this task implements (see :data:`CAPABILITIES`)
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: the names of the arrays :meth:`sample` returns, for tasks whose examples are slow to
    #: draw (None: found by drawing one example)
    RAW_ARRAYS: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, **params: Any):
        self.params = self.validate_params(params)

    # ---- parameters -------------------------------------------------------------------
    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str = "") -> dict[str, Any]:
        """Fill defaults and check every key, type and value; errors name key and allowed values."""
        prefix = f"{where}." if where else ""
        unknown = sorted(set(params) - set(cls.PARAMS))
        if unknown:
            raise ConfigError(
                f"{prefix}{unknown[0]}: unknown parameter of task {cls.name!r}; "
                f"allowed: {', '.join(sorted(cls.PARAMS))}"
            )
        out: dict[str, Any] = {}
        for key, spec in cls.PARAMS.items():
            value = params.get(key, spec.default)
            if spec.type is not object and value is not None:
                ok_types = spec.type if isinstance(spec.type, tuple) else (spec.type,)
                if float in ok_types and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if not isinstance(value, ok_types) or (
                    isinstance(value, bool) and bool not in ok_types
                ):
                    names = "/".join(t.__name__ for t in ok_types)
                    raise ConfigError(
                        f"{prefix}{key}: expected {names}, got {type(value).__name__} {value!r}"
                    )
            if spec.choices is not None and value not in spec.choices:
                raise ConfigError(
                    f"{prefix}{key}: unknown value {value!r}; allowed: "
                    f"{', '.join(map(str, spec.choices))}"
                )
            if spec.check is not None:
                problem = spec.check(value)
                if problem:
                    raise ConfigError(f"{prefix}{key}: {problem} (got {value!r})")
            out[key] = value
        return out

    def generator_params(self) -> dict[str, Any]:
        """The parameters that determine the raw data (the dataset identity)."""
        return {k: v for k, v in self.params.items() if self.PARAMS[k].data}

    # ---- data ---------------------------------------------------------------------------
    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        """Draw ``n`` raw problems with their answers (vectorised, deterministic given rng)."""

    @abstractmethod
    def src_vocab(self) -> Vocab: ...

    @abstractmethod
    def tgt_vocab(self) -> Vocab: ...

    @abstractmethod
    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of the inputs: ``(ids (n, L) int32 padded with PAD, lengths (n,))``.

        No BOS/EOS: the collator adds them. Points inputs (``input_kind`` "points" or
        "point_set"): ``ids (n, P, tokens_per_point())`` with the encoded coordinates of up
        to P points per example, a padding point all PAD, and ``lengths (n,)`` the number of
        points; no BOS/EOS is added, and a "point_set" model ignores the order of points.
        """

    def length_bound(self) -> tuple[int, int] | None:
        """(longest source, longest target) in model positions, BOS/EOS included, when the
        generator guarantees a bound; None (the default): config-time checks measure a
        sample instead (too slow for SymPy-bound generators)."""
        return None

    def input_grid(self) -> tuple[int, int, int] | None:
        """``(rows, cols, first)`` when the encoded input's tokens ``first .. first + rows*cols
        - 1`` (as :meth:`encode_src` writes them, before any BOS) are the cells of a rows x
        cols grid in row-major order in every example (one token per cell), for attention
        that knows 2-D offsets (``model.attention: gpsa``); None (the default): no grid."""
        return None

    def tokens_per_point(self) -> int:
        """Tokens of one encoded point (points inputs only): the point embedder's width."""
        raise NotSupported(f"task {self.name!r} reads token sequences, not points")

    @abstractmethod
    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of the answers, same layout as :meth:`encode_src`.

        Encoder-only tasks (``model_kind = "encoder_only"``): one target per *input* position,
        aligned with :meth:`encode_src` (same shape and lengths), PAD where there is no target;
        the answer positions must follow from the input alone (e.g. fixed-width answers).
        :class:`~synthmath.train.batches.EncodedSet` then adds no BOS/EOS and the loss covers the
        non-PAD targets only.
        """

    def answer_limit(self) -> int | None:
        """The most answer tokens a decoded hypothesis may have, for tasks whose right answers
        can be longer than the reference (an equivalent expression, formula or system); None
        (the default): fixed-format answers, so decoding stops a little past the test set's
        longest reference (:func:`synthmath.eval.predict.decode_steps`); :data:`ANY_LENGTH`:
        as many as the model's positions allow."""
        return None

    # ---- scoring --------------------------------------------------------------------------
    @abstractmethod
    def metrics(self) -> tuple[Metric, ...]:
        """Every per-example score :meth:`score_predictions` returns, declared (same order)."""

    @abstractmethod
    def score_predictions(
        self, raw: RawBatch, predictions: Sequence[Sequence[str]]
    ) -> dict[str, np.ndarray]:
        """Per-example scores of one predicted token sequence per example (no BOS/EOS).

        Encoder-only tasks get the tokens predicted at their answer positions (the non-PAD
        targets of :meth:`encode_tgt`), in position order, whatever they are (``"<pad>"``
        included). Returns one array of length n per declared metric (:meth:`metrics`):
        booleans for accuracies, floats otherwise. A prediction that does not decode, or has
        the wrong shape, is wrong (never an exception).
        """

    def score(
        self, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]
    ) -> dict[str, np.ndarray]:
        """Per-hypothesis scores of the n-best lists: arrays of shape ``(n, k)``.

        ``hypotheses[i]`` holds example i's k predictions, best first (k = 1 for greedy and
        encoder-only decoding); every example has the same k. The default scores each
        hypothesis with :meth:`score_predictions`; a task whose verification looks at the
        whole list may override this. Aggregations (first hypothesis, best of the top k)
        are :meth:`Metric.best_of`.
        """
        n, k = nbest_shape(hypotheses)
        index = np.repeat(np.arange(n), k)
        flat = [hyp for hyps in hypotheses for hyp in hyps]
        repeated = raw if k == 1 else {key: v[index] for key, v in raw.items()}
        scores = self.score_predictions(repeated, flat)
        return {name: np.asarray(v).reshape(n, k) for name, v in scores.items()}

    def main_metric(self) -> str:
        """The summary metric used for model selection and early stopping (a declared one)."""
        return "acc_tol5"

    def declared_metric(self, summary_name: str) -> Metric:
        """The declaration behind a summary metric name (e.g. ``median_rel_error``)."""
        declared = by_summary_name(self.metrics())
        if summary_name not in declared:
            raise ConfigError(
                f"metric: task {self.name!r} has no metric {summary_name!r}; "
                f"allowed: {', '.join(declared)}"
            )
        return declared[summary_name]

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        """Keys for accuracy breakdowns (e.g. matrix size), one label per example."""
        return {}

    @abstractmethod
    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        """Example ``i`` as ``{"problem": ..., "answer": ...}`` of plain Python values."""

    # ---- optional capabilities (declared in ``capabilities``) -----------------------------
    def _unsupported(self, capability: str) -> NotSupported:
        return NotSupported(
            f"task {self.name!r} does not declare the capability {capability!r} "
            "(synthmath.tasks.registry.task_names(capability) lists the tasks that do)"
        )

    def decode_answer(self, tokens: Sequence[str]) -> Any:
        """``decode_answer``: the answer a predicted token sequence writes (plain values or
        arrays); raises :class:`~synthmath.core.errors.DecodeError` when it does not decode."""
        raise self._unsupported("decode_answer")

    def digit_token_ids(self) -> tuple[list[int], list[int]]:
        """``digit_tokens``: ids of the digit tokens in the source and target vocabularies
        (Abacus positions count digits inside numbers)."""
        raise self._unsupported("digit_tokens")

    def solve_file(self, path: str, as_json: bool = False) -> str:
        """``solve_file``: the exact solution of the problem in a file, as text to print."""
        raise self._unsupported("solve_file")

    def predict_file(self, model: Any, path: str, beam_size: int = 1) -> str:
        """``predict_file``: a trained model's answer to the problem in a file, as text."""
        raise self._unsupported("predict_file")

    def known_sets(self) -> tuple[str, ...]:
        """``known_sets``: names of the fixed (e.g. real-world) problem sets shipped with it."""
        raise self._unsupported("known_sets")

    def generate_shard(
        self, n: int, rng: np.random.Generator, state_dir: Any = None
    ) -> tuple[RawBatch, dict]:
        """``generate_shard``: ``n`` examples for a dataset shard, made by a slow generator in
        a watched, resumable child process, with its statistics (attempts, rejections,
        timeouts). The same examples as :meth:`sample` with the same ``rng``; ``state_dir``
        keeps the progress of a killed job."""
        raise self._unsupported("generate_shard")

    # ---- helpers --------------------------------------------------------------------------
    def tokens(self, ids: np.ndarray, lengths: np.ndarray, vocab: Vocab) -> list[list[str]]:
        return [[vocab.tokens[t] for t in row[:n]] for row, n in zip(ids, lengths)]


class NBestTask(Task):
    """A task whose scoring looks at whole n-best lists (:meth:`score`, e.g. verification
    that deduplicates or reranks hypotheses): a single prediction is scored as a list of one.
    These tasks score an answer by what it computes (a derivative, a rolled-forward sequence,
    a truth table, R^2), so a right answer can be longer than the reference: decoding may use
    every position of the model (:meth:`answer_limit`)."""

    def answer_limit(self) -> int | None:
        return ANY_LENGTH

    @abstractmethod
    def score(
        self, raw: RawBatch, hypotheses: Sequence[Sequence[Sequence[str]]]
    ) -> dict[str, np.ndarray]: ...

    def score_predictions(
        self, raw: RawBatch, predictions: Sequence[Sequence[str]]
    ) -> dict[str, np.ndarray]:
        return {k: v[:, 0] for k, v in self.score(raw, [[p] for p in predictions]).items()}
