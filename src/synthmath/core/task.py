"""The task interface every problem family implements.

A task owns four things: a seeded, vectorised generator of raw problems with their answers,
the token vocabularies of its inputs and outputs, the (vectorised) encoding of raw problems
into token ids, and the scoring of a predicted token sequence against the raw answer.

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

from synthmath.core.errors import ConfigError
from synthmath.core.vocab import Vocab

RawBatch = dict[str, np.ndarray]


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


class Task(ABC):
    """Base class of a task family; families are listed in :mod:`synthmath.tasks.registry`."""

    name: ClassVar[str]
    PARAMS: ClassVar[dict[str, Param]]
    #: "encoder_decoder" (sequence to sequence) or "encoder_only" (aligned outputs).
    model_kind: ClassVar[str] = "encoder_decoder"
    #: names of the breakdowns :meth:`groups` returns (report axes, e.g. "size", "network")
    group_names: ClassVar[tuple[str, ...]] = ("size",)

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

        No BOS/EOS: the collator adds them.
        """

    @abstractmethod
    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of the answers, same layout as :meth:`encode_src`.

        Encoder-only tasks (``model_kind = "encoder_only"``): one target per *input* position,
        aligned with :meth:`encode_src` (same shape and lengths), PAD where there is no target;
        the answer positions must follow from the input alone (e.g. fixed-width answers).
        :class:`~synthmath.train.batches.EncodedSet` then adds no BOS/EOS and the loss covers the
        non-PAD targets only.
        """

    @abstractmethod
    def score(self, raw: RawBatch, predictions: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        """Per-example metrics of predicted token sequences (no BOS/EOS, no padding).

        Encoder-only tasks get the tokens predicted at their answer positions (the non-PAD
        targets of :meth:`encode_tgt`), in position order, whatever they are (``"<pad>"``
        included).

        Returns arrays of length n: booleans for accuracies (e.g. ``acc_tol5``), floats for
        errors (summarised by their median), floats named ``*_acc`` for per-example fractions
        (e.g. ``digit_acc``, summarised by their mean). A prediction that does not decode, or
        has the wrong shape, is wrong (never an exception).
        """

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        """Keys for accuracy breakdowns (e.g. matrix size), one label per example."""
        return {}

    @abstractmethod
    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        """Example ``i`` as ``{"problem": ..., "answer": ...}`` of plain Python values."""

    def main_metric(self) -> str:
        """The metric used for model selection and early stopping."""
        return "acc_tol5"

    # ---- helpers --------------------------------------------------------------------------
    def tokens(self, ids: np.ndarray, lengths: np.ndarray, vocab: Vocab) -> list[list[str]]:
        return [[vocab.tokens[t] for t in row[:n]] for row, n in zip(ids, lengths)]
