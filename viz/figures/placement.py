"""Task placement: which node runs which task, before and after."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from viz.figures.base import GRID, natural, new_figure

__all__ = ["draw_placement", "placement_figure"]


# ====================================================================== placement


def _as_task_map(d: Mapping[str, Any]) -> dict[str, str]:
    """task -> node, from either task -> node or node -> [tasks]."""
    if all(isinstance(v, list | tuple | set) for v in d.values()):
        return {str(t): str(node) for node, ts in d.items() for t in ts}
    return {str(t): str(node) for t, node in d.items() if node is not None}


def draw_placement(
    ax: Axes,
    before: Mapping[str, Any],
    after: Mapping[str, Any] | None = None,
    title: str | None = None,
    *,
    nodes: Sequence[str] | None = None,
) -> None:
    """Task placement grid: a row per node, a column per task.

    ``before`` and ``after`` map task -> node (or node -> list of tasks).
    Before is a hollow square, after a filled circle; a task that moved gets
    its column label in bold (a task new in ``after`` is not one that moved)."""
    b = _as_task_map(before)
    a = _as_task_map(after) if after is not None else None
    tasks = sorted(set(b) | set(a or {}), key=natural)
    all_nodes = list(nodes) if nodes is not None else sorted(
        set(b.values()) | set((a or {}).values()), key=natural
    )  # fmt: skip
    row = {n: len(all_nodes) - 1 - i for i, n in enumerate(all_nodes)}
    # Moved: placed before and after, on different nodes.  A task that only
    # exists after (a scale-up) or only before (a scale-down) did not move.
    moved = [t for t in tasks if a is not None and t in b and t in a and b[t] != a[t]]
    for x, t in enumerate(tasks):
        if t in b and b[t] in row:
            ax.plot(x, row[b[t]], ls="", marker="s", ms=15, mfc="none", mec="#555555", mew=1.4)
        if a is not None and t in a and a[t] in row:
            ax.plot(x, row[a[t]], ls="", marker="o", ms=8, color="#1f5f8b")
        if t in moved and t in b and t in a and b[t] in row and a[t] in row:
            ax.annotate("", xy=(x, row[a[t]]), xytext=(x, row[b[t]]),
                        arrowprops={"arrowstyle": "->", "color": "#c0392b", "lw": 1,
                                    "shrinkA": 9, "shrinkB": 6})  # fmt: skip
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right", fontsize=8)
    for lbl in ax.get_xticklabels():
        if lbl.get_text() in moved:
            lbl.set_fontweight("bold")
    ax.set_yticks(range(len(all_nodes)), list(reversed(all_nodes)))
    ax.set_xlim(-0.6, max(len(tasks), 1) - 0.4)
    ax.set_ylim(-0.6, max(len(all_nodes), 1) - 0.4)
    ax.grid(color=GRID)
    ax.set_axisbelow(True)
    ax.set_xlabel("task")
    handles = [Line2D([], [], ls="", marker="s", ms=10, mfc="none", mec="#555555", mew=1.4,
                      label="before" if a is not None else "placed")]  # fmt: skip
    if a is not None:
        handles.append(Line2D([], [], ls="", marker="o", ms=7, color="#1f5f8b", label="after"))
        if moved:
            handles.append(Line2D([], [], color="#c0392b", lw=1, label="moved"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False, borderaxespad=0)  # fmt: skip
    if title is None:
        if a is None:
            title = f"{len(tasks)} tasks on {len(set(b.values()))} nodes"
        elif not moved:
            title = f"No task moved ({len(tasks)} tasks)"
        else:
            sources = sorted({b[t] for t in moved if t in b}, key=natural)
            src = f" off {', '.join(sources)}" if len(sources) <= 2 else ""
            title = f"{len(moved)} of {len(tasks)} tasks moved{src}"
    ax.set_title(title, loc="left")


def placement_figure(
    before: Mapping[str, Any], after: Mapping[str, Any] | None = None, title: str | None = None
) -> Figure:
    fig = new_figure(3.6, width=9)
    draw_placement(fig.subplots(), before, after, title)
    return fig
