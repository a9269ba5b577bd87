"""The random-features phase-space figure."""

from __future__ import annotations

import numpy as np

from synthmath.report.study import write_summary
from synthmath.report.theory import (
    CAPTIONS,
    FIGURE_NAMES,
    FIGURE_PNGS,
    degeneracy_figure,
    dfa_figure,
    main,
    phase_space_figure,
    pspin_figure,
)
from synthmath.theory.pspin import beta_sweep, make_pspin
from synthmath.theory.random_features import activation
from synthmath.train.dfa_toy import Restart, align_then_memorise


def test_phase_space_figure_has_one_panel_per_setting_and_both_lines(tmp_path):
    ratios = np.logspace(-1, 1, 6)
    overlay = {(0.1, 0.5): [(2.0, 0.5, 0.8)]}
    fig = phase_space_figure(
        activation("tanh"), lambdas=(0.1,), deltas=(0.0, 0.5), ratios=ratios, numerical=overlay
    )
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        "tanh, SNR inf, lambda 0.1",
        "tanh, SNR 2, lambda 0.1",
    ]
    labels = {line.get_label() for line in panels[0].get_lines()}
    assert {"N = D", "N = P"} <= labels
    assert len(panels[1].collections) == 1 and len(panels[0].collections) == 0  # the overlay
    image = panels[0].get_images()[0].get_array()
    assert image.shape == (6, 6) and np.all(np.isfinite(image))


def test_pspin_figure_has_one_curve_per_beta():
    model = make_pspin(20, np.random.default_rng(0))
    sweep = beta_sweep(model, (0.0, 1.0, 2.0), 50, seed=1, records=10)
    fig = pspin_figure(sweep, threshold=-0.5, title="p-spin")
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()] == [
        "beta 0",
        "beta 1",
        "beta 2",
        "threshold",
    ]
    assert len(right.get_lines()[0].get_xdata()) == 3


def test_theory_figures_command_writes_every_figure(tmp_path, capsys):
    args = ["--d", "10", "--pspin-n", "8", "--steps", "20", "--grid", "4", "--dfa-epochs", "2"]
    args += ["--dfa-restarts", "2"]
    args += ["--convit-seeds", "1", "--convit-steps", "1", "--convit-fractions", "0.1"]
    assert main([str(tmp_path), *args, "--tcnn-steps", "1", "1"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "convit.md",
        "convit_digits.png",
        "dfa_degeneracy.png",
        "dfa_memorisation.png",
        "pspin_energy.png",
        "pspin_spike.png",
        "rf_phase_space_relu.png",
        "rf_phase_space_tanh.png",
        "tcnn_digits.png",
    ]
    assert capsys.readouterr().out.count(".png") == 8
    pngs = [p for p in tmp_path.iterdir() if p.suffix == ".png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    report = (tmp_path / "convit.md").read_text()
    assert report.startswith("# ConViT / T-CNN") and "out of scope for a CPU workflow" in report
    assert f"]({tmp_path.name}/convit_digits.png)" in report
    write_summary({}, [], tmp_path / "README.md", cas_paths=[tmp_path / "convit.md"])
    summary = (tmp_path / "README.md").read_text()
    assert "## ConViT / T-CNN on 8 x 8 digits (theory)" in summary and "| ViT" in summary


def test_dfa_figure_has_both_rules_and_every_layer():
    curves = align_then_memorise(epochs=3, sizes=(9, 8, 8, 2), points=3)
    assert curves["dfa"].epochs == [0, 1, 3] and curves["dfa"].loss[-1] < curves["dfa"].loss[0]
    left, mid, right = dfa_figure(curves).axes
    assert [line.get_label() for line in left.get_lines()] == ["dfa", "bp"]
    assert [line.get_label() for line in mid.get_lines()] == ["layer1", "layer2", "all"]
    assert [line.get_label() for line in right.get_lines()] == ["layer2", "layer3"]


def test_theory_settings_are_the_writers_keywords():
    """The workflow's theory job calls write_theory_figures(out, **plan.theory)."""
    import inspect

    from synthmath.report.convit import write_convit
    from synthmath.report.theory import write_theory_figures
    from synthmath.runs.config import validate_config

    tiny = {"studies": {"lin": {"task": "linalg", "params": {"op": "transpose", "dim": 3}}}}
    theory = validate_config({**tiny, "theory": {}}).theory
    assert set(theory) == set(inspect.signature(write_theory_figures).parameters) - {"out_dir"}
    assert set(theory["convit"]) == set(inspect.signature(write_convit).parameters) - {"out_dir"}


def test_degeneracy_figure_has_one_point_per_restart_and_rule():
    restarts = [Restart("dfa", s, 1e-3 * s, 0.6, 0.5 + 0.01 * s) for s in (1, 2, 3)]
    restarts += [Restart("bp", s, 2e-3 * s, 0.01, -0.05 * s) for s in (1, 2, 3)]
    weight, grad = degeneracy_figure(restarts, title="t").axes
    labels = [c.get_label() for c in weight.collections]
    assert labels == ["dfa (3 restarts)", "bp (3 restarts)"]
    np.testing.assert_allclose(weight.collections[1].get_offsets()[:, 1], [-0.05, -0.1, -0.15])
    np.testing.assert_allclose(grad.collections[0].get_offsets()[:, 1], [0.6] * 3)
    assert weight.get_xscale() == "log"


def test_results_readme_links_every_theory_figure_with_its_captions(tmp_path):
    assert set(CAPTIONS) == set(FIGURE_PNGS)  # a new figure needs its caption
    assert set(FIGURE_NAMES) - set(FIGURE_PNGS) == {"convit.md"}
    readme = tmp_path / "README.md"
    write_summary({}, [], readme, theory_paths=[tmp_path / "theory" / n for n in FIGURE_PNGS])
    text = readme.read_text()
    for name in FIGURE_PNGS:
        assert f"](theory/{name})" in text
        shows, predicts = CAPTIONS[name]
        assert f"**Shows:** {shows}" in text and f"**Paper:** {predicts}" in text
    write_summary({}, [], readme)
    assert "theory/" not in readme.read_text()  # no theory section: none
