"""Figures drawn from plain data the callers pass (bench, quorum table, Jepsen):
the models without a figure, then a real PNG of each."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pytest

from viz.figures import save
from viz.figures.bench import latency_figure, latency_model
from viz.figures.jepsen import FaultWindow, HistoryModel, OpBar, history_figure
from viz.figures.quorum_table import QuorumRow, quorum_table_figure


def assert_good_png(path: Path) -> None:
    """A PNG that decodes, of a real size, not one flat colour."""
    img = mpimg.imread(path)
    assert img.shape[0] > 200 and img.shape[1] > 300
    assert img.std() > 0.01


def test_latency_model_groups_by_phase_relative_to_the_start():
    samples = [(10.5, 2.0, "steady"), (11.0, 40.0, "failover"), (12.0, 3.0, "steady")]
    m = latency_model(samples, [(10.9, 11.4)], t0=10.0, managers=3)
    assert list(m.phases) == ["steady", "failover"]
    assert m.phases["steady"] == ((0.5, 2.0), (2.0, 3.0))
    assert m.windows == (pytest.approx((0.9, 1.4)),)
    assert m.managers == 3


def test_latency_figure(tmp_path):
    m = latency_model([(1.0 + i / 10, 1.0 + i % 7, "steady") for i in range(50)], [(2, 3)], 1, 5)
    (png,) = save(latency_figure(m), tmp_path / "latency", ("png",))
    assert png.name == "latency.png"
    assert_good_png(png)
    ax = latency_figure(m).axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "Write latency over time, 5 managers"
    # What was drawn: a point per sample, and the failover window shaded.
    (points,) = ax.collections
    xs, ys = points.get_offsets().T
    assert list(xs) == pytest.approx([i / 10 for i in range(50)])  # seconds since t0 = 1
    assert list(ys) == [1.0 + i % 7 for i in range(50)]
    (window,) = ax.patches
    assert window.get_x() == pytest.approx(1.0) and window.get_width() == pytest.approx(1.0)


def test_quorum_table_figure(tmp_path):
    rows = [QuorumRow(n, n // 2 + 1, (n - 1) // 2, (n - 1) // 2) for n in (1, 2, 3, 4, 5)]
    fig = quorum_table_figure(rows)
    ax = fig.axes[0]
    assert [t for t in ax.get_xticks()] == [1, 2, 3, 4, 5]
    assert len(ax.patches) == 10  # a quorum bar and a tolerance bar per size
    quorums, survived = (
        [p.get_height() for p in ax.patches[:5]],
        [p.get_height() for p in ax.patches[5:]],
    )
    assert quorums == [1, 2, 2, 3, 3] and survived == [0, 0, 1, 1, 2]
    assert_good_png(save(fig, tmp_path / "quorum-table", ("png",))[0])


def test_history_figure_marks_every_outcome(tmp_path):
    bars = tuple(
        OpBar(i % 3, i * 0.1, 0.01 if s == "ok" else 1.0, s, "read")
        for i, s in enumerate(["ok", "fail", "info"] * 10)
    )
    model = HistoryModel(bars, (FaultWindow(1.0, 2.0, "kill", "kill manager2", "kill m2"),),
                         (0, 1, 2), 4.0)  # fmt: skip
    fig = history_figure(model, "three outcomes")
    top, bottom = fig.axes
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert labels == ["ok", "fail (no effect)", "unknown (may take effect)", "kill"]
    assert [t.get_text() for t in top.get_yticklabels()] == ["client 0", "client 1", "client 2"]
    assert bottom.get_yscale() == "log"
    # What was drawn: one bar per operation (30) and a marker at the end of
    # each that did not answer ok (20), in the rows of their clients.
    bars_drawn = sum(len(c.get_paths()) for c in top.collections)
    assert bars_drawn == 30
    ends = sorted(x for ln in top.lines for x in ln.get_xdata())
    assert ends == pytest.approx(sorted(b.start + b.length for b in bars if b.status != "ok"))
    assert_good_png(save(fig, tmp_path / "history", ("png",), dpi=130)[0])
