"""Tasks per node over time: where a service's tasks ran while nodes failed,
joined or changed availability.

Drawn from the task samples a scenario's ``snapshot`` and ``watch_tasks``
steps recorded (`scenarios.steps.tasks`): one line per node, the number of
tasks desired running and running there *as the store said* at each sample
-- so a dead node keeps its tasks on this figure until the leader writes
them off, which is the point of the node-failure note.  A bar under the axis
shows when the swarm listed a node down; marks (a kill, a drain, a join) are
vertical lines labelled inside the axes, stacked when they are close.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from viz.figures.base import GRID, NODE_COLORS, NODE_DASHES, natural, new_figure

__all__ = ["down_spans", "tasks_per_node_figure"]


def down_spans(samples: Sequence[dict[str, Any]], node: str) -> list[tuple[float, float]]:
    """(first, last) sample times of each run of samples listing ``node`` down: a
    sample holds until the next one (the watch records only changes)."""
    spans: list[tuple[float, float]] = []
    start = None
    for i, s in enumerate(samples):
        down = s["nodes"].get(node, {}).get("state") == "down"
        if down and start is None:
            start = s["t"]
        if start is not None and (not down or i == len(samples) - 1):
            spans.append((start, s["t"]))
            start = None
    return spans


def _running(sample: dict[str, Any], node: str) -> int:
    return sum(
        1
        for t in sample["tasks"]
        if t["node"] == node and t["desired"] == "running" and t["state"] == "running"
    )


def tasks_per_node_figure(
    samples: Sequence[dict[str, Any]],
    t0: float,
    marks: Sequence[tuple[float, str]] = (),
    title: str = "Running tasks per node, as the store said",
    shade: Sequence[tuple[float, float, str]] = (),
) -> Figure:
    """``samples``: task samples in time order (``t``, ``nodes``, ``tasks``);
    ``t0``: the time axis origin (Unix seconds); ``marks``: (Unix time, label);
    ``shade``: (start, end, label) spans to shade, such as a lost quorum."""
    fig = new_figure(4.0, width=9)
    ax = fig.subplots()
    nodes = sorted({n for s in samples for n in s["nodes"]}, key=natural)
    xs = [s["t"] - t0 for s in samples]
    # The last state holds on a little, so a change at the last sample is visible.
    tail = 0.04 * max(xs[-1] - xs[0], 1.0)
    top = max((_running(s, n) for s in samples for n in nodes), default=1)
    band = 0.12
    for i, node in enumerate(nodes):
        color = NODE_COLORS[i % len(NODE_COLORS)]
        # Nudged apart a little, so nodes with the same count stay visible side by side.
        nudge = 0.05 * (i - (len(nodes) - 1) / 2)
        ys = [_running(s, node) + nudge for s in samples]
        dash = NODE_DASHES[i % len(NODE_DASHES)]
        ax.step([*xs, xs[-1] + tail], [*ys, ys[-1]], where="post", color=color, lw=1.8, ls=dash,
                label=node)  # fmt: skip
        for a, b in down_spans(samples, node):
            y = -0.35 - band * i
            end = b - t0 + (tail if b == samples[-1]["t"] else 0.0)
            ax.plot([a - t0, end], [y, y], color=color, lw=4, solid_capstyle="butt")
            ax.text(a - t0, y, f"{node} down ", color=color, fontsize=7, ha="right", va="center")
    for a, b, label in shade:
        ax.axvspan(a - t0, b - t0, color="#f4cccc", alpha=0.5, lw=0, zorder=0)
        ax.text((a + b) / 2 - t0, -0.25, label, color="#990000", fontsize=8, ha="center",
                va="top")  # fmt: skip
    levels: list[float] = []  # x of the last label on each text row
    span = (xs[-1] - min(xs[0], *(t - t0 for t, _ in marks))) if marks else 1.0
    for t, label in sorted(marks):
        x = t - t0
        ax.axvline(x, color="#c0392b", lw=1, ls=":")
        row = next((k for k, last in enumerate(levels) if x - last > 0.18 * span), len(levels))
        if row == len(levels):
            levels.append(x)
        levels[row] = x
        # Near the right edge a label goes to the left of its line, inside the axes.
        right = x > xs[0] + 0.7 * (xs[-1] + tail - xs[0])
        text = f"{label} " if right else f" {label}"
        ax.text(x, top + 1.1 - 0.35 * row, text, color="#c0392b", fontsize=8, va="top",
                ha="right" if right else "left")  # fmt: skip
    ax.set_ylim(-0.45 - band * len(nodes), top + 1.2)
    ax.set_yticks(range(0, top + 1))
    ax.set_xlabel("seconds")
    ax.set_ylabel("running tasks")
    ax.grid(color=GRID)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              borderaxespad=0, title="node", title_fontsize=8)  # fmt: skip
    ax.set_title(title, loc="left", fontsize=10)
    return fig
