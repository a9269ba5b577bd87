"""The ``metabolic`` task: does a metabolic network have an equilibrium, and which one?

After Charton, Hayat, McQuade, Merrill and Piccoli (arXiv 2112.03588). Nodes are
metabolites, edges carry a flux ``rate * x_src`` (``linear``, the LIFE reading) or
``vmax * x_src / (km + x_src)`` (``michaelis_menten``); input nodes receive a constant
inflow, output nodes lose mass through a sink edge. Answers (exact, from
:mod:`synthmath.tasks.metabolic.solvers`): whether the trajectory from x = 0 converges, the
equilibrium concentrations, or the flux of every edge at equilibrium.

Example: the reverse cholesterol transport network (``family=known:cholesterol``, linear,
P1000, ``shuffle_edges=false`` so the edges keep their file order)::

    src: V6  x1 x4 + 920 E-3  x2 x4 + 740 E-3  x3 x4 + 292 E-3  x4 x5 + 816 E-3
             x4 x6 + 487 E-3  x5 x6 + 587 E-3
             IN x1 + 702 E-3  IN x2 + 648 E-3  IN x3 + 752 E-3  OUT x6 + 826 E-3
    tgt: YES                                                         (answer=existence)
         + 763 E-3 + 875 E-3 + 257 E-2 + 161 E-2 + 224 E-2 + 255 E-2  (answer=concentrations)

With Michaelis-Menten kinetics every edge and sink carries two numbers, ``vmax km``. For
``answer=flows`` the target is the flux of each edge in the input's edge order, then the flux
of each sink edge. Layout and scoring details: :mod:`synthmath.tasks.metabolic.sequences`.

Data choices (all fixed by the parameters, so a dataset is a pure function of its seed):

- rates of generated networks are rounded to 3 significant digits *before* solving, so the
  encoded problem is exactly the solved one in every number encoding;
- ``shuffle_edges`` permutes the order of the edges, inflows and sinks of each network at
  sampling time (stored order = encoded order; the generators list edges in a structured
  order, which a model could otherwise exploit);
- ``answer=existence`` with ``balance`` keeps exactly half YES and half NO (YES gets the odd
  one); ``concentrations`` and ``flows`` keep only networks with an equilibrium;
- networks the solver cannot decide (reported ``undecided``, very rare) are dropped;
- ``family=known`` (or ``known:<name>``) cycles through the shipped biological networks of
  the chosen kinetics (``known/``), in name order. Their answers come from the exact file
  rates (cholesterol's 4-digit rates reach the model rounded to 3 digits, a change of at most
  0.05%); they all have an equilibrium, so a ``known`` existence test set is all YES. Node
  count, density, input/output and rate parameters do not apply to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, cached_property
from typing import Any

import numpy as np

from synthmath.codecs.numbers import ENCODING_NAMES, NumberEncoding, get_encoding, round_sig3
from synthmath.core.errors import ConfigError
from synthmath.core.metrics import Metric
from synthmath.core.task import Param, RawBatch, Task
from synthmath.core.vocab import Vocab
from synthmath.tasks.metabolic import families, graphs, sequences
from synthmath.tasks.metabolic.batches import concat, mark_padding, shuffle_lists, take
from synthmath.tasks.metabolic.networks import (
    FLUX_FIELDS,
    KINETICS,
    known_names,
    known_networks,
    network_to_dict,
)
from synthmath.tasks.metabolic.sampler import SAMPLERS, answers, sample_classes

ANSWERS = ("existence", "concentrations", "flows")
RATE_LAWS = ("uniform", "log_uniform")
KNOWN = "known"
_MAX_CHUNK = 8192  # networks per generator call while rejection sampling (bounds memory)
_DRAW_BUDGET = (200, 10_000)  # give up after 200 * n + 10,000 draws: the class is too rare


def _at_least(low: float):
    return lambda v: None if v is None or v >= low else f"must be >= {low}"


def _positive(value: Any) -> str | None:
    return None if value is None or value > 0 else "must be > 0"


def _check_family(value: str) -> str | None:
    if value == KNOWN or value.startswith(f"{KNOWN}:"):
        return None if value != f"{KNOWN}:" else "known:<name> needs a network name"
    bad = [s for s in (p.strip() for p in value.split(",")) if s not in families.FAMILIES]
    if bad:
        allowed = ", ".join([KNOWN, f"{KNOWN}:<name>", *families.FAMILIES])
        return f"unknown family {bad[0]!r}; allowed (a comma list mixes families): {allowed}"
    return None


def _param(default, doc, typ, **kw) -> Param:
    return Param(default, doc, typ, **kw)


class MetabolicTask(Task):
    """Equilibria of metabolic networks (see the module docstring)."""

    name = "metabolic"
    group_names = ("size", "network", "family", "answer")
    capabilities = frozenset({"decode_answer", "solve_file", "predict_file", "known_sets"})
    PARAMS = {
        "kinetics": _param("linear", "flux law of edges and sinks", str, choices=KINETICS),
        "answer": _param("existence", "what the model predicts", str, choices=ANSWERS),
        "family": _param(
            "erdos_renyi",
            "random graph family (a comma list = per-example mixture), or 'known' / "
            "'known:<name>' for the shipped biological networks",
            str,
            check=_check_family,
        ),
        "nodes": _param(
            None, "shorthand: fixes nodes_min = nodes_max = nodes", int, check=_at_least(2)
        ),
        "nodes_min": _param(5, "fewest nodes of a random network", int, check=_at_least(2)),
        "nodes_max": _param(15, "most nodes of a random network", int, check=_at_least(2)),
        "density": _param(
            graphs.DEFAULT_DENSITY,
            "edge density of the family (about the mean out-degree; see graphs.py)",
            float,
            check=_positive,
        ),
        "inputs_min": _param(1, "fewest input (inflow) nodes", int, check=_at_least(1)),
        "inputs_max": _param(3, "most input (inflow) nodes", int, check=_at_least(1)),
        "outputs_min": _param(1, "fewest output (sink) nodes", int, check=_at_least(0)),
        "outputs_max": _param(3, "most output (sink) nodes", int, check=_at_least(0)),
        "rate_law": _param("uniform", "law of rates, inflows and vmax", str, choices=RATE_LAWS),
        "rate_min": _param(
            0.05,
            "smallest rate / inflow / vmax (the known networks use 0.085..0.99)",
            float,
            check=_positive,
        ),
        "rate_max": _param(1.0, "largest rate / inflow / vmax", float, check=_positive),
        "km_min": _param(0.1, "smallest Michaelis constant km", float, check=_positive),
        "km_max": _param(1.0, "largest Michaelis constant km", float, check=_positive),
        "balance": _param(
            True,
            "existence: exactly half YES, half NO (concentrations/flows always keep only "
            "networks with an equilibrium)",
            bool,
        ),
        "shuffle_edges": _param(
            True, "shuffle the stored order of edges, inflows and sinks of each network", bool
        ),
        "sampler": _param(
            "rejection",
            "how class-targeted sets (balanced existence, concentrations, flows) are drawn: "
            "'rejection' solves whole networks and keeps the first of each class; 'fast' "
            "settles most draws by structure and a cheap bound first (same distribution per "
            "class, another random stream, see sampler.py)",
            str,
            choices=SAMPLERS,
        ),
        "encoding": _param(
            "P1000", "number encoding of rates and answers", str, choices=ENCODING_NAMES, data=False
        ),
        "max_nodes": _param(
            40,
            "node tokens x1..x<max_nodes> and V1..V<max_nodes> in the vocabulary (at least the "
            "largest network), so that models can be tested on larger graphs",
            int,
            check=_at_least(2),
            data=False,
        ),
    }

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str = "") -> dict[str, Any]:
        """Per-key checks, then ranges and known-network names; ``nodes`` fills the range."""
        out = super().validate_params(params, where)
        prefix = f"{where}." if where else ""
        if out["nodes"] is not None:
            out["nodes_min"] = out["nodes_max"] = out["nodes"]
            out["nodes"] = None
        for low, high in (
            ("nodes_min", "nodes_max"),
            ("inputs_min", "inputs_max"),
            ("outputs_min", "outputs_max"),
            ("rate_min", "rate_max"),
            ("km_min", "km_max"),
        ):
            if out[low] > out[high]:
                raise ConfigError(f"{prefix}{low}: must be <= {high}={out[high]} (got {out[low]})")
        family = out["family"]
        if family.startswith(f"{KNOWN}:"):
            names = known_names(out["kinetics"])
            wanted = family.split(":", 1)[1]
            if wanted not in names:
                raise ConfigError(
                    f"{prefix}family: unknown known network {wanted!r} for kinetics "
                    f"{out['kinetics']!r}; allowed: {', '.join(names)}"
                )
        if family.split(":")[0] == KNOWN:
            largest = max(int(net.raw["n_nodes"][0]) for net in known_networks(out["kinetics"]))
        else:
            largest = out["nodes_max"]
        if largest > out["max_nodes"]:
            raise ConfigError(
                f"{prefix}max_nodes: networks have up to {largest} nodes, more than "
                f"max_nodes={out['max_nodes']}"
            )
        return out

    # ---- resolved parameters ----------------------------------------------------------------
    @property
    def is_known(self) -> bool:
        return self.params["family"].split(":")[0] == KNOWN

    @property
    def fields(self) -> tuple[str, ...]:
        return FLUX_FIELDS[self.params["kinetics"]]

    @cached_property
    def families(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.params["family"].split(","))

    @cached_property
    def encoding(self) -> NumberEncoding:
        return get_encoding(self.params["encoding"])

    def generator_params(self) -> dict[str, Any]:
        """Data parameters, without ``sampler`` when it is the default (same dataset ids and
        shard metadata as before the option existed)."""
        out = super().generator_params()
        if out["sampler"] == self.PARAMS["sampler"].default:
            out.pop("sampler")
        return out

    def main_metric(self) -> str:
        return "acc" if self.params["answer"] == "existence" else "acc_tol5"

    # ---- sampling -----------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> RawBatch:
        raw = self._sample_known(n, rng) if self.is_known else self._sample_random(n, rng)
        return mark_padding(raw)

    def _class_targets(self, n: int) -> dict[bool, int] | None:
        """How many YES / NO examples to keep; None: whatever the generator gives."""
        if self.params["answer"] != "existence":
            return {True: n, False: 0}
        if self.params["balance"]:
            return {True: n - n // 2, False: n // 2}
        return None

    def _sample_random(self, n: int, rng: np.random.Generator) -> RawBatch:
        want = self._class_targets(n)
        budget = _DRAW_BUDGET[0] * n + _DRAW_BUDGET[1]
        if want is not None and self.params["sampler"] == "fast":
            return sample_classes(
                self.params,
                want,
                rng,
                budget,
                lambda drawn, yes, decided, have: self._too_rare(drawn, yes, decided, want, have),
            )
        have = {True: 0, False: 0}
        parts: list[RawBatch] = []
        drawn = decided = yes = 0
        while True:
            total = have[True] + have[False]
            if want is None:
                missing = {True: 0, False: 0}
                if total >= n:
                    break
            else:
                missing = {c: want[c] - have[c] for c in (True, False)}
                if not missing[True] and not missing[False]:
                    break
            if drawn >= budget:
                raise ConfigError(self._too_rare(drawn, yes, decided, want, have))
            p_yes = min(max((yes + 1) / (decided + 2), 0.01), 0.99)
            if want is None:
                size = n - total
            else:
                size = max(missing[True] / p_yes, missing[False] / (1 - p_yes))
            size = int(min(max(1.15 * size + 16, 64), _MAX_CHUNK))
            raw = self._draw(size, rng)
            drawn += size
            decided += len(raw["exists"])
            yes += int(raw["exists"].sum())
            if want is None:
                index = np.arange(min(len(raw["exists"]), n - total))
            else:
                yes_index = np.flatnonzero(raw["exists"])[: missing[True]]
                no_index = np.flatnonzero(~raw["exists"])[: missing[False]]
                index = np.sort(np.concatenate([yes_index, no_index]))
            part = take(raw, index)
            have[True] += int(part["exists"].sum())
            have[False] += len(index) - int(part["exists"].sum())
            parts.append(part)
        return concat(parts)

    def _too_rare(self, drawn, yes, decided, want, have) -> str:
        p = self.params
        missing = "with an equilibrium" if want[True] > have[True] else "without an equilibrium"
        return (
            f"metabolic: gave up after drawing {drawn} networks: too few {missing} "
            f"({yes}/{decided} had one) for family={p['family']}, kinetics={p['kinetics']}, "
            f"nodes {p['nodes_min']}..{p['nodes_max']}, density={p['density']}, outputs "
            f"{p['outputs_min']}..{p['outputs_max']}; change these or set balance=false"
        )

    def _draw(self, size: int, rng: np.random.Generator) -> RawBatch:
        """``size`` random networks, rates rounded, lists shuffled, solved; undecided dropped."""
        p = self.params
        raw = graphs.sample_networks(
            size,
            rng,
            family=",".join(self.families),
            nodes_min=p["nodes_min"],
            nodes_max=p["nodes_max"],
            density=p["density"],
            inputs=(p["inputs_min"], p["inputs_max"]),
            outputs=(p["outputs_min"], p["outputs_max"]),
            kinetics=p["kinetics"],
            rate_law=p["rate_law"],
            rate_range=(p["rate_min"], p["rate_max"]),
            km_range=(p["km_min"], p["km_max"]),
        )
        for key in ("in_rate", *(f"{s}_{f}" for s in ("edge", "out") for f in self.fields)):
            raw[key] = round_sig3(raw[key])
        if p["shuffle_edges"]:
            shuffle_lists(raw, rng)
        raw.update(answers(raw, p["kinetics"]))
        undecided = raw.pop("undecided", None)
        return raw if undecided is None or not undecided.any() else take(raw, ~undecided)

    def _sample_known(self, n: int, rng: np.random.Generator) -> RawBatch:
        bank = _known_bank(self.params["kinetics"])
        names = known_names(self.params["kinetics"])
        family = self.params["family"]
        chosen = np.arange(len(names)) if family == KNOWN else [names.index(family[6:])]
        raw = take(bank, np.asarray(chosen)[np.arange(n) % len(chosen)])
        if self.params["shuffle_edges"]:
            shuffle_lists(raw, rng)
        return raw

    # ---- tokens -------------------------------------------------------------------------------
    @cached_property
    def _src_vocab(self) -> Vocab:
        return sequences.src_vocab(self.params["max_nodes"], self.encoding)

    @cached_property
    def _tgt_vocab(self) -> Vocab:
        return sequences.tgt_vocab(self.params["answer"], self.encoding)

    def src_vocab(self) -> Vocab:
        return self._src_vocab

    def tgt_vocab(self) -> Vocab:
        return self._tgt_vocab

    def encode_src(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        largest = int(raw["n_nodes"].max(initial=0))
        if largest > self.params["max_nodes"]:
            raise ConfigError(
                f"max_nodes: a network has {largest} nodes, more than max_nodes="
                f"{self.params['max_nodes']} (raise max_nodes)"
            )
        return sequences.encode_network(raw, self.fields, self.encoding, self._src_vocab)

    def encode_tgt(self, raw: RawBatch) -> tuple[np.ndarray, np.ndarray]:
        return sequences.encode_answer(raw, self.params["answer"], self.encoding, self._tgt_vocab)

    # ---- predictions ---------------------------------------------------------------------------
    def decode_answer(self, tokens: Sequence[str], count: int | None = None) -> dict[str, Any]:
        """``{"exists": bool}``, ``{"concentrations": array}`` or ``{"flows": array}`` (edge
        flows then sink flows); raises :class:`~synthmath.core.errors.DecodeError`."""
        answer = self.params["answer"]
        value = sequences.decode_answer(tokens, answer, self.encoding, count)
        return {"exists" if answer == "existence" else answer: value}

    def metrics(self) -> tuple[Metric, ...]:
        if self.params["answer"] == "existence":
            return (Metric.acc("acc", "YES/NO right"),)
        tols = sequences.TOLERANCES
        return (
            *(Metric.acc(f"acc_tol{t}", f"every component within {t}%") for t in tols),
            *(Metric.fraction(f"frac_tol{t}", f"fraction of components within {t}%") for t in tols),
            Metric.error("max_rel_error", "largest relative error of a component"),
        )

    def score_predictions(
        self, raw: RawBatch, predictions: Sequence[Sequence[str]]
    ) -> dict[str, np.ndarray]:
        """existence: ``acc``. Otherwise ``acc_tol{5,2,1}`` (every component within tau,
        relative error as in :func:`sequences.relative_errors`), ``frac_tol{5,2,1}`` (the
        fraction of components within tau) and ``max_rel_error``. Malformed = wrong."""
        return sequences.score_predictions(raw, self.params["answer"], self.encoding, predictions)

    def groups(self, raw: RawBatch) -> dict[str, np.ndarray]:
        out = {"size": raw["n_nodes"].astype(str)}
        if self.is_known:
            names = np.array(known_names(self.params["kinetics"]))
            out["network"] = names[raw["network"]]
        elif len(self.families) > 1:
            out["family"] = np.array(families.FAMILIES)[raw["family"].astype(np.int64)]
        if self.params["answer"] == "existence":
            out["answer"] = np.where(raw["exists"], "YES", "NO")
        return out

    # ---- optional capabilities ---------------------------------------------------------------
    def solve_file(self, path: str, as_json: bool = False) -> str:
        """The exact solution of the network file ``path`` (``synthmath solve``)."""
        from synthmath.tasks.metabolic.commands import solve_file

        return solve_file(path, as_json=as_json)

    def predict_file(self, model: Any, path: str, beam_size: int = 1) -> str:
        """A trained model's answer for the network file ``path`` beside the exact one."""
        from synthmath.tasks.metabolic.commands import predict_file

        return predict_file(model, self, path, beam_size=beam_size)

    def known_sets(self) -> tuple[str, ...]:
        """The shipped biological networks of this task's kinetics (``family=known:<name>``)."""
        return tuple(known_names(self.params["kinetics"]))

    def node_names(self, raw: RawBatch, i: int) -> list[str]:
        """Node names of example ``i``: the file's for known networks, else ``x1..xn``."""
        if self.is_known and "network" in raw:
            return known_networks(self.params["kinetics"])[int(raw["network"][i])].nodes
        return [f"x{k + 1}" for k in range(int(raw["n_nodes"][i]))]

    def to_json(self, raw: RawBatch, i: int) -> dict[str, Any]:
        names = self.node_names(raw, i)
        meta = {}
        if self.is_known and "network" in raw:
            meta["name"] = known_names(self.params["kinetics"])[int(raw["network"][i])]
        problem = network_to_dict(raw, i, self.params["kinetics"], names, **meta)
        return {"problem": problem, "answer": answer_json(raw, i, self.params["answer"], names)}


def answer_json(raw: RawBatch, i: int, answer: str, names: list[str]) -> dict[str, Any]:
    """Example ``i``'s answer as plain values (null where there is no equilibrium)."""
    exists = bool(raw["exists"][i])
    out: dict[str, Any] = {"exists": exists}
    if answer == "concentrations":
        conc = raw["conc"][i, : len(names)]
        out["concentrations"] = dict(zip(names, conc.tolist())) if exists else None
    elif answer == "flows":
        flow = raw["flow"][i, : int(raw["n_edges"][i])].tolist()
        sink = raw["out_flow"][i, : int(raw["n_out"][i])].tolist()
        out["flows"], out["output_flows"] = (flow, sink) if exists else (None, None)
    return out


# ---- raw batch helpers -------------------------------------------------------------------------
@cache
def _known_bank(kinetics: str) -> RawBatch:
    """All shipped networks of one kinetics in one solved raw batch, with a ``network`` index."""
    networks = known_networks(kinetics)
    raw = concat([net.raw for net in networks])
    raw["network"] = np.arange(len(networks), dtype=np.int16)
    raw.update(answers(raw, kinetics))
    undecided = raw.pop("undecided", np.zeros(len(networks), dtype=bool))
    bad = [net.path for net, ok in zip(networks, raw["exists"] & ~undecided) if not ok]
    if bad:
        raise ValueError(f"shipped network without an equilibrium: {', '.join(bad)}")
    for values in raw.values():
        values.setflags(write=False)
    return raw
