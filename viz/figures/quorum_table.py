"""Quorum and fault tolerance by cluster size, as the quorum-table scenario measured them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from viz.figures.base import new_figure

__all__ = ["QuorumRow", "draw_quorum_table", "quorum_table_figure"]


@dataclass(frozen=True, slots=True)
class QuorumRow:
    """One cluster size: its quorum, the tolerance arithmetic predicts, the one measured."""

    managers: int
    quorum: int
    expected_tolerance: int
    measured_tolerance: int


def draw_quorum_table(ax: Axes, rows: Sequence[QuorumRow]) -> None:
    """Bars of quorum and measured tolerance per N, the (N-1)/2 prediction as ticks."""
    ns = [r.managers for r in rows]
    ax.bar([n - 0.2 for n in ns], [r.quorum for r in rows], 0.4, label="quorum ⌊N/2⌋+1",
           color="#9ecae1")  # fmt: skip
    ax.bar([n + 0.2 for n in ns], [r.measured_tolerance for r in rows], 0.4,
           label="failures survived (measured)", color="#fd8d3c")  # fmt: skip
    ax.plot(ns, [r.expected_tolerance for r in rows], "k_", markersize=18, mew=2,
            label="⌊(N-1)/2⌋ (theory)")  # fmt: skip
    ax.set_xticks(ns)
    ax.set_xlabel("managers N")
    ax.set_ylabel("managers")
    ax.set_title("Quorum and fault tolerance by cluster size")
    ax.legend(loc="upper left", frameon=False)


def quorum_table_figure(rows: Sequence[QuorumRow]) -> Figure:
    fig = new_figure(4, width=8)
    draw_quorum_table(fig.subplots(), rows)
    return fig
