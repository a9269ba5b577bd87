"""Study figures: every kind with axis labels, wrapped titles, distinguishable series."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from synthmath.report.figures import figure, plot, plot_threshold, series_style, wrap_title
from synthmath.report.tables import SeedTable

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {"rows": "position encoding", "cols": "digits", "metric": "exact-match accuracy (%)"}
TITLE = "Addition trained on up to 4 digits: exact-match accuracy against the test length, per position encoding"


def table() -> pd.DataFrame:
    """Two identical series (both 100% then 0%) and a third one."""
    frame = pd.DataFrame(
        [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.9, 0.5]],
        index=["learned", "rpe_k", "abacus"],
        columns=["4", "5", "8"],
    )
    frame.index.name, frame.columns.name = "positions", "test_set"
    return frame


@pytest.mark.parametrize("kind", ["bars", "heatmap", "lines"])
def test_each_kind_names_its_axes_and_wraps_the_title(tmp_path, kind):
    seeds = SeedTable(table(), table() - 0.1, table(), 3)
    fig = figure(table(), kind, "acc", TITLE, seeds=seeds, labels=LABELS)
    ax = fig.axes[0]
    expected = {
        "lines": ("digits", "exact-match accuracy (%)"),
        "bars": ("position encoding", "exact-match accuracy (%)"),
        "heatmap": ("digits", "position encoding"),
    }[kind]
    assert (ax.get_xlabel(), ax.get_ylabel()) == expected
    title = fig.get_suptitle()
    assert "\n" in title and title.replace("\n", " ") == TITLE
    fig.canvas.draw()  # the wrapped title lies inside the figure
    box = fig._suptitle.get_window_extent()
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width
    if kind == "heatmap":
        assert fig.axes[1].get_ylabel() == "exact-match accuracy (%)"  # the colour bar
    else:
        legend = ax.get_legend()
        assert legend.get_title().get_text() == (
            "position encoding" if kind == "lines" else "digits"
        )
    plt.close(fig)
    plot(table(), kind, "acc", TITLE, tmp_path / f"{kind}.png", labels=LABELS)
    assert (tmp_path / f"{kind}.png").stat().st_size > 1000


def test_default_axis_names_are_readable():
    fig = figure(table(), "lines", "acc", "t")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "test set" and ax.get_legend().get_title().get_text() == "positions"
    assert ax.get_ylabel() == "acc (%)"
    plt.close(fig)
    with pytest.raises(ValueError, match="report.labels: unknown key 'x'"):
        figure(table(), "lines", "acc", "t", labels={"x": "digits"})


def test_identical_series_get_different_markers_and_line_styles():
    fig = figure(table(), "lines", "acc", "t")
    first, second = fig.axes[0].get_lines()[:2]
    assert list(first.get_ydata()) == list(second.get_ydata())  # on top of each other
    assert first.get_marker() != second.get_marker()
    assert first.get_linestyle() != second.get_linestyle()
    assert first.get_markersize() > second.get_markersize()
    plt.close(fig)
    styles = [series_style(i) for i in range(4)]
    assert len({(s["marker"], s["linestyle"]) for s in styles}) == 4


def test_threshold_plot_with_labels(tmp_path):
    smallest = pd.Series([10.0, float("nan")], index=["1000000", "5000000"], name="prime_size")
    smallest.index.name = "train_size"
    labels = {"rows": "training examples", "cols": "priming examples"}
    plot_threshold(smallest, 0.9, "train_size", TITLE, tmp_path / "t.png", labels=labels)
    assert (tmp_path / "t.png").stat().st_size > 1000
    assert wrap_title("short", 5.5) == "short"
