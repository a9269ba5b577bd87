"""The figure of `synthmath fit symreg --plot`: one panel, or two with a curve in 1-D."""

from __future__ import annotations

import numpy as np

from synthmath.report.fits import plot_fit


def test_plot_fit_writes_one_or_two_panels(tmp_path, monkeypatch):
    import matplotlib.figure

    panels = []
    save = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(
        matplotlib.figure.Figure,
        "savefig",
        lambda fig, *a, **k: (panels.append(len(fig.axes)), save(fig, *a, **k))[1],
    )
    x = np.linspace(-2, 2, 30)[:, None]
    y = np.sin(x[:, 0])
    plot_fit(tmp_path / "one.png", x, y, y, curve=lambda g: np.sin(g[:, 0]), x_name="t")
    y_hat = np.where(y > 0.5, np.nan, y)  # non-finite predictions are left out
    plot_fit(tmp_path / "two.svg", np.hstack([x, x]), y, y_hat, curve=lambda g: g[:, 0])
    assert panels == [2, 1]
    assert (tmp_path / "one.png").stat().st_size > 1000
    assert (tmp_path / "two.svg").read_text().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png", "two.svg"]  # atomic


def test_plot_trajectory_draws_one_panel_per_component(tmp_path, monkeypatch):
    import matplotlib.figure

    from synthmath.report.fits import plot_trajectory

    titles = []
    save = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(
        matplotlib.figure.Figure,
        "savefig",
        lambda fig, *a, **k: (titles.append([ax.get_title("left") for ax in fig.axes]),
                              save(fig, *a, **k))[1],
    )  # fmt: skip
    t = np.linspace(0, 5, 40)
    values = np.stack([np.cos(t), np.sin(t), t], axis=1)
    fine = np.linspace(0, 5, 200)
    fitted = np.stack([np.cos(fine), np.where(fine > 4, np.nan, np.sin(fine)), fine], axis=1)
    labels = ["x' = -y", "y' = x", "z' = 1"]
    plot_trajectory(
        tmp_path / "traj.png", t, values, fine, fitted, names=list("xyz"), labels=labels
    )
    assert titles == [labels]
    assert (tmp_path / "traj.png").stat().st_size > 1000
