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
