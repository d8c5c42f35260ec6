"""What each manager costs: commit latency, CPU per write and time to a new leader,
by cluster size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from viz.figures.base import GRID, new_figure

__all__ = ["CostRow", "costs_figure", "draw_cpu", "draw_election_times", "draw_latency"]


@dataclass(frozen=True, slots=True)
class CostRow:
    """One cluster size as measured (milliseconds and seconds; None: not measured)."""

    managers: int
    tolerance: int
    seq_p50_ms: float
    seq_p99_ms: float
    conc_p50_ms: float
    conc_p99_ms: float
    #: CPU time all managers together spent per sequential write.
    cpu_ms_per_write: float = 0.0
    #: Seconds from each leader kill to a new leader (none for one manager).
    elections_s: tuple[float, ...] = ()


def _tolerance_axis(ax: Axes, rows: Sequence[CostRow]) -> None:
    """The failures each size tolerates, on a second x axis at the top (and room
    around the sizes, so a note beside the first one stays inside)."""
    ns = [r.managers for r in rows]
    ax.set_xlim(min(ns) - 0.9, max(ns) + 0.9)
    top = ax.secondary_xaxis("top")
    top.set_xticks([r.managers for r in rows], [str(r.tolerance) for r in rows])
    top.set_xlabel("failures tolerated ⌊(N-1)/2⌋", fontsize=9)


def _frame(ax: Axes, rows: Sequence[CostRow], ylabel: str, title: str, grid: str = "both") -> None:
    """What the three panels share: one tick per size, axes from 0, the tolerance axis."""
    ax.set_xticks([r.managers for r in rows])
    ax.set_xlabel("managers N")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, None)
    ax.grid(axis=grid, color=GRID)  # type: ignore[arg-type]
    ax.set_axisbelow(True)
    ax.set_title(title, loc="left", fontsize=10)
    _tolerance_axis(ax, rows)


def draw_latency(ax: Axes, rows: Sequence[CostRow]) -> None:
    ns = [r.managers for r in rows]
    ax.plot(ns, [r.seq_p50_ms for r in rows], "o-", color="#1f5f8b", label="1 client: p50")
    ax.plot(ns, [r.seq_p99_ms for r in rows], "o--", color="#1f5f8b", mfc="white",
            label="1 client: p99")  # fmt: skip
    ax.plot(ns, [r.conc_p50_ms for r in rows], "s-", color="#d68910", label="clients at once: p50")
    ax.plot(ns, [r.conc_p99_ms for r in rows], "s--", color="#d68910", mfc="white",
            label="clients at once: p99")  # fmt: skip
    _frame(ax, rows, "write acknowledged after (ms)", "Commit latency")
    ax.legend(loc="upper left", fontsize=8, frameon=False)


def draw_cpu(ax: Axes, rows: Sequence[CostRow]) -> None:
    ns = [r.managers for r in rows]
    ax.bar(ns, [r.cpu_ms_per_write for r in rows], 0.8, color="#9ecae1", edgecolor="#1f5f8b")
    for r in rows:
        # Printed as the note's table prints it.
        ax.annotate(f"{r.cpu_ms_per_write:.2f}", xy=(r.managers, r.cpu_ms_per_write),
                    xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                    fontsize=8)  # fmt: skip
    _frame(ax, rows, "CPU ms per write, all managers", "What a write costs the cluster", "y")
    ax.set_ylim(0, max((r.cpu_ms_per_write for r in rows), default=1) * 1.18)


def draw_election_times(ax: Axes, rows: Sequence[CostRow]) -> None:
    measured = [r for r in rows if r.elections_s]
    for r in measured:
        ax.plot([r.managers] * len(r.elections_s), r.elections_s, "o", color="#7f7f7f",
                mfc="none", ms=6)  # fmt: skip
    if measured:
        ns = [r.managers for r in measured]
        med = [sorted(r.elections_s)[(len(r.elections_s) - 1) // 2] for r in measured]
        ax.plot(ns, med, "D-", color="#c0392b", label="median of the rounds")
        ax.plot([], [], "o", color="#7f7f7f", mfc="none", label="one round")
    for r in rows:
        if not r.elections_s:
            ax.annotate("no failover:\ntolerates 0", xy=(r.managers, 0), xytext=(0, 8),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8,
                        color="#555555")  # fmt: skip
    _frame(ax, rows, "kill of the leader -> new leader (s)", "Time to a new leader")
    ax.legend(loc="upper right", fontsize=8, frameon=False)


def costs_figure(rows: Sequence[CostRow], title: str) -> Figure:
    fig = new_figure(4.6, width=15)
    left, middle, right = fig.subplots(1, 3)
    draw_latency(left, rows)
    draw_cpu(middle, rows)
    draw_election_times(right, rows)
    fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    return fig
