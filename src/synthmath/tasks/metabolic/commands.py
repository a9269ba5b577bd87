"""What ``synthmath solve metabolic FILE`` and ``synthmath predict RUN_DIR FILE`` print.

``solve`` reads a network file (:mod:`synthmath.tasks.metabolic.networks`), solves it
exactly and prints a small table, or with ``--json`` exactly::

    {"exists": true, "concentrations": {"x1": 0.763, ...}, "flows": [0.7017, ...]}

(flows of the internal edges in file order; ``concentrations`` and ``flows`` are null when
there is no equilibrium; ``exists`` is null in the very rare case the solver cannot decide).
Extreme rates (e.g. 1e300) can overflow the solver: such values are null and the object gets
``"finite": false`` (strict JSON has no NaN or Infinity); the table says "not finite".
``predict`` encodes the file's network with a trained run's task parameters, decodes it with
the model and prints the model's answer beside the exact one.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from synthmath.core.errors import ConfigError, DecodeError
from synthmath.core.files import dumps_json, finite_or_none
from synthmath.core.task import RawBatch, Task
from synthmath.tasks.metabolic.networks import Network, load_network
from synthmath.tasks.metabolic.solvers import solve


def solve_network(network: Network) -> RawBatch:
    """The network's raw batch (a copy) with the solver's answers added."""
    raw = {k: v.copy() for k, v in network.raw.items()}
    solution = solve(raw, network.kinetics)
    for key in ("exists", "conc", "flow", "out_flow", "undecided"):
        if key in solution:
            raw[key] = np.asarray(solution[key])
    return raw


def _decided(raw: RawBatch) -> bool:
    return not ("undecided" in raw and bool(raw["undecided"][0]))


def solution_json(network: Network, raw: RawBatch) -> dict[str, Any]:
    """``{"exists", "concentrations", "flows"}`` of a solved network (null where none)."""
    exists = bool(raw["exists"][0]) if _decided(raw) else None
    if not exists:
        return {"exists": exists, "concentrations": None, "flows": None}
    conc = raw["conc"][0, : len(network.nodes)]
    flows = raw["flow"][0, : network.n_edges]
    out: dict[str, Any] = {"exists": True}
    if not (np.isfinite(conc).all() and np.isfinite(flows).all()):
        out["finite"] = False
    out["concentrations"] = dict(zip(network.nodes, map(finite_or_none, conc)))
    out["flows"] = [finite_or_none(v) for v in flows]
    return out


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(lines) + "\n"


def _flux_labels(network: Network) -> list[str]:
    """``"a -> b"`` for each internal edge in order, then ``"sink a"`` for each output."""
    raw, names = network.raw, network.nodes
    edges = [
        f"{names[int(raw['edge_src'][0, k])]} -> {names[int(raw['edge_dst'][0, k])]}"
        for k in range(network.n_edges)
    ]
    sinks = [f"sink {names[int(raw['out_node'][0, k])]}" for k in range(int(raw["n_out"][0]))]
    return edges + sinks


def describe(network: Network) -> str:
    raw = network.raw
    sizes = (len(network.nodes), network.n_edges, int(raw["n_in"][0]), int(raw["n_out"][0]))
    counts = [
        f"{k} {word}{'' if k == 1 else 's'}"
        for k, word in zip(sizes, ("node", "edge", "input", "output"))
    ]
    return f"network: {network.name} ({network.kinetics} kinetics; {', '.join(counts)})\n"


def format_solution(network: Network, raw: RawBatch) -> str:
    """The text ``solve`` prints: existence, then aligned concentration and flow tables."""
    text = describe(network)
    if not _decided(raw):
        return text + "equilibrium: undecided (a node runs within 1e-6 of its capacity)\n"
    if not raw["exists"][0]:
        return text + "equilibrium: none (some concentration grows without bound from x = 0)\n"
    conc = raw["conc"][0, : len(network.nodes)]
    fluxes = np.concatenate(
        [raw["flow"][0, : network.n_edges], raw["out_flow"][0, : int(raw["n_out"][0])]]
    )
    text += "equilibrium: exists\n\n"
    text += _table(
        ("node", "concentration"), [(n, _number(v)) for n, v in zip(network.nodes, conc)]
    )
    text += "\n" + _table(
        ("edge", "flow"), [(e, _number(v)) for e, v in zip(_flux_labels(network), fluxes)]
    )
    if not (np.isfinite(conc).all() and np.isfinite(fluxes).all()):
        text += "\nsome values are not finite: the rates are too extreme for the solver\n"
    return text


def _number(value: float, digits: int = 6) -> str:
    return f"{value:.{digits}g}" if np.isfinite(value) else "not finite"


def solve_file(path: str | os.PathLike, as_json: bool = False) -> str:
    """What ``synthmath solve metabolic FILE [--json]`` prints."""
    network = load_network(path)
    raw = solve_network(network)
    if as_json:
        return dumps_json(solution_json(network, raw), indent=None) + "\n"
    return format_solution(network, raw)


def predict_file(model, task: Task, path: str | os.PathLike, beam_size: int = 1) -> str:
    """A trained model's answer for the network in ``path`` beside the exact one."""
    from synthmath.eval.predict import predict_tokens
    from synthmath.train.batches import EncodedSet

    if task.name != "metabolic":
        raise ConfigError(
            f"{path}: network files need a metabolic run, this run's task is {task.name!r}"
        )
    network = load_network(path)
    if network.kinetics != task.params["kinetics"]:
        raise ConfigError(
            f"{path}: kinetics {network.kinetics!r}, but the model was trained on "
            f"{task.params['kinetics']!r} networks"
        )
    raw = solve_network(network)
    raw.pop("undecided", None)
    answer = task.params["answer"]
    encoded = EncodedSet(task, raw)
    limit = getattr(getattr(model, "cfg", None), "max_len", None)
    longest = max(int(encoded.src_len.max()), int(encoded.tgt_len.max()))
    if limit is not None and longest > limit:
        raise ConfigError(
            f"{path}: the network takes {longest} tokens, more than the model's max_len "
            f"{limit}; this model reads networks of up to its training size"
        )
    tokens = predict_tokens(model, task, encoded, beam_size=beam_size)[0]
    scores = task.score_predictions(raw, [tokens])
    text = describe(network) + f"answer: {answer}\n"
    exists = bool(raw["exists"][0])
    if answer == "existence":
        text += f"exact:     {'YES' if exists else 'NO'}\npredicted: {' '.join(tokens) or '(nothing)'}\n"
    else:
        text += _value_table(network, raw, task, tokens, exists)
    metrics = ", ".join(f"{k}={_fmt(v[0])}" for k, v in scores.items())
    return text + f"scores:    {metrics}\n"


def _value_table(network: Network, raw: RawBatch, task: Task, tokens, exists: bool) -> str:
    """Aligned rows: label, exact value, predicted value, relative error (as scored)."""
    from synthmath.tasks.metabolic.sequences import relative_errors, true_values

    answer = task.params["answer"]
    labels = network.nodes if answer == "concentrations" else _flux_labels(network)
    truth = true_values(raw, answer, 0)
    notes = "" if exists else "exact: no equilibrium\n"
    try:
        predicted = task.decode_answer(tokens)[answer]
    except DecodeError as err:
        predicted = np.zeros(0)
        notes += f"predicted: does not decode ({err}): {' '.join(tokens)}\n"
    else:
        if len(predicted) != len(truth):
            notes += f"predicted {len(predicted)} numbers for {len(truth)} values\n"
    same_length = len(predicted) == len(truth)
    errors = relative_errors(predicted, truth) if exists and same_length else None
    rows = []
    for k in range(max(len(labels), len(predicted))):
        rows.append(
            (
                labels[k] if k < len(labels) else "(extra)",
                f"{truth[k]:.6g}" if exists and k < len(truth) else "-",
                f"{predicted[k]:.4g}" if k < len(predicted) else "-",
                f"{100 * errors[k]:.2f}%" if errors is not None else "-",
            )
        )
    label = "node" if answer == "concentrations" else "flux"
    return notes + _table((label, "exact", "predicted", "rel. error"), rows)


def _fmt(value) -> str:
    return str(bool(value)) if isinstance(value, np.bool_ | bool) else f"{float(value):.4g}"
