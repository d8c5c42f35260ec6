"""Commit and applied indexes with the clients' writes; each node's term."""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from viz.figures.base import (
    GRID,
    OUTCOME_STYLE,
    fault_handles,
    fault_lines,
    new_figure,
    node_style,
    steps_xy,
    xaxis,
)
from viz.model import TraceModel

__all__ = ["commit_figure", "committed_when", "draw_commit", "draw_terms", "terms_figure"]


# ====================================================================== commit


def draw_commit(
    ax: Axes, model: TraceModel, title: str | None = None, *, applied: bool = True
) -> None:
    """Commit index (solid) and applied index (thin) per node as steps; client
    writes as points at the index they got (failed ones at the commit level of
    the moment), with a bar from when they were sent."""
    end = max(model.end, 1e-3)
    n = len(model.nodes)
    top = model.top_commit()
    handles: list[Any] = []
    for i, node in enumerate(model.nodes):
        color, dash = node_style(i)
        # Nodes that agree would hide each other: nudge each a hair up or down.
        off = (i - (n - 1) / 2) * 0.004 * max(top, 10)
        s = model.commit.get(node)
        if s is not None and len(s):
            times, values = committed_when(model, node)
            xs, ys = steps_xy(times, values, end)
            ax.step(xs, [y + off for y in ys], where="post", color=color, ls=dash, lw=1.6,
                    zorder=2)  # fmt: skip
        a = model.applied.get(node)
        if applied and a is not None and len(a):
            xs, ys = steps_xy(a.times, a.values, end)
            ax.step(xs, [y + off for y in ys], where="post", color=color, ls=":", lw=0.8,
                    alpha=0.7, zorder=2)  # fmt: skip
        handles.append(Line2D([], [], color=color, ls=dash, lw=1.6, label=f"{node} commit"))
    if applied and any(len(a) for a in model.applied.values()):
        handles.append(Line2D([], [], color="#555555", ls=":", lw=0.8, label="applied (dotted)"))
    seen: set[str] = set()
    for c in model.clients:
        color, marker, label = OUTCOME_STYLE[c.outcome]
        y = c.index if c.index is not None and c.outcome == "ok" else _commit_at(model, c.end)
        ax.plot([c.start, c.end], [y, y], color=color, lw=1, alpha=0.6, zorder=4)
        ax.plot(c.end, y, ls="", marker=marker, ms=6, color=color, mec="#111111", mew=0.5,
                zorder=5)  # fmt: skip
        if c.outcome not in seen:
            seen.add(c.outcome)
    for k in OUTCOME_STYLE:
        if k in seen:
            color, marker, label = OUTCOME_STYLE[k]
            handles.append(
                Line2D([], [], ls="", marker=marker, ms=6, color=color, mec="#111111",
                       mew=0.5, label=label)
            )  # fmt: skip
    fault_lines(ax, model, labels=False)
    handles += fault_handles(model)
    for a, b in model.quorum.lost:
        ax.axvspan(a, b, color="#f5b7b1", alpha=0.35, lw=0, zorder=0)
    if model.quorum.lost:
        handles.append(Patch(facecolor="#f5b7b1", alpha=0.6, label="quorum lost"))
    ax.set_ylim(0, max(top, 1) * 1.08 + 0.5)
    ax.set_ylabel("log index")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # no index 2.5
    xaxis(ax, model)
    ax.grid(color=GRID, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False, borderaxespad=0)  # fmt: skip
    ax.set_title(title if title is not None else model.client_headline(), loc="left")


def committed_when(model: TraceModel, node: str) -> tuple[list[float], list[int | None]]:
    """``node``'s commit index over time, from what was committed when.

    The ``commit`` trace lines are sampled (at most one per 100 ms: later
    advances are folded into one line at the end of the window), so the traced
    line can trail a write the leader had already acknowledged.  But an
    acknowledgement proves the commit: a leader answers a write only once its
    entry is committed.  So while ``node`` leads, its line is raised to every
    index it had acknowledged by then (a leader's commit index never falls
    while it leads); elsewhere it is the traced line."""
    s = model.commit.get(node)
    times = list(s.times) if s is not None else []
    values = list(s.values) if s is not None else []
    terms = [iv for iv in model.leaders() if iv.node == node]
    acks = sorted(
        (c.end, c.index)
        for c in model.clients
        if c.outcome == "ok"
        and c.index is not None
        and any(iv.start <= c.end < iv.end for iv in terms)
    )
    if not acks:
        return times, values
    out_t: list[float] = []
    out_v: list[int | None] = []
    for t in sorted({*times, *(a for a, _ in acks)}):
        traced = s.at(t) if s is not None else None
        iv = next((iv for iv in terms if iv.start <= t < iv.end), None)
        proved = max((k for a, k in acks if iv is not None and iv.start <= a <= t), default=None)
        best = max((v for v in (traced, proved) if v is not None), default=None)
        out_t.append(t)
        out_v.append(best)
    return out_t, out_v


def _commit_at(model: TraceModel, t: float) -> int:
    return max((s.at(t) or 0 for s in model.commit.values()), default=0)


# ====================================================================== terms


def draw_terms(ax: Axes, model: TraceModel, title: str | None = None) -> None:
    """Each node's term over time (steps); down stretches left blank."""
    end = max(model.end, 1e-3)
    for i, node in enumerate(model.nodes):
        s = model.terms.get(node)
        if s is None or not len(s):
            continue
        color, dash = node_style(i)
        xs, ys = steps_xy(s.times, s.values, end)
        # Offset a little so equal terms do not hide each other.
        off = (i - (len(model.nodes) - 1) / 2) * 0.04
        ax.step(xs, [y + off for y in ys], where="post", color=color, ls=dash, lw=1.8,
                label=node)  # fmt: skip
    fault_lines(ax, model, labels=False)
    handles, _ = ax.get_legend_handles_labels()
    top = max((s.last() or 0 for s in model.terms.values()), default=0)
    ax.set_yticks(range(0, top + 1))
    ax.set_ylim(-0.3, top + 0.5)
    ax.set_ylabel("term")
    xaxis(ax, model)
    ax.grid(color=GRID, zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(handles=handles + fault_handles(model), loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, borderaxespad=0)  # fmt: skip
    won = model.won()
    default = f"Terms: {len(won)} leaders elected, last term {top}" if won else "Terms"
    ax.set_title(title if title is not None else default, loc="left")


def commit_figure(model: TraceModel, title: str | None = None) -> Figure:
    fig = new_figure(4.6)
    draw_commit(fig.subplots(), model, title)
    return fig


def terms_figure(model: TraceModel, title: str | None = None) -> Figure:
    fig = new_figure(3.2)
    draw_terms(fig.subplots(), model, title)
    return fig
