"""Drawing: each function takes a matplotlib ``ax`` and data, and only draws.

The data comes from `viz.model` (or, for `draw_placement`, from plain dicts
the Swarm scenarios build).  Nothing here reads files or makes figures; see
`viz.render` for the figures `python -m viz` writes.

Every mark is readable in grayscale: roles and faults differ by hatching as
well as by colour, client outcomes by marker shape, nodes by line style.
Times on x axes are seconds from the first trace line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from viz.model import DOWN, LEARNER, OUTSIDE, PAUSED, Election, LogMatrix, TraceModel

__all__ = [
    "FAULT_STYLE",
    "OUTCOME_STYLE",
    "ROLE_STYLE",
    "choose_elections",
    "draw_commit",
    "draw_log",
    "draw_placement",
    "draw_quorum",
    "draw_terms",
    "draw_timeline",
    "draw_votes",
]

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
}
#: States that only membership changes produce: in the legend when they occur.
_MEMBERSHIP_STATES = (LEARNER, OUTSIDE)
#: States whose band is labelled with the state's name, not only the term.
_NAMED_STATES = (DOWN, PAUSED, LEARNER, OUTSIDE)

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

_NODE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_NODE_DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)), (0, (1, 3)))
_TERM_COLORS = ("#cfe2f3", "#f9cb9c", "#b6d7a8", "#d5a6bd", "#ffe599", "#a2c4c9", "#ea9999")
_TERM_HATCHES = ("", "/", ".", "\\", "x", "-", "o")

_EDGE = "#ffffff"
_GRID = "#e5e5e5"


# ====================================================================== helpers


def _xaxis(ax: Axes, model: TraceModel) -> None:
    ax.set_xlim(0, max(model.end, 1e-3))
    ax.set_xlabel("seconds from the start of the trace")


def _fault_lines(ax: Axes, model: TraceModel, labels: bool) -> None:
    """A vertical line where each fault began (solid) and was undone (dotted)."""
    placed: list[float] = []
    span = max(model.end, 1e-3)
    for iv in model.fault_intervals:
        color = FAULT_STYLE[iv.kind][0]
        ax.axvline(iv.start, color=color, lw=1.3, zorder=4)
        if iv.healed:
            ax.axvline(iv.end, color=color, lw=1.1, ls=":", zorder=4)
        if labels:
            # Stagger labels that would overlap.
            level = sum(1 for p in placed if abs(p - iv.start) < 0.12 * span)
            placed.append(iv.start)
            ax.annotate(
                iv.label,
                xy=(iv.start, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, 3 + 11 * level),
                textcoords="offset points",
                fontsize=8,
                color=color,
                ha="left",
                va="bottom",
                annotation_clip=False,
            )


def _fault_handles(model: TraceModel) -> list[Any]:
    """Legend entries for the fault lines `_fault_lines` draws."""
    kinds = {iv.kind for iv in model.fault_intervals}
    return [
        Line2D([], [], color=c, lw=1.3, label=label)
        for k, (c, _h, label) in FAULT_STYLE.items()
        if k in kinds
    ]


def _node_style(i: int) -> tuple[str, Any]:
    return _NODE_COLORS[i % len(_NODE_COLORS)], _NODE_DASHES[i % len(_NODE_DASHES)]


def _steps_xy(times: Sequence[float], values: Sequence[int | None], end: float) -> tuple:
    xs = [*times, end] if times else []
    ys = [float("nan") if v is None else v for v in values]
    if ys:
        ys.append(ys[-1])
    return xs, ys


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


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
                    edgecolor=_EDGE,
                    linewidth=0.6,
                    zorder=2,
                )
            )
            width = (iv.end - iv.start) / span
            label = None
            if iv.role in _NAMED_STATES and width >= 0.06:
                label = iv.role
                if iv.role == LEARNER and iv.term is not None and width > 0.16:
                    label = f"learner, term {iv.term}"
            elif iv.term is None or iv.role in _NAMED_STATES:
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
    _fault_lines(ax, model, labels=True)
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
    _xaxis(ax, model)
    ax.grid(axis="x", color=_GRID, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.set_title(title if title is not None else model.headline(), loc="left", pad=28)
    if legend:
        shown = {iv.role for ivs in model.roles.values() for iv in ivs}
        handles: list[Any] = [
            Patch(facecolor=f, hatch=h, edgecolor="#888888", lw=0.5, label=r)
            for r, (f, h, _) in ROLE_STYLE.items()
            if r not in _MEMBERSHIP_STATES or r in shown
        ]
        handles += _fault_handles(model)
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
    xs, reach = _steps_xy(q.times, q.reachable, end)
    _, need = _steps_xy(q.times, q.needed, end)
    ax.step(xs, reach, where="post", color="#1f5f8b", lw=2, label="reachable managers", zorder=3)
    ax.step(xs, need, where="post", color="#111111", lw=1.2, ls="--", label="majority needed")
    color, hatch, _ = FAULT_STYLE["kill"]
    for i, (a, b) in enumerate(q.lost):
        ax.axvspan(
            a, b, facecolor="#f5b7b1", edgecolor=color, hatch=hatch, alpha=0.45, lw=0,
            label="quorum lost" if i == 0 else None, zorder=1,
        )  # fmt: skip
    _fault_lines(ax, model, labels=False)
    handles, _ = ax.get_legend_handles_labels()
    top = max([*q.voters, 1])
    ax.set_ylim(0, top + 0.6)
    ax.set_yticks(range(0, top + 1))
    ax.set_ylabel("managers")
    _xaxis(ax, model)
    ax.grid(axis="both", color=_GRID, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(handles=handles + _fault_handles(model), loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, borderaxespad=0)  # fmt: skip
    ax.set_title(title if title is not None else model.quorum_headline(), loc="left", fontsize=10)


# ====================================================================== commit


def draw_commit(
    ax: Axes, model: TraceModel, title: str | None = None, *, applied: bool = True
) -> None:
    """Commit index (solid) and applied index (thin) per node as steps; client
    writes as points at the index they got (failed ones at the commit level of
    the moment), with a bar from when they were sent."""
    end = max(model.end, 1e-3)
    n = len(model.nodes)
    top = max((s.last() or 0 for s in model.commit.values()), default=0)
    handles: list[Any] = []
    for i, node in enumerate(model.nodes):
        color, dash = _node_style(i)
        # Nodes that agree would hide each other: nudge each a hair up or down.
        off = (i - (n - 1) / 2) * 0.004 * max(top, 10)
        s = model.commit.get(node)
        if s is not None and len(s):
            xs, ys = _steps_xy(s.times, s.values, end)
            ax.step(xs, [y + off for y in ys], where="post", color=color, ls=dash, lw=1.6,
                    zorder=2)  # fmt: skip
        a = model.applied.get(node)
        if applied and a is not None and len(a):
            xs, ys = _steps_xy(a.times, a.values, end)
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
    _fault_lines(ax, model, labels=False)
    handles += _fault_handles(model)
    for a, b in model.quorum.lost:
        ax.axvspan(a, b, color="#f5b7b1", alpha=0.35, lw=0, zorder=0)
    if model.quorum.lost:
        handles.append(Patch(facecolor="#f5b7b1", alpha=0.6, label="quorum lost"))
    ax.set_ylim(0, max(top, 1) * 1.08 + 0.5)
    ax.set_ylabel("log index")
    _xaxis(ax, model)
    ax.grid(color=_GRID, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False, borderaxespad=0)  # fmt: skip
    ax.set_title(title if title is not None else model.client_headline(), loc="left")


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
        color, dash = _node_style(i)
        xs, ys = _steps_xy(s.times, s.values, end)
        # Offset a little so equal terms do not hide each other.
        off = (i - (len(model.nodes) - 1) / 2) * 0.04
        ax.step(xs, [y + off for y in ys], where="post", color=color, ls=dash, lw=1.8,
                label=node)  # fmt: skip
    _fault_lines(ax, model, labels=False)
    handles, _ = ax.get_legend_handles_labels()
    top = max((s.last() or 0 for s in model.terms.values()), default=0)
    ax.set_yticks(range(0, top + 1))
    ax.set_ylim(-0.3, top + 0.5)
    ax.set_ylabel("term")
    _xaxis(ax, model)
    ax.grid(color=_GRID, zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(handles=handles + _fault_handles(model), loc="upper left",
              bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, borderaxespad=0)  # fmt: skip
    won = model.won()
    default = f"Terms: {len(won)} leaders elected, last term {top}" if won else "Terms"
    ax.set_title(title if title is not None else default, loc="left")


# ====================================================================== log matrix


def draw_log(
    ax: Axes, matrix: LogMatrix, title: str | None = None, *, max_entries: int = 30
) -> None:
    """Row per node, cell per log index coloured and labelled by term.

    An entry is drawn solid when it is committed (at or below the highest
    commit index any node reports, holding the same term as the node that
    reports it) and dashed and faded otherwise.  A black bar after each row's
    cell marks that node's own commit index."""
    rows = matrix.rows
    last = matrix.last_index
    first = max(1, last - max_entries + 1)
    authority = max(rows, key=lambda r: r.commit)
    terms = sorted({t for r in rows for t in r.entries.values()})
    term_style = {t: (_TERM_COLORS[i % 7], _TERM_HATCHES[i % 7]) for i, t in enumerate(terms)}
    for y, row in enumerate(reversed(rows)):
        for idx in range(first, last + 1):
            term = row.entries.get(idx)
            if term is None:
                if idx <= row.snapshot_index:
                    ax.add_patch(Rectangle((idx - 0.45, y - 0.4), 0.9, 0.8, facecolor="#eeeeee",
                                           edgecolor="#bbbbbb", lw=0.5))  # fmt: skip
                continue
            committed = idx <= matrix.commit and authority.entries.get(idx, term) == term
            face, hatch = term_style[term]
            ax.add_patch(
                Rectangle(
                    (idx - 0.45, y - 0.4),
                    0.9,
                    0.8,
                    facecolor=face,
                    hatch=hatch,
                    edgecolor="#333333" if committed else "#777777",
                    linestyle="-" if committed else (0, (2, 1.5)),
                    lw=0.8 if committed else 1.1,
                    alpha=1.0 if committed else 0.55,
                )
            )
            ax.text(idx, y, str(term), ha="center", va="center", fontsize=8,
                    color="#111111" if committed else "#555555",
                    bbox={"boxstyle": "square,pad=0.25", "fc": face, "ec": "none",
                          "alpha": 1.0 if committed else 0.55}
                    if hatch else None)  # fmt: skip
        if first - 0.5 <= row.commit + 0.5 <= last + 0.5 and row.commit > 0:
            ax.plot([row.commit + 0.5] * 2, [y - 0.48, y + 0.48], color="#111111", lw=2.5)
    if matrix.commit >= first:
        ax.axvline(matrix.commit + 0.5, color="#111111", lw=1, ls="--", zorder=0)
    labels = []
    for row in reversed(rows):
        label = f"{row.node} ({row.state})"
        if row.reported is None:
            label += "\nno log reported"
        elif matrix.t - row.reported > 0.05:
            label += f"\nas of {row.reported:.2f} s"
        labels.append(label)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlim(first - 0.6, last + 0.6)
    ax.set_xlabel("log index")
    step = max(1, (last - first + 1) // 15)
    ax.set_xticks(range(first, last + 1, step))
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    handles: list[Any] = [
        Patch(facecolor=term_style[t][0], hatch=term_style[t][1], edgecolor="#333333",
              label=f"term {t}")
        for t in terms
    ]  # fmt: skip
    handles += [
        Patch(facecolor="white", edgecolor="#777777", linestyle=(0, (2, 1.5)),
              label="not committed"),
        Line2D([], [], color="#111111", lw=2.5, label="node's commit index"),
    ]  # fmt: skip
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
              frameon=False, borderaxespad=0)  # fmt: skip
    if title is None:
        title = _log_headline(matrix)
    ax.set_title(title, loc="left")


def _log_headline(matrix: LogMatrix) -> str:
    pending = sorted({i for r in matrix.rows for i in r.entries if i > matrix.commit})
    head = f"Logs at {matrix.t:.2f} s: committed up to index {matrix.commit}"
    if pending:
        holders = [r.node for r in matrix.rows if any(i > matrix.commit for i in r.entries)]
        head += f"; {', '.join(holders)} hold {len(pending)} uncommitted"
    return head


# ====================================================================== votes


def choose_elections(model: TraceModel, limit: int = 6) -> list[Election]:
    """The elections worth a vote grid: every real election, then pre-votes
    that were refused for a reason other than an ongoing leader, by time."""
    real = [e for e in model.elections if not e.pre_vote]
    refused = [
        e
        for e in model.elections
        if e.pre_vote and e.outcome == "lost" and any(v.reason for v in e.refused)
    ]
    # Refusals over the election restriction (§5.4.1) teach the most.
    refused.sort(key=lambda e: (not any("log" in (v.reason or "") for v in e.refused), e.t))
    chosen = real[:limit] + refused[: max(0, limit - len(real))]
    return sorted(chosen, key=lambda e: e.t)


def draw_votes(
    ax: Axes,
    model: TraceModel,
    elections: Iterable[Election] | None = None,
    title: str | None = None,
) -> None:
    """A column per election, a row per node: who asked (the candidate), who
    granted, who refused and why (reasons as numbered notes), who never answered."""
    chosen = list(elections) if elections is not None else choose_elections(model)
    nodes = model.nodes
    reasons: list[str] = []
    for x, e in enumerate(chosen):
        answered = {v.voter: v for v in e.votes}
        for y, node in enumerate(reversed(nodes)):
            if node == e.node:
                face, hatch, mark, tc = "#1f5f8b", "", "asked", "white"
            elif node in answered and answered[node].granted:
                face, hatch, mark, tc = "#a9dfbf", "", "yes", "#0b5345"
            elif node in answered:
                v = answered[node]
                reason = v.reason or "refused"
                if reason not in reasons:
                    reasons.append(reason)
                face, hatch, mark, tc = (
                    "#f5b7b1",
                    "xx",
                    f"no [{reasons.index(reason) + 1}]",
                    ("#641e16"),
                )
            else:
                face, hatch, mark, tc = "white", "", "-", "#777777"
            ax.add_patch(Rectangle((x - 0.46, y - 0.42), 0.92, 0.84, facecolor=face, hatch=hatch,
                                   edgecolor="#999999", lw=0.6))  # fmt: skip
            ax.text(x, y, mark, ha="center", va="center", fontsize=8, color=tc,
                    bbox={"boxstyle": "round,pad=0.15", "fc": face, "ec": "none"}
                    if hatch else None)  # fmt: skip
    ax.set_xticks(
        range(len(chosen)),
        [
            f"{'pre-vote' if e.pre_vote else 'election'}\n{e.node}, term {e.term}\n"
            f"at {e.t:.2f} s\n{e.outcome}"
            for e in chosen
        ],
        fontsize=8,
    )
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(nodes)), list(reversed(nodes)))
    ax.set_xlim(-0.55, max(len(chosen), 1) - 0.45)
    ax.set_ylim(-0.55, len(nodes) - 0.45)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(length=0)
    notes = (
        "asked: the candidate;  yes / no: its vote;  "
        "-: no answer recorded (down, paused, cut off or too late)"
    )
    if reasons:
        notes += "\nRefused because:\n"
        notes += "\n".join(f"[{i + 1}] {r}" for i, r in enumerate(reasons))
    ax.text(0.0, -0.04, notes, transform=ax.transAxes, ha="left", va="top", fontsize=8)
    if title is None:
        if len(chosen) == 1:
            title = model.election_headline(chosen[0])
        elif chosen:
            won = [e for e in chosen if not e.pre_vote and e.outcome == "won"]
            title = f"Votes in {len(chosen)} campaigns" + (
                f"; winners: {', '.join(f'{e.node} (term {e.term})' for e in won)}" if won else ""
            )
        else:
            title = "No elections in this trace"
    ax.set_title(title, loc="left", y=1.0, pad=60)


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
    its column label in bold."""
    b = _as_task_map(before)
    a = _as_task_map(after) if after is not None else None
    tasks = sorted(set(b) | set(a or {}), key=_natural)
    all_nodes = list(nodes) if nodes is not None else sorted(
        set(b.values()) | set((a or {}).values()), key=_natural
    )  # fmt: skip
    row = {n: len(all_nodes) - 1 - i for i, n in enumerate(all_nodes)}
    moved = [t for t in tasks if a is not None and b.get(t) != a.get(t)]
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
    ax.grid(color=_GRID)
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
            sources = sorted({b[t] for t in moved if t in b}, key=_natural)
            src = f" off {', '.join(sources)}" if len(sources) <= 2 else ""
            title = f"{len(moved)} of {len(tasks)} tasks moved{src}"
    ax.set_title(title, loc="left")
