"""The vote grid: who asked, who granted, who refused and why."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from viz.figures.base import new_figure
from viz.model import Election, TraceModel

__all__ = ["choose_elections", "draw_votes", "votes_figure"]


# ====================================================================== votes


def choose_elections(model: TraceModel, limit: int = 8) -> list[Election]:
    """The elections worth a vote grid: every real election, then failed
    pre-votes, by time: first those refused for a reason (the election
    restriction's, §5.4.1, first of all), then those that found no majority
    to answer (a split or a lost quorum: that they fail is the point)."""
    real = [e for e in model.elections if not e.pre_vote]
    if len(real) > limit:
        # The first campaigns and the last: how the story starts, and how it ends
        # (figure 8's last refusals are its point).
        real = real[: limit - 3] + real[-3:]
    lost = [e for e in model.elections if e.pre_vote and e.outcome == "lost"]
    refused = [e for e in lost if any(v.reason for v in e.refused)]
    # Refusals over the election restriction (§5.4.1) teach the most.
    refused.sort(key=lambda e: (not any("log" in (v.reason or "") for v in e.refused), e.t))
    unanswered = [e for e in lost if e not in refused]
    # One of each candidate's unanswered attempts first, so both sides show.
    unanswered.sort(key=lambda e: (sum(x.node == e.node for x in unanswered if x.t < e.t), e.t))
    chosen = (real + refused + unanswered)[:limit]
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
    ax.text(0.0, -0.04, _wrap(notes, ax, 8), transform=ax.transAxes, ha="left", va="top",
            fontsize=8)  # fmt: skip
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
    ax.set_title(_wrap(title, ax, 12), loc="left", y=1.0, pad=60)


def _wrap(text: str, ax: Axes, size: float) -> str:
    """``text`` broken into lines that fit the figure's width at ``size`` points:
    a title or a footnote is never cut at the right edge."""
    fig = ax.get_figure()
    width_pt = (fig.get_figwidth() if fig else 6.0) * 72 - 20
    chars = max(20, int(width_pt / (0.6 * size)))
    return "\n".join(
        textwrap.fill(line, chars, subsequent_indent="    ") if len(line) > chars else line
        for line in text.split("\n")
    )


def votes_figure(model: TraceModel, elections: Iterable[Election] | None = None) -> Figure:
    chosen = list(elections) if elections is not None else choose_elections(model)
    reasons = {v.reason or "refused" for e in chosen for v in e.refused}
    width = max(6.0, 1.55 * len(chosen) + 2.0)
    # Room below the grid for the footnote, as `_wrap` will break it.
    chars = max(20, int((width * 72 - 20) / (0.6 * 8)))
    lines = sum(1 + (len(r) + 6) // chars for r in reasons) + (2 if reasons else 1)
    fig = new_figure(2.8 + 0.42 * len(model.nodes) + 0.16 * lines, width=width)
    draw_votes(fig.subplots(), model, chosen)
    return fig
