"""The timeline: a lane of role bands per node over the quorum strip."""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from viz.figures.base import (
    EDGE,
    FAULT_STYLE,
    GRID,
    LABEL_ROW,
    LEARNER,
    MEMBERSHIP_STATES,
    NAMED_STATES,
    ROLE_STYLE,
    fault_handles,
    fault_lines,
    new_figure,
    steps_xy,
    xaxis,
)
from viz.model import TraceModel

__all__ = ["draw_quorum", "draw_timeline", "timeline_figure"]


# ====================================================================== timeline


def draw_timeline(
    ax: Axes,
    model: TraceModel,
    title: str | None = None,
    *,
    elections: bool = True,
    legend: bool = True,
) -> None:
    """One lane per node: a band per role (term printed on it), learner and
    not-a-member bands (from the configuration), down and paused bands,
    fault windows shaded and marked, elections as triangles."""
    nodes = model.nodes
    lane = {n: len(nodes) - 1 - i for i, n in enumerate(nodes)}  # first node on top
    height = 0.62
    span = max(model.end, 1e-3)
    for n in nodes:
        y = lane[n]
        for iv in model.roles.get(n, ()):
            face, hatch, text = ROLE_STYLE.get(iv.role, ROLE_STYLE["follower"])
            ax.add_patch(
                Rectangle(
                    (iv.start, y - height / 2),
                    iv.end - iv.start,
                    height,
                    facecolor=face,
                    hatch=hatch,
                    edgecolor=EDGE,
                    linewidth=0.6,
                    zorder=2,
                )
            )
            width = (iv.end - iv.start) / span
            label = None
            if iv.role in NAMED_STATES and width >= 0.06:
                label = iv.role
                if iv.role == LEARNER and iv.term is not None and width > 0.16:
                    label = f"learner, term {iv.term}"
            elif iv.term is None or iv.role in NAMED_STATES:
                continue
            elif width > 0.09:
                label = f"term {iv.term}"
            elif width > 0.022:
                label = str(iv.term)
            if label:
                ax.text(
                    (iv.start + iv.end) / 2,
                    y,
                    label,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=text,
                    zorder=3,
                    bbox={"boxstyle": "round,pad=0.15", "fc": face, "ec": "none", "alpha": 0.85}
                    if ROLE_STYLE.get(iv.role, ("", "", ""))[1]
                    else None,
                )
    # Partitions span every lane; kill and pause show in their node's lane.
    for iv in model.fault_intervals:
        if iv.kind == "partition":
            color, hatch, _ = FAULT_STYLE["partition"]
            ax.axvspan(iv.start, iv.end, color=color, alpha=0.08, zorder=1, lw=0)
            ax.axvspan(
                iv.start, iv.end, facecolor="none", edgecolor=color, hatch=hatch, alpha=0.35,
                lw=0, zorder=1,
            )  # fmt: skip
            # Outline the lanes cut off from the larger side.
            if iv.groups:
                main = max(iv.groups, key=len)
                for g in iv.groups:
                    if g is main:
                        continue
                    for n in g:
                        if n in lane:
                            ax.add_patch(
                                Rectangle(
                                    (iv.start, lane[n] - height / 2 - 0.06),
                                    iv.end - iv.start,
                                    height + 0.12,
                                    fill=False,
                                    edgecolor=color,
                                    lw=2,
                                    zorder=3,
                                )
                            )
    rows_used = fault_lines(ax, model, labels=True)
    if elections:
        for e in model.elections:
            if e.node not in lane:
                continue
            y = lane[e.node] - height / 2 - 0.1
            if e.pre_vote:
                ax.plot(e.t, y, marker="^", ms=5, mfc="white", mec="#555555", mew=0.8, zorder=5)
            else:
                won = e.outcome == "won"
                ax.plot(
                    e.t,
                    y,
                    marker="*" if won else "^",
                    ms=11 if won else 6,
                    color="#111111",
                    mec="white" if won else "#111111",
                    mew=0.5,
                    zorder=5,
                )
    ax.set_yticks([lane[n] for n in nodes], list(nodes))
    ax.set_ylim(-0.75, len(nodes) - 0.35)
    xaxis(ax, model)
    ax.grid(axis="x", color=GRID, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    # The title sits above the fault labels' rows, never on them.
    pad = max(28, 10 + LABEL_ROW * rows_used)
    ax.set_title(title if title is not None else model.headline(), loc="left", pad=pad)
    if legend:
        shown = {iv.role for ivs in model.roles.values() for iv in ivs}
        handles: list[Any] = [
            Patch(facecolor=f, hatch=h, edgecolor="#888888", lw=0.5, label=r)
            for r, (f, h, _) in ROLE_STYLE.items()
            if r not in MEMBERSHIP_STATES or r in shown
        ]
        handles += fault_handles(model)
        if any(iv.kind == "partition" for iv in model.fault_intervals):
            handles.append(
                Patch(fill=False, edgecolor=FAULT_STYLE["partition"][0], lw=2, label="cut off")
            )
        if elections and model.elections:
            handles += [
                Line2D([], [], ls="", marker="^", ms=5, mfc="white", mec="#555555",
                       label="pre-vote"),
                Line2D([], [], ls="", marker="^", ms=6, color="#111111", label="election"),
                Line2D([], [], ls="", marker="*", ms=11, color="#111111", mec="white",
                       label="election won"),
            ]  # fmt: skip
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
            borderaxespad=0,
        )


# ====================================================================== quorum


def draw_quorum(ax: Axes, model: TraceModel, title: str | None = None) -> None:
    """Reachable managers against the majority line; lost stretches shaded."""
    q = model.quorum
    end = max(model.end, 1e-3)
    xs, reach = steps_xy(q.times, q.reachable, end)
    _, need = steps_xy(q.times, q.needed, end)
    ax.step(xs, reach, where="post", color="#1f5f8b", lw=2, label="reachable managers", zorder=3)
    ax.step(xs, need, where="post", color="#111111", lw=1.2, ls="--", label="majority needed")
    # The start-up: managers starting one by one is no loss of quorum.
    full = next((t for t, r, v in zip(q.times, q.reachable, q.voters, strict=True) if r >= v),
                None)  # fmt: skip
    if full is not None and full > 0:
        ax.axvspan(0, full, color="#bbbbbb", alpha=0.35, lw=0, zorder=1, label="starting up")
    color, hatch, _ = FAULT_STYLE["kill"]
    for i, (a, b) in enumerate(q.lost):
        ax.axvspan(
            a, b, facecolor="#f5b7b1", edgecolor=color, hatch=hatch, alpha=0.45, lw=0,
            label="quorum lost" if i == 0 else None, zorder=1,
        )  # fmt: skip
    fault_lines(ax, model, labels=False)
    handles, _ = ax.get_legend_handles_labels()
    top = max([*q.voters, 1])
    ax.set_ylim(0, top + 0.6)
    ax.set_yticks(range(0, top + 1))
    ax.set_ylabel("managers")
    xaxis(ax, model)
    ax.grid(axis="both", color=GRID, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(handles=handles + fault_handles(model), loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, borderaxespad=0)  # fmt: skip
    ax.set_title(title if title is not None else model.quorum_headline(), loc="left", fontsize=10)


def timeline_figure(model: TraceModel, title: str | None = None) -> Figure:
    """Role lanes over the quorum strip, sharing the time axis."""
    n = len(model.nodes)
    fig = new_figure(1.9 + 0.55 * n + 1.6)
    top, bottom = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [max(n, 1) * 0.55 + 0.9, 1.5]}
    )
    draw_timeline(top, model, title)
    top.set_xlabel("")
    top.tick_params(axis="x", labelbottom=True)
    draw_quorum(bottom, model)
    return fig
