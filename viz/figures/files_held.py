"""Which node holds which secret or config file, at one or more instants.

A panel per snapshot (a ``files_held`` step of a scenario), a row per node,
a column per file.  A filled mark: the node's agent holds the file in memory;
an open ring: a running task there uses it but the agent does not hold it (a
missing delivery -- the check fails then, and the figure shows where); a dot:
neither.  Secrets and configs differ by colour *and* shape (grayscale-safe).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from viz.figures.base import GRID, natural, new_figure

__all__ = ["FilesSnapshot", "draw_files_held", "files_held_figure"]

_SECRET = {"marker": "D", "color": "#8e2c2c"}
_CONFIG = {"marker": "s", "color": "#1f5f8b"}


@dataclass(frozen=True, slots=True)
class FilesSnapshot:
    """One look: ``label`` (e.g. "step 12"), and per node the files held and used."""

    label: str
    held: Mapping[str, Mapping[str, Sequence[str]]]
    used: Mapping[str, Mapping[str, Sequence[str]]]


def _files(snaps: Sequence[FilesSnapshot]) -> list[tuple[str, str]]:
    """(kind, name) of every file any snapshot mentions: secrets first, by name."""
    found = {
        (kind, f)
        for s in snaps
        for per_node in (s.held, s.used)
        for kinds in per_node.values()
        for kind, names in kinds.items()
        for f in names
    }
    return sorted(found, key=lambda kf: (kf[0] != "secrets", natural(kf[1])))


def draw_files_held(ax: Axes, snap: FilesSnapshot, files: list[tuple[str, str]],
                    nodes: list[str]) -> None:  # fmt: skip
    row = {n: len(nodes) - 1 - i for i, n in enumerate(nodes)}
    for x, (kind, name) in enumerate(files):
        style = _SECRET if kind == "secrets" else _CONFIG
        for node in nodes:
            held = name in snap.held.get(node, {}).get(kind, [])
            used = name in snap.used.get(node, {}).get(kind, [])
            y = row[node]
            if held:
                ax.plot(x, y, ls="", ms=10, **style)
            elif used:
                ax.plot(x, y, ls="", ms=12, mfc="none", mew=1.6, marker="o", color=style["color"])
            else:
                ax.plot(x, y, ls="", marker=".", ms=4, color="#bbbbbb")
    ax.set_xticks(range(len(files)), [n for _, n in files], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(nodes)), list(reversed(nodes)))
    ax.set_xlim(-0.6, max(len(files), 1) - 0.4)
    ax.set_ylim(-0.6, max(len(nodes), 1) - 0.4)
    ax.grid(color=GRID)
    ax.set_axisbelow(True)
    ax.set_title(textwrap.fill(snap.label, 46), loc="left", fontsize=9)


def files_held_figure(snaps: Sequence[FilesSnapshot], title: str) -> Figure:
    """One panel per snapshot, side by side, sharing the node rows and file columns."""
    files = _files(snaps)
    nodes = sorted({n for s in snaps for n in s.held} | {n for s in snaps for n in s.used},
                   key=natural)  # fmt: skip
    fig = new_figure(1.6 + 0.4 * max(len(nodes), 3), width=3.0 + 3.4 * len(snaps))
    axes: Any = fig.subplots(1, len(snaps), sharey=True, squeeze=False)[0]
    for ax, snap in zip(axes, snaps, strict=True):
        draw_files_held(ax, snap, files, nodes)
    handles = [
        Line2D([], [], ls="", ms=8, label="secret held (in memory)", **_SECRET),
        Line2D([], [], ls="", ms=8, label="config held (plain)", **_CONFIG),
        Line2D(
            [],
            [],
            ls="",
            ms=9,
            marker="o",
            mfc="none",
            color="#555555",
            label="used by a task there, not held",
        ),
        Line2D([], [], ls="", marker=".", ms=4, color="#bbbbbb", label="neither"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    return fig
