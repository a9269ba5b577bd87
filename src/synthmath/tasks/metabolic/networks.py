"""Metabolic networks as JSON files: read (with validation), write, and the shipped networks.

One network per file; node names are free strings, edges refer to them::

    {"name": "cholesterol", "kinetics": "linear",
     "nodes": ["x1", "x2", "x3", "x4", "x5", "x6"],
     "edges": [{"from": "x1", "to": "x4", "rate": 0.9196}, ...],
     "inputs": [{"node": "x1", "rate": 0.7017}, ...],
     "outputs": [{"node": "x6", "rate": 0.8255}],
     "source": "...", "notes": "..."}

``inputs`` are constant inflows into a node; ``outputs`` are sink edges from a node to the
outside. With ``"kinetics": "michaelis_menten"`` every edge and every output carries ``vmax``
and ``km`` instead of ``rate`` (flux ``vmax * x / (km + x)``); inflows keep ``rate``.
``name``, ``source`` and ``notes`` are optional. Every problem found names the file and the
field: ``cholesterol.json: edges[3].to: unknown node 'x9'``.

A loaded :class:`Network` holds a raw batch of one network in the layout of
:mod:`synthmath.tasks.metabolic.graphs` (node ``k`` is ``nodes[k]``), so the exact solvers and
the task's encoders apply to it unchanged. The shipped biological networks live in
``known/<kinetics>/<name>.json`` (provenance in ``known/README.md``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from synthmath.core.errors import ConfigError
from synthmath.core.files import write_text
from synthmath.core.task import RawBatch
from synthmath.tasks.metabolic.graphs import FLUX_FIELDS, KINETICS, single_network

KNOWN_DIR = Path(__file__).resolve().parent / "known"
_TOP_FIELDS = ("name", "kinetics", "nodes", "edges", "inputs", "outputs", "source", "notes")


class NetworkFileError(ConfigError):
    """A network file is malformed; the message names the file, the field and the problem."""


@dataclass
class Network:
    """A network read from a file: a raw batch of one network plus its names and provenance."""

    raw: RawBatch
    nodes: list[str]
    kinetics: str
    name: str = ""
    source: str = ""
    notes: str = ""
    path: str = ""

    @property
    def n_edges(self) -> int:
        return int(self.raw["n_edges"][0])


# ---- reading -----------------------------------------------------------------------------
def load_network(path: str | os.PathLike) -> Network:
    """Read and validate one network file (errors name the file and the field)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such network file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise NetworkFileError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise NetworkFileError(f"{path}: not a readable network file ({err})") from None
    network = parse_network(data, where=str(path))
    network.path = str(path)
    if not network.name:
        network.name = path.stem
    return network


def parse_network(data: Any, where: str = "<network>") -> Network:
    """Validate a network given as parsed JSON (a dict) and build its raw batch."""
    if not isinstance(data, dict):
        raise NetworkFileError(f"{where}: expected a JSON object, got {type(data).__name__}")
    _no_unknown_fields(data, _TOP_FIELDS, where, "the top level")
    kinetics = _field(data, "kinetics", where, "the top level")
    if kinetics not in KINETICS:
        raise NetworkFileError(
            f"{where}: kinetics: unknown kinetics {kinetics!r}; allowed: {', '.join(KINETICS)}"
        )
    flux_fields = FLUX_FIELDS[kinetics]
    nodes = _node_names(_field(data, "nodes", where, "the top level"), where)
    index = {name: k for k, name in enumerate(nodes)}

    edges, edge_values, seen = [], [], {}
    for k, item in enumerate(_list(data, "edges", where)):
        at = f"edges[{k}]"
        _no_unknown_fields(item, ("from", "to", *flux_fields), where, at)
        src = _node(item, "from", index, where, at)
        dst = _node(item, "to", index, where, at)
        if src == dst:
            raise NetworkFileError(f"{where}: {at}: self loop {nodes[src]!r} -> {nodes[dst]!r}")
        if (src, dst) in seen:
            raise NetworkFileError(
                f"{where}: {at}: duplicate edge {nodes[src]!r} -> {nodes[dst]!r} "
                f"(also edges[{seen[src, dst]}])"
            )
        seen[src, dst] = k
        edges.append((src, dst))
        edge_values.append([_positive(item, f, where, at) for f in flux_fields])

    inputs = _terminals(data, "inputs", ("rate",), index, nodes, where)
    outputs = _terminals(data, "outputs", flux_fields, index, nodes, where)
    if not inputs:
        raise NetworkFileError(
            f"{where}: inputs: at least one input is needed (without inflow the only "
            "equilibrium is zero)"
        )
    for key in ("name", "source", "notes"):
        if key in data and not isinstance(data[key], str):
            raise NetworkFileError(f"{where}: {key}: expected a string")
    # the file is checked above (errors name the file); this only lays out the arrays
    raw = single_network(len(nodes), edges, edge_values, inputs, outputs, kinetics)
    return Network(
        raw=raw,
        nodes=nodes,
        kinetics=kinetics,
        name=data.get("name", ""),
        source=data.get("source", ""),
        notes=data.get("notes", ""),
    )


def _field(obj: dict, key: str, where: str, at: str) -> Any:
    if key not in obj:
        raise NetworkFileError(f'{where}: missing field "{key}" in {at}')
    return obj[key]


def _no_unknown_fields(obj: Any, allowed: tuple[str, ...], where: str, at: str) -> None:
    if not isinstance(obj, dict):
        raise NetworkFileError(f"{where}: {at}: expected an object, got {type(obj).__name__}")
    for key in obj:
        if key not in allowed:
            raise NetworkFileError(
                f'{where}: unknown field "{key}" in {at}; allowed: {", ".join(allowed)}'
            )


def _list(data: dict, key: str, where: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise NetworkFileError(f"{where}: {key}: expected a list, got {type(value).__name__}")
    return value


def _node_names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise NetworkFileError(f"{where}: nodes: expected a non-empty list of node names")
    seen: set[str] = set()
    for k, name in enumerate(value):
        if not isinstance(name, str) or not name:
            raise NetworkFileError(f"{where}: nodes[{k}]: expected a non-empty string")
        if name in seen:
            raise NetworkFileError(f"{where}: nodes[{k}]: duplicate node {name!r}")
        seen.add(name)
    return list(value)


def _node(item: dict, key: str, index: dict[str, int], where: str, at: str) -> int:
    name = _field(item, key, where, at)
    if not isinstance(name, str) or name not in index:
        raise NetworkFileError(f"{where}: {at}.{key}: unknown node {name!r}")
    return index[name]


def _positive(item: dict, key: str, where: str, at: str) -> float:
    value = _field(item, key, where, at)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NetworkFileError(f"{where}: {at}.{key}: expected a finite number, got {value!r}")
    try:
        number = float(value)  # a huge JSON integer (400 digits) does not fit a float
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        shown = f"{str(value)[:12]}... ({len(str(value))} digits)" if number == math.inf else value
        raise NetworkFileError(f"{where}: {at}.{key}: expected a finite number, got {shown}")
    if number <= 0:
        word = "negative" if number < 0 else "zero"
        raise NetworkFileError(f"{where}: {at}.{key}: {word} {key} {value!r} (must be > 0)")
    return number


def _terminals(
    data: dict,
    key: str,
    fields: tuple[str, ...],
    index: dict[str, int],
    nodes: list[str],
    where: str,
) -> list[tuple[int, list[float]]]:
    """The ``inputs`` or ``outputs`` list: (node index, parameter values), one per node."""
    out, seen = [], {}
    for k, item in enumerate(_list(data, key, where)):
        at = f"{key}[{k}]"
        _no_unknown_fields(item, ("node", *fields), where, at)
        node = _node(item, "node", index, where, at)
        if node in seen:
            raise NetworkFileError(
                f"{where}: {at}: duplicate {key[:-1]} node {nodes[node]!r} (also {key}[{seen[node]}])"
            )
        seen[node] = k
        out.append((node, [_positive(item, f, where, at) for f in fields]))
    return out


# ---- writing -----------------------------------------------------------------------------
def network_to_dict(
    raw: RawBatch,
    i: int,
    kinetics: str,
    nodes: list[str] | None = None,
    **meta: str,
) -> dict[str, Any]:
    """Network ``i`` of a raw batch in the file format (nodes ``x1..xn`` unless named).

    ``meta`` adds optional top-level fields (``name``, ``source``, ``notes``).
    """
    fields = FLUX_FIELDS[kinetics]
    n = int(raw["n_nodes"][i])
    names = list(nodes) if nodes is not None else [f"x{k + 1}" for k in range(n)]

    def values(prefix: str, k: int) -> dict[str, float]:
        return {f: float(raw[f"{prefix}_{f}"][i, k]) for f in fields}

    edges = [
        {
            "from": names[int(raw["edge_src"][i, k])],
            "to": names[int(raw["edge_dst"][i, k])],
            **values("edge", k),
        }
        for k in range(int(raw["n_edges"][i]))
    ]
    inputs = [
        {"node": names[int(raw["in_node"][i, k])], "rate": float(raw["in_rate"][i, k])}
        for k in range(int(raw["n_in"][i]))
    ]
    outputs = [
        {"node": names[int(raw["out_node"][i, k])], **values("out", k)}
        for k in range(int(raw["n_out"][i]))
    ]
    head = {k: v for k, v in meta.items() if v}
    body = {"kinetics": kinetics, "nodes": names, "edges": edges}
    return {**head, **body, "inputs": inputs, "outputs": outputs}


def format_network(network: dict[str, Any]) -> str:
    """A network dict as JSON text: one top-level field, edge, input or output per line."""
    lines = []
    for key, value in network.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n".join(f"    {json.dumps(item)}" for item in value)
            lines.append(f'  "{key}": [\n{items}\n  ]')
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def save_network(path: str | os.PathLike, network: dict[str, Any]) -> None:
    """Write a network dict (see :func:`network_to_dict`) to a file (:func:`format_network`)."""
    write_text(path, format_network(network))


# ---- shipped networks ----------------------------------------------------------------------
@cache
def known_networks(kinetics: str) -> tuple[Network, ...]:
    """The shipped biological networks of one kinetics, sorted by name."""
    if kinetics not in KINETICS:
        raise ConfigError(f"kinetics: unknown value {kinetics!r}; allowed: {', '.join(KINETICS)}")
    paths = sorted((KNOWN_DIR / kinetics).glob("*.json"))
    if not paths:
        raise FileNotFoundError(f"{KNOWN_DIR / kinetics}: no known networks shipped")
    networks = tuple(load_network(p) for p in paths)
    for net in networks:
        if net.kinetics != kinetics:
            raise NetworkFileError(
                f"{net.path}: kinetics {net.kinetics!r} in the {kinetics} folder"
            )
    return networks


def known_names(kinetics: str) -> list[str]:
    """Names of the shipped networks of one kinetics (the file stems), sorted."""
    return sorted(p.stem for p in (KNOWN_DIR / kinetics).glob("*.json"))
