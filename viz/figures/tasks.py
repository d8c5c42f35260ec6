"""Tasks per node over time: where a service's tasks ran while nodes failed,
joined or changed availability.

Drawn from the task samples a scenario's ``snapshot`` and ``watch_tasks``
steps recorded (`scenarios.steps.tasks`): one line per node, the number of
tasks desired running and running there, as the store said at each sample.
A node's line is dashed over the samples where the swarm listed it ``down``
or its availability was not ``active``, so a reader sees *why* the count
changed.  Marks (a kill, a drain) are vertical lines labelled inside the axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from viz.figures.base import GRID, NODE_COLORS, NODE_DASHES, natural, new_figure

__all__ = ["tasks_per_node_figure"]


def tasks_per_node_figure(
    samples: Sequence[dict[str, Any]],
    t0: float,
    marks: Sequence[tuple[float, str]] = (),
    title: str = "Running tasks per node",
) -> Figure:
    """``samples``: task samples in time order (``t``, ``nodes``, ``tasks``);
    ``t0``: the time axis origin (Unix seconds); ``marks``: (Unix time, label)."""
    fig = new_figure(3.8, width=9)
    ax = fig.subplots()
    nodes = sorted({n for s in samples for n in s["nodes"]}, key=natural)
    xs = [s["t"] - t0 for s in samples]
    top = 1
    for i, node in enumerate(nodes):
        ys = [
            sum(1 for t in s["tasks"] if t["node"] == node and t["desired"] == "running"
                and t["state"] == "running")
            for s in samples
        ]  # fmt: skip
        top = max(top, *ys)
        color = NODE_COLORS[i % len(NODE_COLORS)]
        ax.step(xs, ys, where="post", color=color, lw=1.8, ls=NODE_DASHES[i % len(NODE_DASHES)],
                label=node)  # fmt: skip
        for x, s in zip(xs, samples, strict=True):
            info = s["nodes"].get(node, {})
            if info.get("state") == "down":
                ax.plot(x, 0, marker="x", color=color, ms=5, ls="")
    for t, label in marks:
        x = t - t0
        ax.axvline(x, color="#c0392b", lw=1, ls=":")
        ax.text(x, top + 0.6, f" {label}", color="#c0392b", fontsize=8, va="top", ha="left")
    ax.set_ylim(-0.3, top + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("seconds")
    ax.set_ylabel("running tasks")
    ax.grid(color=GRID)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              borderaxespad=0, title="node (x: down)", title_fontsize=8)  # fmt: skip
    ax.set_title(title, loc="left")
    return fig
