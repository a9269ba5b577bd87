"""The ``differential`` task: stability, convergence speed, controllability and feedback of
random differential systems (Charton, Hayat & Lample 2020; specs/differential.md).

Problems (``problem``): ``stability`` (is x_e = 0.01 a stable point of the linearisation:
YES/NO), ``convergence`` (its speed s = -max Re eig J, one number), ``control`` (is
x' = f(x, u) controllable at x_e = u_e = 0.9: Kalman rank, YES/NO), ``control_t`` (the
same for x' = f(x, u, t), 2-3 equations, the rank of the released D_i recursion at five
times: :mod:`~synthmath.tasks.differential.taylor`, SymPy reference in ``timevarying``) and
``feedback`` (a matrix K that makes A + B K stable). Example (stability, 2 equations)::

    src: V2 <EQ> sub x_1 mul INT+ 3 x_0 <EQ> sin x_0        tgt: NO

Inputs: ``V<n>`` (and ``V<p>``, the number of controls), then each equation after ``<EQ>``
in engine prefix tokens (variables ``x_k``, controls ``u_k``). Outputs: ``YES``/``NO``; a
number in ``encoding`` at ``precision`` significant digits (P10 at 3 digits, ``+ 1 2 3
E-2``, is the released CH2 layout); K as ``V<p> V<n>`` and its coefficients row by row.

Raw arrays: ``system`` (raw trees joined by `` ; ``), ``n_eq``, ``n_ctrl``, ``point``, ``a``
and ``b`` (Jacobians at the point, zero-padded), ``speed`` (-max Re eig A, exact),
``deficit`` (n - Kalman rank), ``k`` (K rounded to 3 digits, feedback), ``n_ops`` (the
largest operator count of the system's equations).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from synthmath.codecs.numbers import ENCODING_NAMES, get_encoding
from synthmath.core.errors import ConfigError, DecodeError
from synthmath.core.metrics import Metric
from synthmath.core.task import Param, RawBatch, Task
from synthmath.core.vocab import Vocab
from synthmath.expressions.operators import Tree, get_preset, infix
from synthmath.expressions.prefix import PrefixCodec
from synthmath.tasks.differential import generation as gen
from synthmath.tasks.differential import labels
from synthmath.tasks.differential.parsing import display_infix
from synthmath.tasks.differential.pde import PDE_TOKENS, labels_of, pde_json, pde_tokens
from synthmath.tasks.differential.scoring import declared_metrics, score_decoded
from synthmath.tasks.differential.timevarying import TIMES

#: largest system the vocabulary (and the parameters) allow; controls up to half of it
MAX_EQUATIONS = 10
MAX_CONTROLS = MAX_EQUATIONS // 2
EQ = "<EQ>"
YES, NO = "YES", "NO"
SEPARATOR = " ; "


def _size(value: Any) -> str | None:
    return (
        None if value is None or 2 <= value <= MAX_EQUATIONS else f"must be in 2..{MAX_EQUATIONS}"
    )


class DifferentialTask(Task):
    """Differential systems: stability, convergence, control, feedback (module docstring)."""

    name = "differential"
    group_names = ("size",)
    capabilities = frozenset({"decode_answer", "solve_file"})
    PARAMS = {
        "problem": Param("stability", "stability, convergence, control, control_t, feedback, pde",
                         str,
                         choices=gen.PROBLEMS),
        "n_equations": Param(None, "a fixed system size (overrides min/max_equations)", int,
                             check=_size),
        "min_equations": Param(None, "smallest system (default: 2; control, feedback: 3)", int,
                               check=_size),
        "max_equations": Param(None, "largest system (default 6; control_t: 3)", int,
                               check=_size),
        "point": Param(None, "every coordinate of x_e (and u_e) (default 0.01; control, "
                       "feedback: 0.9, the release; control_t: 0.5)", float),
        "balance": Param(None, "50% positives per size by rejection (default: true for "
                         "stability and control, else false; control_t: 83% natural)", bool),
        "shift": Param(False, "write f - f(x_e) (x_e an equilibrium; ablation, INFERRED)", bool),
        "gramian": Param("exact", "feedback: exact (Van Loan) or trapezoid40 (released)", str,
                         choices=labels.GRAMIANS),
        "normalize_b": Param(False, "feedback: divide B by ||A||_F too (the release does not)",
                             bool),
        "jacobian": Param("complex_step", "labels from complex-step derivatives (control_t: "
                          "Taylor series in t) or SymPy diff (slow reference)", str,
                          choices=("complex_step", "sympy")),
        "labeller": Param("multistart", "pde: multistart (seeded starts, rays) or released "
                          "(one TNC run from 0.5, failures discarded)", str,
                          choices=("multistart", "released")),
        "max_len": Param(512, "reject inputs with more tokens", int),
        "encoding": Param("P10", "number encoding of the outputs", str, choices=ENCODING_NAMES,
                          data=False),
        "precision": Param(3, "significant digits of numbers (P10: 2..4; others fixed)", int,
                           data=False),
    }  # fmt: skip

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str = "") -> dict[str, Any]:
        out = super().validate_params(params, where)
        prefix = f"{where}." if where else ""
        problem = out["problem"]
        lo, hi = _sizes(out)
        if lo > hi:
            raise ConfigError(f"{prefix}min_equations: must be <= max_equations={hi} (got {lo})")
        if problem in gen.WITH_CONTROLS and lo < 2:
            raise ConfigError(f"{prefix}min_equations: {problem} needs at least 2 equations")
        if out["shift"] and problem == "control_t":
            raise ConfigError(f"{prefix}shift: f - f(x_e) is not constant in t (control_t)")
        if not 8 <= out["max_len"] <= 4096:
            raise ConfigError(f"{prefix}max_len: must be in 8..4096 (got {out['max_len']})")
        if out["point"] is not None and not np.isfinite(out["point"]):
            raise ConfigError(f"{prefix}point: must be a finite number")
        if out["encoding"] == "P10" and not 2 <= out["precision"] <= 4:
            raise ConfigError(f"{prefix}precision: must be in 2..4 (got {out['precision']})")
        try:
            get_encoding(out["encoding"], out["precision"])
        except ConfigError as err:
            raise ConfigError(f"{prefix}{err}") from None
        return out

    def __init__(self, **params: Any):
        super().__init__(**params)
        p = self.params
        problem = p["problem"]
        balance = p["balance"] if p["balance"] is not None else problem in ("stability", "control")
        self.config = gen.GenConfig(
            problem=problem,
            sizes=_sizes(p),
            point=p["point"] if p["point"] is not None else gen.POINTS[problem],
            balance=balance,
            shift=p["shift"],
            gramian=p["gramian"],
            normalize_b=p["normalize_b"],
            use_sympy=p["jacobian"] == "sympy",
            max_len=p["max_len"],
            released_labeller=p["labeller"] == "released",
        )
        self.encoding = get_encoding(p["encoding"], p["precision"])
        self.codec = PrefixCodec(int_base=10, float_encoding=p["encoding"],
                                 float_precision=p["precision"])  # fmt: skip
        self.stats: Counter = Counter()

    @property
    def problem(self) -> str:
        return self.config.problem

    @property
    def controls(self) -> bool:
        return self.problem in gen.WITH_CONTROLS

    # ---- data ---------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        counts: dict[int, list[int]] = {}
        examples = [
            gen.draw_example(self.config, rng, counts, self._src_length, self.stats)
            for _ in range(n)
        ]
        return self.to_raw(examples)

    def to_raw(self, examples: Sequence[gen.Example]) -> RawBatch:
        """Raw arrays of examples (padded to the task's largest system)."""
        m = len(examples)
        size = self.config.sizes[1]
        width = max(1, size // 2)
        raw = {
            "system": np.array([SEPARATOR.join(" ".join(t) for t in e.equations)
                                for e in examples], dtype=str),
            "n_eq": np.array([e.a.shape[0] for e in examples], dtype=np.int8),
            "n_ctrl": np.array([e.b.shape[1] for e in examples], dtype=np.int8),
            "n_ops": np.array([max(e.n_ops) for e in examples], dtype=np.int16),
            "point": np.full(m, self.config.point),
            "a": np.zeros((m, size, size)),
            "b": np.zeros((m, size, width)),
            "speed": np.array([e.speed for e in examples], dtype=np.float64),
            "deficit": np.array([e.deficit for e in examples], dtype=np.int8),
            "k": np.zeros((m, width, size)),
        }  # fmt: skip
        if self.problem == "pde":
            raw["system"] = np.array([" ".join(pde_tokens(e.pde[0])) for e in examples], str)
            labels = [labels_of(e.pde[1]) for e in examples]
            released = [None if e.pde[2] is None else labels_of(e.pde[2]) for e in examples]
            raw["exists"] = np.array([x for x, _ in labels], dtype=bool)
            raw["vanishes"] = np.array([v for _, v in labels], dtype=bool)
            raw["released_agrees"] = np.array(
                [-1 if r is None else int(r == lab) for r, lab in zip(released, labels)], np.int8
            )
            raw["minimum"] = np.array([e.pde[1] for e in examples], dtype=np.float64)
        for i, e in enumerate(examples):
            k, p = e.a.shape[0], e.b.shape[1]
            raw["a"][i, :k, :k] = e.a
            raw["b"][i, :k, :p] = e.b
            if e.k is not None:
                raw["k"][i, :p, :k] = e.k
        return raw

    def length_bound(self) -> tuple[int, int]:
        hi, tpn = self.config.sizes[1], self.encoding.tokens_per_number
        out = {"feedback": 2 + (hi // 2) * hi * tpn, "convergence": tpn, "pde": 2}.get(
            self.problem, 1
        )
        return self.params["max_len"] + 2, out + 2

    # ---- tokens -------------------------------------------------------------------------
    def equations(self, raw: RawBatch, i: int) -> list[Tree]:
        return [tuple(eq.split()) for eq in str(raw["system"][i]).split(SEPARATOR)]

    def _src_tokens_of(self, equations: Sequence[Tree], n: int, p: int) -> list[str]:
        out = [f"V{n}"] + ([f"V{p}"] if self.controls else [])
        for tree in equations:
            out.append(EQ)
            out.extend(self.codec.encode(tree))
        return out

    def _src_length(self, ex: gen.Example) -> int:
        if ex.pde is not None:
            return 1 + len(pde_tokens(ex.pde[0]))
        return len(self._src_tokens_of(ex.equations, len(ex.equations), ex.b.shape[1]))

    def src_tokens(self, raw: RawBatch) -> list[list[str]]:
        if self.problem == "pde":
            return [[f"V{n}", *s.split()] for n, s in zip(raw["n_eq"], raw["system"])]
        return [
            self._src_tokens_of(self.equations(raw, i), int(raw["n_eq"][i]), int(raw["n_ctrl"][i]))
            for i in range(len(raw["system"]))
        ]

    def tgt_tokens(self, raw: RawBatch, i: int) -> list[str]:
        if self.problem == "pde":
            return [YES if raw["exists"][i] else NO, YES if raw["vanishes"][i] else NO]
        if self.problem == "stability":
            return [YES if raw["speed"][i] > 0 else NO]
        if self.problem in ("control", "control_t"):
            return [YES if raw["deficit"][i] == 0 else NO]
        if self.problem == "convergence":
            return self.encoding.encode([float(raw["speed"][i])])
        n, p = int(raw["n_eq"][i]), int(raw["n_ctrl"][i])
        return [f"V{p}", f"V{n}", *self.encoding.encode(raw["k"][i, :p, :n].ravel())]

    @cached_property
    def _src_vocab(self) -> Vocab:
        preset = get_preset("chh")
        ops = [*preset.binary, *preset.unary]
        leaves = [f"x_{k}" for k in range(MAX_EQUATIONS)] + [f"u_{k}" for k in range(MAX_CONTROLS)]
        leaves.append("t")
        ops += ["pow2", "pow4"]  # the PDE operators' d_i^2, d_i^4
        sizes = [f"V{k}" for k in range(1, MAX_EQUATIONS + 1)]
        return Vocab([*sizes, EQ, *self.codec.vocabulary(ops, leaves), *PDE_TOKENS])

    @cached_property
    def _tgt_vocab(self) -> Vocab:
        sizes = [f"V{k}" for k in range(1, MAX_EQUATIONS + 1)]
        return Vocab([YES, NO, *sizes, *self.encoding.vocabulary()])

    def src_vocab(self) -> Vocab:
        return self._src_vocab

    def tgt_vocab(self) -> Vocab:
        return self._tgt_vocab

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        return self._src_vocab.padded_ids(self.src_tokens(raw))

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        seqs = [self.tgt_tokens(raw, i) for i in range(len(raw["system"]))]
        return self._tgt_vocab.padded_ids(seqs)

    # ---- predictions --------------------------------------------------------------------
    def decode_answer(self, tokens: Sequence[str]) -> bool | float | np.ndarray:
        """YES/NO -> bool, a number -> float, a matrix block -> ``(p, n)`` array;
        :class:`DecodeError` otherwise."""
        tokens = list(tokens)
        if self.problem == "pde":
            if len(tokens) == 2 and all(t in (YES, NO) for t in tokens):
                return tokens[0] == YES, tokens[1] == YES
            raise DecodeError(f"expected two {YES}/{NO} words, got {' '.join(tokens)!r}")
        if self.problem in gen.QUALITATIVE:
            if tokens in ([YES], [NO]):
                return tokens == [YES]
            raise DecodeError(f"expected {YES} or {NO}, got {' '.join(tokens)!r}")
        tpn = self.encoding.tokens_per_number
        if self.problem == "convergence":
            if len(tokens) != tpn:
                raise DecodeError(f"expected one number of {tpn} tokens, got {len(tokens)}")
            return float(self.encoding.decode(tokens, 1)[0])
        if len(tokens) < 2:
            raise DecodeError("expected V<rows> V<cols> and the coefficients")
        rows, cols = (_dim(t) for t in tokens[:2])
        if len(tokens) != 2 + rows * cols * tpn:
            raise DecodeError(f"a {rows}x{cols} block needs {2 + rows * cols * tpn} tokens")
        return self.encoding.decode(tokens[2:], rows * cols).reshape(rows, cols)

    def metrics(self) -> tuple[Metric, ...]:
        return declared_metrics(self.problem)

    def main_metric(self) -> str:
        return "acc_tol10" if self.problem == "convergence" else "acc"

    def score_predictions(
        self, raw: RawBatch, predictions: Sequence[Sequence[str]]
    ) -> dict[str, np.ndarray]:
        decoded: list[Any] = []
        for tokens in predictions:
            try:
                decoded.append(self.decode_answer(tokens))
            except DecodeError:
                decoded.append(None)
        return score_decoded(self.problem, raw, decoded, self.config.normalize_b)

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        return {"size": np.asarray(raw["n_eq"]).astype(str)}

    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        if self.problem == "pde":
            return pde_json(raw, i)
        n, p = int(raw["n_eq"][i]), int(raw["n_ctrl"][i])
        point = float(raw["point"][i])
        problem: dict[str, Any] = {
            "system": [display_infix(infix(t)) for t in self.equations(raw, i)],
            "tokens": self._src_tokens_of(self.equations(raw, i), n, p),
            "point": [point] * n,
        }
        speed = float(raw["speed"][i])
        answer: dict[str, Any] = {}
        if self.problem in ("stability", "convergence"):
            answer = {"stable": speed > 0, "speed": speed}
        else:
            problem["controls"] = [f"u{k}" for k in range(p)]
            problem["control_point"] = [point] * p
            if self.problem == "control_t":
                problem["times"] = list(TIMES)  # rank checked at these values of t
            answer = {"controllable": int(raw["deficit"][i]) == 0,
                      "rank_deficit": int(raw["deficit"][i])}  # fmt: skip
            if self.problem == "feedback":
                answer["feedback"] = raw["k"][i, :p, :n].tolist()
        return {"problem": problem, "answer": answer}

    def solve_file(self, path: str, as_json: bool = False) -> str:
        """The labels of the system in a JSON file (``synthmath solve differential FILE``)."""
        from synthmath.tasks.differential.commands import solve_file

        return solve_file(path, as_json=as_json, config=self.config)


def _sizes(params: dict[str, Any]) -> tuple[int, int]:
    """(smallest, largest) system: n_equations, else min/max_equations, else the problem's."""
    if params["n_equations"] is not None:
        return params["n_equations"], params["n_equations"]
    lo, hi = gen.SIZES[params["problem"]]
    lo = params["min_equations"] if params["min_equations"] is not None else lo
    hi = params["max_equations"] if params["max_equations"] is not None else max(hi, lo)
    return lo, hi


def _dim(token: str) -> int:
    if token.startswith("V") and token[1:].isdigit() and 1 <= int(token[1:]) <= MAX_EQUATIONS:
        return int(token[1:])
    raise DecodeError(f"expected a dimension token V1..V{MAX_EQUATIONS}, got {token!r}")
