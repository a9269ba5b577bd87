"""Network JSON files: round trips, validation errors, the shipped networks (checked against
independent references), and the `solve` / `predict RUN_DIR FILE` commands."""

import copy
import json

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from synthmath.cli import main
from synthmath.tasks.metabolic.networks import (
    FLUX_FIELDS,
    KNOWN_DIR,
    NetworkFileError,
    known_networks,
    load_network,
    network_to_dict,
    parse_network,
    save_network,
)
from synthmath.tasks.metabolic.solvers import solve
from synthmath.tasks.registry import make_task

KINETICS = ("linear", "michaelis_menten")
CHOLESTEROL = KNOWN_DIR / "linear" / "cholesterol.json"
CHOLESTEROL_X = [0.763, 0.875, 2.574, 1.613, 2.243, 2.546]


@pytest.mark.parametrize("kinetics", KINETICS)
def test_file_round_trip(tmp_path, kinetics):
    task = make_task("metabolic", {"kinetics": kinetics, "nodes_min": 3, "nodes_max": 9})
    raw = task.sample(12, np.random.default_rng(1))
    for i in range(12):
        path = tmp_path / f"net{i}.json"
        save_network(path, network_to_dict(raw, i, kinetics, name=f"net{i}"))
        net = load_network(path)
        assert net.name == f"net{i}" and net.kinetics == kinetics
        assert net.nodes == [f"x{k + 1}" for k in range(raw["n_nodes"][i])]
        for key, values in net.raw.items():
            if key == "family":
                continue
            width = raw[key].shape[1] if raw[key].ndim == 2 else None
            original = raw[key][i, : values.shape[1]] if width else raw[key][i]
            count = {"edge": "n_edges", "in": "n_in", "out": "n_out"}.get(key.split("_")[0])
            if width:
                k = int(raw[count][i])
                np.testing.assert_array_equal(values[0, :k], original[:k], err_msg=key)
            else:
                assert values[0] == original, key
        # back to the same dict
        assert network_to_dict(net.raw, 0, kinetics, net.nodes, name=net.name) == json.loads(
            path.read_text()
        )


def test_every_known_network_loads_and_has_an_equilibrium():
    names = {}
    for kinetics in KINETICS:
        networks = known_networks(kinetics)
        assert len(networks) >= 5
        names[kinetics] = [n.name for n in networks]
        for net in networks:
            assert net.name == KNOWN_DIR.joinpath(net.path).stem and net.source and net.notes
            solution = solve(net.raw, kinetics)
            assert solution["exists"][0], net.name
            assert not solution.get("undecided", np.zeros(1, bool))[0]
            # inside the task's default ranges (rate_min .. rate_max, km_min .. km_max)
            params = make_task("metabolic", {"kinetics": kinetics}).params
            rates = [net.raw["in_rate"][0, : net.raw["n_in"][0]]]
            for f in FLUX_FIELDS[kinetics]:
                rates.append(net.raw[f"edge_{f}"][0, : net.n_edges])
                rates.append(net.raw[f"out_{f}"][0, : net.raw["n_out"][0]])
            values = np.concatenate(rates)
            assert values.min() >= min(params["rate_min"], params["km_min"])
            assert values.max() <= max(params["rate_max"], params["km_max"])
    assert names["linear"] == names["michaelis_menten"]
    # both kinetics share each network's topology
    for lin, mm in zip(known_networks("linear"), known_networks("michaelis_menten")):
        assert lin.nodes == mm.nodes
        for key in ("edge_src", "edge_dst", "in_node", "out_node"):
            np.testing.assert_array_equal(lin.raw[key], mm.raw[key])


def _node_fluxes(net, x):
    """d/dt of every concentration at x (independent of the solver), Michaelis-Menten or linear."""
    raw, kinetics = net.raw, net.kinetics

    def flux(prefix, k, value):
        if kinetics == "linear":
            return raw[f"{prefix}_rate"][0, k] * value
        return raw[f"{prefix}_vmax"][0, k] * value / (raw[f"{prefix}_km"][0, k] + value)

    dx = np.zeros(len(net.nodes))
    for k in range(int(raw["n_in"][0])):
        dx[raw["in_node"][0, k]] += raw["in_rate"][0, k]
    for k in range(net.n_edges):
        s, d = raw["edge_src"][0, k], raw["edge_dst"][0, k]
        phi = flux("edge", k, x[s])
        dx[s] -= phi
        dx[d] += phi
    for k in range(int(raw["n_out"][0])):
        node = raw["out_node"][0, k]
        dx[node] -= flux("out", k, x[node])
    return dx


@pytest.mark.parametrize("kinetics", KINETICS)
def test_known_equilibria_match_ode_integration(kinetics):
    for net in known_networks(kinetics):
        result = solve_ivp(
            lambda t, x, net=net: _node_fluxes(net, x),
            (0, 4000),
            np.zeros(len(net.nodes)),
            method="LSODA",
            rtol=1e-10,
            atol=1e-12,
        )
        x_end = result.y[:, -1]
        assert np.abs(_node_fluxes(net, x_end)).max() < 1e-8, net.name
        conc = solve(net.raw, kinetics)["conc"][0, : len(net.nodes)]
        np.testing.assert_allclose(conc, x_end, rtol=1e-6, err_msg=net.name)


def test_cholesterol_equilibrium_of_the_spec():
    net = load_network(CHOLESTEROL)
    conc = solve(net.raw, "linear")["conc"][0]
    np.testing.assert_allclose(conc, CHOLESTEROL_X, atol=5e-4)


def _base():
    return json.loads(CHOLESTEROL.read_text())


def _edit(fn):
    data = _base()
    fn(data)
    return data


MALFORMED = [
    (lambda d: d["edges"][3].update(to="x9"), r"edges\[3\]\.to: unknown node 'x9'"),
    (lambda d: d["inputs"][0].update(rate=-0.5), r"inputs\[0\]\.rate: negative rate"),
    (lambda d: d["edges"][2].pop("rate"), r'missing field "rate" in edges\[2\]'),
    (lambda d: d["edges"].append(dict(d["edges"][0])), r"duplicate edge 'x1' -> 'x4'"),
    (lambda d: d["edges"][1].update(to="x2"), r"edges\[1\]: self loop 'x2' -> 'x2'"),
    (lambda d: d.update(kinetics="hill"), r"unknown kinetics 'hill'; allowed: linear"),
    (lambda d: d["edges"][0].update(weight=1), r'unknown field "weight" in edges\[0\]'),
    (lambda d: d["nodes"].append("x1"), r"nodes\[6\]: duplicate node 'x1'"),
    (lambda d: d.update(inputs=[]), r"inputs: at least one input"),
    (lambda d: d["outputs"][0].update(rate="fast"), r"outputs\[0\]\.rate: expected a finite"),
    (lambda d: d["outputs"][0].update(rate=0), r"outputs\[0\]\.rate: zero rate"),
    (lambda d: d.pop("nodes"), r'missing field "nodes" in the top level'),
    (lambda d: d["inputs"].append({"node": "x1", "rate": 1}), r"duplicate input node 'x1'"),
    (lambda d: d.update(kinetics="michaelis_menten"), r'unknown field "rate" in edges\[0\]'),
]


@pytest.mark.parametrize("edit, message", MALFORMED)
def test_malformed_files_get_named_errors(tmp_path, edit, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_edit(edit), indent=1))
    with pytest.raises(NetworkFileError, match=message) as err:
        load_network(path)
    assert "bad.json" in str(err.value)


def test_not_json_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "kinetics": "linear",\n  "nodes": ["a" "b"]\n}\n')
    with pytest.raises(NetworkFileError, match=r"broken.json: not valid JSON \(line 3"):
        load_network(path)
    with pytest.raises(NetworkFileError, match="expected a JSON object"):
        parse_network([1, 2])


def test_cli_solve_text_and_json(capsys, tmp_path):
    assert main(["solve", "metabolic", str(CHOLESTEROL)]) == 0
    text = capsys.readouterr().out
    assert "equilibrium: exists" in text
    assert "x3    2.57358" in text  # aligned node table
    assert "x4 -> x6  0.78566" in text and "sink x6   2.1016" in text

    assert main(["solve", "metabolic", str(CHOLESTEROL), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["exists", "concentrations", "flows"] and out["exists"] is True
    assert list(out["concentrations"]) == [f"x{k}" for k in range(1, 7)]
    np.testing.assert_allclose(list(out["concentrations"].values()), CHOLESTEROL_X, atol=5e-4)
    # flux of each edge = rate * x_src, in file order
    data = _base()
    expected = [e["rate"] * out["concentrations"][e["from"]] for e in data["edges"]]
    np.testing.assert_allclose(out["flows"], expected, rtol=1e-12)

    # no sink reachable from x1's branch: no equilibrium
    data["edges"][0]["to"] = "x2"
    data["edges"].append({"from": "x2", "to": "x1", "rate": 0.5})
    data["edges"].pop(1)
    path = tmp_path / "trap.json"
    path.write_text(json.dumps(data))
    assert main(["solve", "metabolic", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "exists": False,
        "concentrations": None,
        "flows": None,
    }
    assert main(["solve", "metabolic", str(path)]) == 0
    assert "equilibrium: none" in capsys.readouterr().out

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_edit(MALFORMED[0][0])))
    assert main(["solve", "metabolic", str(bad)]) == 2
    assert "bad.json: edges[3].to: unknown node 'x9'" in capsys.readouterr().err
    assert main(["solve", "linalg", str(bad)]) == 2


@pytest.mark.parametrize("answer", ["existence", "concentrations"])
def test_cli_predict_on_a_network_file(capsys, tmp_path, monkeypatch, answer):
    from synthmath.runs.artifacts import RunDir, build_model, save_model
    from synthmath.runs.plan import build_plan

    monkeypatch.chdir(tmp_path)
    config = {
        "studies": {
            "m": {
                "task": "metabolic",
                "params": {"answer": answer, "nodes_max": 8, "max_nodes": 16},
                "model": {"d_model": 16, "n_heads": 2, "max_len": 256},
            }
        }
    }
    run = next(iter(build_plan(copy.deepcopy(config)).runs.values()))
    task = make_task("metabolic", run.params)
    run_dir = tmp_path / "run"
    save_model(RunDir(run_dir).model, build_model(run, task), task, run)
    assert main(["predict", str(run_dir), str(CHOLESTEROL)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("network: cholesterol (linear kinetics; 6 nodes, 6 edges")
    if answer == "existence":
        assert "exact:     YES" in out
    else:
        rows = [line.split() for line in out.splitlines() if line.startswith("x")]
        assert [r[0] for r in rows] == [f"x{k}" for k in range(1, 7)]
        np.testing.assert_allclose([float(r[1]) for r in rows], CHOLESTEROL_X, atol=5e-4)
    assert "scores:" in out
    mm = KNOWN_DIR / "michaelis_menten" / "cholesterol.json"
    assert main(["predict", str(run_dir), str(mm)]) == 2
    assert "trained on 'linear'" in capsys.readouterr().err


def test_huge_rate_is_a_one_line_error(capsys, tmp_path):
    """A 400-digit integer rate does not fit a float: a named error, not an OverflowError."""
    data = _base()
    data["edges"][0]["rate"] = int("9" * 400)
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    assert main(["solve", "metabolic", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthmath: error: ") and len(err.strip().splitlines()) == 1
    assert "huge.json: edges[0].rate: expected a finite number" in err and "400 digits" in err
    path.write_text(json.dumps(data).replace("9" * 400, "9" * 5000))  # past int parsing
    assert main(["solve", "metabolic", str(path)]) == 2
    assert "huge.json: not a readable network file" in capsys.readouterr().err


def test_solve_with_extreme_rates_prints_strict_json(capsys, tmp_path):
    """Rates near the float range overflow the solver: null values, "finite": false and
    "not finite" in the table, never NaN or Infinity."""
    data = _base()
    for group in ("edges", "inputs"):
        for item in data[group]:
            item["rate"] = 1e300
    data["outputs"][0]["rate"] = 1e-300
    path = tmp_path / "extreme.json"
    path.write_text(json.dumps(data))
    assert main(["solve", "metabolic", str(path), "--json"]) == 0
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    out = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert out["exists"] is True and out["finite"] is False
    assert None in out["concentrations"].values() or None in out["flows"]
    assert main(["solve", "metabolic", str(path)]) == 0
    table = capsys.readouterr().out
    assert "not finite" in table and "nan" not in table and "inf " not in table


def test_predict_on_a_network_longer_than_max_len(capsys, tmp_path, monkeypatch):
    from synthmath.runs.artifacts import RunDir, build_model, save_model
    from synthmath.runs.plan import build_plan

    monkeypatch.chdir(tmp_path)
    config = {
        "studies": {
            "m": {
                "task": "metabolic",
                "params": {"answer": "existence", "nodes_max": 8, "max_nodes": 16},
                "model": {"d_model": 16, "n_heads": 2, "max_len": 256},
            }
        }
    }
    run = next(iter(build_plan(copy.deepcopy(config)).runs.values()))
    run.model["max_len"] = 24  # shorter than the cholesterol network's token sequence
    task = make_task("metabolic", run.params)
    run_dir = tmp_path / "run"
    save_model(RunDir(run_dir).model, build_model(run, task), task, run)
    assert main(["predict", str(run_dir), str(CHOLESTEROL)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synthmath: error: ") and len(err.strip().splitlines()) == 1
    assert "cholesterol.json" in err and "max_len 24" in err
