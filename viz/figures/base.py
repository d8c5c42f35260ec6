"""What every figure shares: styles, axis helpers, making and saving a figure.

Every mark is readable in grayscale: roles and faults differ by hatching as
well as by colour, client outcomes by marker shape, nodes by line style.
Times on x axes are seconds from the first trace line.  Figures are built
with `matplotlib.figure.Figure` directly: no pyplot, so no global figure
registry to leak from and no GUI backend; ``savefig`` renders with Agg (PNG)
or the vector backends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from viz.model import DOWN, LEARNER, LOCKED, OUTSIDE, PAUSED, TraceModel

#: role -> (face colour, hatch, text colour).  Light to dark as the role "rises".
ROLE_STYLE: dict[str, tuple[str, str, str]] = {
    "follower": ("#d6e6f4", "", "#1b3a57"),
    "pre-candidate": ("#fde3b3", "...", "#5a3b00"),
    "candidate": ("#f4a261", "///", "#3d1f00"),
    "leader": ("#1f5f8b", "", "#ffffff"),
    LEARNER: ("#8fd1b0", "||", "#0b3d2a"),
    OUTSIDE: ("#f4f4f4", "--", "#666666"),
    DOWN: ("#3b3b3b", "xx", "#ffffff"),
    PAUSED: ("#a9a9a9", "\\\\\\", "#111111"),
    LOCKED: ("#c7b8e0", "oo", "#2b1a4a"),
}
#: States only some runs have (membership changes, autolock): in the legend when they occur.
MEMBERSHIP_STATES = (LEARNER, OUTSIDE, LOCKED)
#: States whose band is labelled with the state's name, not only the term.
NAMED_STATES = (DOWN, PAUSED, LEARNER, OUTSIDE, LOCKED)

#: fault kind -> (colour, hatch, label).
FAULT_STYLE: dict[str, tuple[str, str, str]] = {
    "kill": ("#c0392b", "xx", "kill / restart"),
    "pause": ("#d68910", "..", "pause / unpause"),
    "partition": ("#7d3c98", "//", "partition / heal"),
}

#: client outcome -> (colour, marker, label).
OUTCOME_STYLE: dict[str, tuple[str, str, str]] = {
    "ok": ("#1e8449", "o", "write ok"),
    "fail": ("#c0392b", "X", "write failed"),
    "timeout": ("#d68910", "s", "write timed out"),
    "unknown": ("#7f7f7f", "D", "outcome unknown"),
}

NODE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
NODE_DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 3)))
TERM_COLORS = ("#cfe2f3", "#f9cb9c", "#b6d7a8", "#d5a6bd", "#ffe599", "#a2c4c9", "#ea9999")
TERM_HATCHES = ("", "/", ".", "\\", "x", "-", "o")

EDGE = "#ffffff"
GRID = "#e5e5e5"


# ====================================================================== helpers


def xaxis(ax: Axes, model: TraceModel) -> None:
    ax.set_xlim(0, max(model.end, 1e-3))
    ax.set_xlabel("seconds from the start of the trace")


#: Fault labels above the lanes: font size, and the height of one row of them (points).
LABEL_SIZE = 8
LABEL_ROW = 11


def label_rows(starts: Sequence[float], widths: Sequence[float]) -> list[tuple[int, bool]]:
    """Where each fault label goes, in axes fractions: for a label starting at
    ``starts[i]`` and ``widths[i]`` wide, (its row above the axes, whether it is
    drawn leftwards from its line because it would run past the right edge).

    Each label takes the lowest row in which it overlaps no label already
    placed, so labels never print over each other however close the faults
    are; the caller reserves as many rows above the axes (`fault_lines`)."""
    gap = 0.006
    taken: list[list[tuple[float, float]]] = []
    out: list[tuple[int, bool]] = []
    for x, w in zip(starts, widths, strict=True):
        leftwards = x + w > 1.0
        lo, hi = (x - w, x) if leftwards else (x, x + w)
        row = 0
        while row < len(taken) and any(lo < b + gap and a < hi + gap for a, b in taken[row]):
            row += 1
        if row == len(taken):
            taken.append([])
        taken[row].append((lo, hi))
        out.append((row, leftwards))
    return out


def _text_width(ax: Axes, text: str) -> float:
    """``text``'s width at `LABEL_SIZE`, as a fraction of the axes' width."""
    from matplotlib.textpath import TextPath

    points = TextPath((0, 0), text, size=LABEL_SIZE).get_extents().width + 4
    fig = ax.get_figure()
    axes_points = ax.get_position().width * fig.get_figwidth() * 72 if fig else 600.0
    return points / max(axes_points, 1.0)


def fault_lines(ax: Axes, model: TraceModel, labels: bool) -> int:
    """A vertical line where each fault began (solid) and was undone (dotted);
    with ``labels``, each fault's label above the axes, in rows that never
    overlap (`label_rows`).  Returns the number of label rows used, so the
    caller can put the title above them."""
    span = max(model.end, 1e-3)
    ivs = sorted(model.fault_intervals, key=lambda iv: iv.start)
    for iv in ivs:
        color = FAULT_STYLE[iv.kind][0]
        ax.axvline(iv.start, color=color, lw=1.3, zorder=4)
        if iv.healed:
            ax.axvline(iv.end, color=color, lw=1.1, ls=":", zorder=4)
    if not labels or not ivs:
        return 0
    # The axes' share of the figure before layout: constrained layout only
    # narrows it a little (the legend), so widths are estimated generously.
    widths = [_text_width(ax, iv.label) * 1.1 for iv in ivs]
    places = label_rows([iv.start / span for iv in ivs], widths)
    for iv, (row, leftwards) in zip(ivs, places, strict=True):
        ax.annotate(
            iv.label,
            xy=(iv.start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-2 if leftwards else 2, 3 + LABEL_ROW * row),
            textcoords="offset points",
            fontsize=LABEL_SIZE,
            color=FAULT_STYLE[iv.kind][0],
            ha="right" if leftwards else "left",
            va="bottom",
            annotation_clip=False,
        )
    return 1 + max(row for row, _ in places)


#: fault kind -> what its solid line and its dotted line mark, in the legend.
FAULT_LEGEND = {
    "kill": ("kill", "restart"),
    "pause": ("pause (SIGSTOP)", "unpause"),
    "partition": ("partition", "heal"),
}


def fault_handles(model: TraceModel) -> list[Any]:
    """Legend entries for the fault lines `fault_lines` draws: a solid line where a
    fault began and, when one was undone, a dotted one where it ended."""
    out: list[Any] = []
    for kind, (color, _h, _label) in FAULT_STYLE.items():
        ivs = [iv for iv in model.fault_intervals if iv.kind == kind]
        if not ivs:
            continue
        began, ended = FAULT_LEGEND[kind]
        out.append(Line2D([], [], color=color, lw=1.3, label=began))
        if any(iv.healed for iv in ivs):
            out.append(Line2D([], [], color=color, lw=1.1, ls=":", label=ended))
    return out


def node_style(i: int) -> tuple[str, Any]:
    return NODE_COLORS[i % len(NODE_COLORS)], NODE_DASHES[i % len(NODE_DASHES)]


def steps_xy(times: Sequence[float], values: Sequence[int | None], end: float) -> tuple:
    xs = [*times, end] if times else []
    ys = [float("nan") if v is None else v for v in values]
    if ys:
        ys.append(ys[-1])
    return xs, ys


def natural(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


WIDTH = 12.0


def new_figure(height: float, width: float = WIDTH, dpi: int = 110) -> Figure:
    """A figure laid out by matplotlib's constrained layout, not tied to pyplot."""
    return Figure(figsize=(width, height), layout="constrained", dpi=dpi)


def save(
    fig: Figure, base: Path, formats: Iterable[str] = ("png", "svg"), dpi: float | None = None
) -> list[Path]:
    """Write ``base.<fmt>`` for each format; the paths written.  ``dpi`` applies
    to raster formats only (the figure's own when None)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = base.with_suffix(f".{fmt}")
        raster = dpi if fmt == "png" and dpi is not None else "figure"
        fig.savefig(path, format=fmt, dpi=raster)
        out.append(path)
    return out
