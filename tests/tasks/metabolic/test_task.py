"""The metabolic task: sampling (balance, YES-only, known networks), token round trips with an
independent parser, scoring (perfect, perturbed, malformed), shuffle invariance, determinism."""

import json

import numpy as np
import pytest

from synthmath.cli import main
from synthmath.codecs.numbers import ENCODING_NAMES, get_encoding
from synthmath.core.errors import ConfigError
from synthmath.eval.summary import summarize
from synthmath.tasks.metabolic import families
from synthmath.tasks.metabolic.batches import shuffle_lists
from synthmath.tasks.metabolic.networks import known_names, known_networks
from synthmath.tasks.metabolic.solvers import solve
from synthmath.tasks.registry import make_task

SMALL = {"nodes_min": 4, "nodes_max": 8}
CHOLESTEROL = [0.763, 0.875, 2.574, 1.613, 2.243, 2.546]


def sample(n=40, seed=0, **params):
    task = make_task("metabolic", {**SMALL, **params})
    return task, task.sample(n, np.random.default_rng(seed))


def token_lists(task, raw, side="src"):
    ids, lengths = task.encode_src(raw) if side == "src" else task.encode_tgt(raw)
    vocab = task.src_vocab() if side == "src" else task.tgt_vocab()
    return task.tokens(ids, lengths, vocab)


def parse_src(tokens, encoding, n_values):
    """Independent reading of the documented input layout."""
    tpn = encoding.tokens_per_number

    def numbers(pos, count=n_values):
        return encoding.decode(tokens[pos : pos + count * tpn], count).tolist()

    n_nodes, pos = int(tokens[0][1:]), 1
    edges, inputs, outputs = [], [], []
    while pos < len(tokens):
        if tokens[pos] == "IN":
            inputs.append((int(tokens[pos + 1][1:]) - 1, *numbers(pos + 2, 1)))
            pos += 2 + tpn
        elif tokens[pos] == "OUT":
            outputs.append((int(tokens[pos + 1][1:]) - 1, *numbers(pos + 2)))
            pos += 2 + n_values * tpn
        else:
            src, dst = (int(t[1:]) - 1 for t in tokens[pos : pos + 2])
            edges.append((src, dst, *numbers(pos + 2)))
            pos += 2 + n_values * tpn
    return n_nodes, edges, inputs, outputs


def raw_lists(raw, i, fields):
    e, k, o = (int(raw[c][i]) for c in ("n_edges", "n_in", "n_out"))
    edges = [
        (int(raw["edge_src"][i, j]), int(raw["edge_dst"][i, j]))
        + tuple(float(raw[f"edge_{f}"][i, j]) for f in fields)
        for j in range(e)
    ]
    inputs = [(int(raw["in_node"][i, j]), float(raw["in_rate"][i, j])) for j in range(k)]
    outputs = [
        (int(raw["out_node"][i, j]),) + tuple(float(raw[f"out_{f}"][i, j]) for f in fields)
        for j in range(o)
    ]
    return edges, inputs, outputs


@pytest.mark.parametrize("encoding", ENCODING_NAMES)
def test_round_trip_in_every_encoding(encoding):
    task, raw = sample(30, answer="concentrations", encoding=encoding)
    enc = get_encoding(encoding)
    for i, (src, tgt) in enumerate(zip(token_lists(task, raw), token_lists(task, raw, "tgt"))):
        n_nodes, edges, inputs, outputs = parse_src(src, enc, 1)
        assert n_nodes == raw["n_nodes"][i]
        # rates are rounded to 3 digits at sampling time: the encoding is exact
        assert (edges, inputs, outputs) == raw_lists(raw, i, ("rate",))
        decoded = task.decode_answer(tgt)["concentrations"]
        np.testing.assert_array_equal(decoded, enc.round(raw["conc"][i, :n_nodes]))


@pytest.mark.parametrize("answer", ["existence", "flows"])
def test_round_trip_michaelis_menten(answer):
    task, raw = sample(16, kinetics="michaelis_menten", answer=answer)
    enc = get_encoding("P1000")
    for i, (src, tgt) in enumerate(zip(token_lists(task, raw), token_lists(task, raw, "tgt"))):
        _, edges, inputs, outputs = parse_src(src, enc, 2)
        assert (edges, inputs, outputs) == raw_lists(raw, i, ("vmax", "km"))
        if answer == "existence":
            assert tgt == (["YES"] if raw["exists"][i] else ["NO"])
        else:
            e, o = raw["n_edges"][i], raw["n_out"][i]
            truth = np.concatenate([raw["flow"][i, :e], raw["out_flow"][i, :o]])
            np.testing.assert_array_equal(task.decode_answer(tgt)["flows"], enc.round(truth))


def test_existence_is_balanced_exactly_and_deterministic():
    for n in (40, 41):
        task, raw = sample(n, seed=3, family="erdos_renyi,dag,cycle_rich")
        assert int(raw["exists"].sum()) == n - n // 2
        assert set(task.groups(raw)["answer"]) == {"YES", "NO"}
    _, again = sample(41, seed=3, family="erdos_renyi,dag,cycle_rich")
    for key in raw:
        np.testing.assert_array_equal(raw[key], again[key])
    _, other = sample(41, seed=4, family="erdos_renyi,dag,cycle_rich")
    assert not np.array_equal(other["edge_src"], raw["edge_src"])


def test_concentrations_and_flows_keep_only_networks_with_an_equilibrium():
    for answer in ("concentrations", "flows"):
        _, raw = sample(50, family="erdos_renyi", density=2.0, answer=answer)
        assert raw["exists"].all()
        assert np.isfinite(raw["conc"]).all() and np.isfinite(raw["flow"]).all()


def test_padding_follows_the_counts():
    _, raw = sample(60, family="tree,chain,preferential")
    width = raw["edge_src"].shape[1]
    pad = np.arange(width)[None, :] >= raw["n_edges"][:, None]
    assert (raw["edge_src"][pad] == -1).all() and (raw["edge_rate"][pad] == 0).all()
    assert (raw["edge_src"][~pad] >= 0).all()
    # the stored answers are those of the exact solver
    again = solve(raw, "linear")
    np.testing.assert_array_equal(again["exists"], raw["exists"])


def test_class_too_rare_is_an_error_naming_the_parameters():
    with pytest.raises(ConfigError, match="family=erdos_renyi.*outputs 0..0"):
        sample(4, answer="concentrations", outputs_min=0, outputs_max=0)


def _edge_flows(raw, i):
    """Network i's (source, target, flow) triples, in a canonical order."""
    triples = zip(raw["edge_src"][i], raw["edge_dst"][i], raw["flow"][i])
    return sorted((int(s), int(d), round(float(f), 12)) for s, d, f in triples if s >= 0)


def test_shuffled_edge_order_has_the_same_answer():
    task, raw = sample(30, answer="flows", shuffle_edges=False)
    # unshuffled networks list edges in (source, target) order
    for i in range(len(raw["n_nodes"])):
        pairs = list(zip(*(raw[k][i, : raw["n_edges"][i]] for k in ("edge_src", "edge_dst"))))
        assert pairs == sorted(pairs)
    shuffled = {k: v.copy() for k, v in raw.items()}
    shuffle_lists(shuffled, np.random.default_rng(5))
    assert not np.array_equal(shuffled["edge_src"], raw["edge_src"])
    again = solve(shuffled, "linear")
    np.testing.assert_allclose(again["conc"], raw["conc"], rtol=1e-10)
    # the stored flows moved with their edges, and are the flows of the shuffled network
    np.testing.assert_allclose(again["flow"], shuffled["flow"], rtol=1e-10)
    for i in range(len(raw["n_nodes"])):
        assert _edge_flows(shuffled, i) == _edge_flows(raw, i)


def test_known_networks_cycle_in_order_with_their_equilibria():
    task, raw = sample(12, family="known", answer="concentrations")
    names = known_names("linear")
    assert list(task.groups(raw)["network"]) == [names[k % len(names)] for k in range(12)]
    chol = names.index("cholesterol")
    for i in np.flatnonzero(raw["network"] == chol):
        np.testing.assert_allclose(raw["conc"][i, :6], CHOLESTEROL, atol=5e-4)
    # copies of a network differ in edge order (shuffle_edges) but not in their answer
    first, second = np.flatnonzero(raw["network"] == chol)[:2]
    assert not np.array_equal(raw["edge_src"][first], raw["edge_src"][second])
    example = task.to_json(raw, first)
    assert example["problem"]["name"] == "cholesterol"
    assert example["answer"]["concentrations"]["x6"] == pytest.approx(2.546, abs=5e-4)

    task, raw = sample(3, family="known:glycolysis", kinetics="michaelis_menten")
    assert set(task.groups(raw)["network"]) == {"glycolysis"}
    assert raw["exists"].all()
    assert task.to_json(raw, 0)["problem"]["nodes"][0] == "glucose"


def test_perfect_predictions_score_one():
    for answer in ("existence", "concentrations", "flows"):
        task, raw = sample(20, answer=answer)
        scores = task.score_predictions(raw, token_lists(task, raw, "tgt"))
        metric = task.main_metric()
        assert metric == ("acc" if answer == "existence" else "acc_tol5")
        assert scores[metric].all()
        if answer != "existence":
            assert scores["acc_tol1"].all() and (scores["frac_tol1"] == 1).all()


def _with_round_truth(raw, rng):
    """Concentrations replaced by values whose 1.5% perturbations are exact in 3 digits."""
    raw = dict(raw)
    raw["conc"] = rng.choice([0.2, 0.4, 0.6, 0.8, 2.0, 4.0, 6.0, 8.0], raw["conc"].shape)
    return raw


def test_perturbed_predictions_pass_at_2_and_5_percent_not_1():
    task, raw = sample(20, answer="concentrations")
    rng = np.random.default_rng(0)
    raw = _with_round_truth(raw, rng)
    enc = task.encoding
    preds, one_off = [], []
    for i in range(20):
        truth = raw["conc"][i, : raw["n_nodes"][i]]
        signs = rng.choice([-1.0, 1.0], len(truth))
        preds.append(enc.encode(truth * (1 + 0.015 * signs)))
        single = truth.copy()
        single[0] *= 1.015
        one_off.append(enc.encode(single))
    scores = task.score_predictions(raw, preds)
    assert scores["acc_tol5"].all() and scores["acc_tol2"].all()
    assert not scores["acc_tol1"].any()
    assert (scores["frac_tol2"] == 1).all() and (scores["frac_tol1"] == 0).all()
    np.testing.assert_allclose(scores["max_rel_error"], 0.015, rtol=1e-9)
    scores = task.score_predictions(raw, one_off)
    assert not scores["acc_tol1"].any()
    np.testing.assert_allclose(scores["frac_tol1"], 1 - 1 / raw["n_nodes"])
    # the report averages fractions (a float metric would otherwise show as a median)
    summary = summarize(task, raw, [[p] for p in one_off])
    assert summary["metrics"]["frac_tol1"] == pytest.approx(np.mean(1 - 1 / raw["n_nodes"]))
    assert "median_max_rel_error" in summary["metrics"]


def test_relative_error_floor_for_zero_truth():
    task, raw = sample(1, answer="concentrations")
    raw = {k: v.copy() for k, v in raw.items()}
    n = int(raw["n_nodes"][0])
    raw["conc"][0, :n] = [10.0] + [0.0] * (n - 1)
    enc = task.encoding
    tiny = enc.encode([10.0] + [1e-4] * (n - 1))  # 1e-4 / (1e-3 * 10) = 1% error
    huge = enc.encode([10.0] + [1e-1] * (n - 1))
    assert (
        task.score_predictions(raw, [tiny])["acc_tol2"][0]
        and not task.score_predictions(raw, [tiny])["acc_tol1"][0]
    )
    assert not task.score_predictions(raw, [huge])["acc_tol5"][0]


def test_malformed_predictions_are_wrong_not_errors():
    task, raw = sample(6, answer="concentrations")
    good = token_lists(task, raw, "tgt")
    bad = [[], good[1][:-1], good[2] + good[2][:3], ["YES"], ["NaN"] * len(good[4]), ["x1"]]
    scores = task.score_predictions(raw, bad)
    assert not scores["acc_tol5"].any() and (scores["frac_tol5"] == 0).all()
    assert np.isinf(scores["max_rel_error"]).all()
    task, raw = sample(4)
    assert not task.score_predictions(raw, [[], ["YES", "NO"], ["MAYBE"], ["+"]])["acc"].any()


def test_groups_and_json():
    task, raw = sample(20, family="dag,tree")
    groups = task.groups(raw)
    assert list(groups["size"]) == [str(k) for k in raw["n_nodes"]]
    assert set(groups["family"]) <= {"dag", "tree"}
    task2, raw2 = sample(5, answer="flows", family="small_world")
    assert "family" not in task2.groups(raw2) and "answer" not in task2.groups(raw2)
    example = task2.to_json(raw2, 0)
    assert len(example["answer"]["flows"]) == raw2["n_edges"][0]
    assert len(example["problem"]["edges"]) == raw2["n_edges"][0]


def test_parameter_checks():
    task = make_task("metabolic", {"nodes": 7})
    assert (task.params["nodes_min"], task.params["nodes_max"]) == (7, 7)
    raw = task.sample(10, np.random.default_rng(0))
    assert (raw["n_nodes"] == 7).all()
    with pytest.raises(ConfigError, match="nodes_min: must be <= nodes_max"):
        make_task("metabolic", {"nodes_min": 16})
    with pytest.raises(ConfigError, match="family: unknown family 'grid'.*known"):
        make_task("metabolic", {"family": "dag,grid"})
    with pytest.raises(ConfigError, match="unknown known network 'krebs'.*glycolysis"):
        make_task("metabolic", {"family": "known:krebs"})
    with pytest.raises(ConfigError, match="max_nodes"):
        make_task("metabolic", {"nodes_max": 50})
    largest = max(int(n.raw["n_nodes"][0]) for n in known_networks("linear"))
    with pytest.raises(ConfigError, match=f"up to {largest} nodes"):
        make_task("metabolic", {"family": "known", "nodes_max": 8, "max_nodes": 8})
    small = make_task("metabolic", {"nodes_max": 8, "max_nodes": 8})
    _, big = sample(5, nodes_min=9, nodes_max=9)
    with pytest.raises(ConfigError, match="max_nodes"):
        small.encode_src(big)


def test_vocabularies_depend_on_the_parameters_only():
    a, raw_a = sample(5, seed=1)
    b, _ = sample(5, seed=2, nodes_min=10, nodes_max=12)
    assert a.src_vocab().tokens == b.src_vocab().tokens
    assert a.tgt_vocab().tokens[3:] == ["YES", "NO"]
    assert len(families.FAMILIES) == 7


def test_cli_sample_prints_json_lines(capsys):
    assert main(["sample", "metabolic", "answer=existence", "-n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        example = json.loads(line)
        assert example["tgt"] in ("YES", "NO")
        assert example["answer"]["exists"] == (example["tgt"] == "YES")
        assert example["src"].startswith(f"V{len(example['problem']['nodes'])} ")
