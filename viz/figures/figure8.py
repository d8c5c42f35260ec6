"""The Figure-8 scenario's figures (§5.4.2): the timeline marked with the
instants (a)-(e), and a log matrix at each instant with x's column named.

The scenario passes the trace model, x's index ``k`` and the instants
(time, file name, caption); nothing here knows how the schedule ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from viz.figures.base import save
from viz.figures.commit import commit_figure, terms_figure
from viz.figures.logs import log_figure
from viz.figures.timeline import timeline_figure
from viz.figures.votes import votes_figure
from viz.model import TraceModel

__all__ = ["LogInstant", "mark_instants", "name_x", "render_figure8"]


@dataclass(frozen=True, slots=True)
class LogInstant:
    """A log matrix to draw: at ``t`` (model seconds), into ``name``.png, titled ``title``."""

    t: float
    name: str
    title: str


def mark_instants(fig: Figure, model: TraceModel, marks: Mapping[str, float]) -> None:
    """Letters (a)-(e) over the instants; one label per group of nodes killed together."""
    top = fig.axes[0]
    for text in list(top.texts):
        if text.get_text().endswith((" killed", " paused")):
            text.remove()  # one label per node: replaced by one per kill below
    kills: dict[float, list[str]] = {}
    for iv in model.fault_intervals:
        if iv.kind == "kill":
            kills.setdefault(round(iv.start, 6), []).extend(iv.nodes)
    span = max(model.end, 1e-3)
    placed: list[tuple[float, int]] = []
    top_level = 0
    for t, nodes in sorted(kills.items()):
        taken = {lvl for p, lvl in placed if abs(p - t) < 0.12 * span}
        level = min(set(range(len(taken) + 1)) - taken)
        top_level = max(top_level, level)
        placed.append((t, level))
        digits = ",".join(n.removeprefix("manager") for n in sorted(nodes))
        top.annotate(f"kill manager{digits}", (t, 1.0), xycoords=("data", "axes fraction"),
                     xytext=(2, 15 + 11 * level), textcoords="offset points", fontsize=8,
                     color="#b2182b", ha="left", va="bottom", annotation_clip=False)  # fmt: skip
    top.set_title(top.get_title(loc="left"), loc="left", pad=30 + 11 * top_level)
    for ax in fig.axes:
        for t in marks.values():
            ax.axvline(t, color="#444444", lw=0.8, ls=":", zorder=5)
    span = max(marks.values(), default=1.0) or 1.0
    previous = None
    for label, t in marks.items():
        close = previous is not None and t - previous < 0.03 * span
        top.annotate(f"({label})" if len(label) == 1 else label, (t, 1.0),
                     xycoords=("data", "axes fraction"), xytext=(9 if close else 0, 2),
                     textcoords="offset points", ha="left" if close else "center",
                     va="bottom", fontsize=9, fontweight="bold")  # fmt: skip
        previous = t


def name_x(fig: Figure, k: int) -> Figure:
    """Say which column is x's: the tick at index k reads ``k = 2 (x)``."""
    ax = fig.axes[0]
    ticks = [round(float(v)) for v in ax.get_xticks()]
    ax.set_xticks(ticks, [f"k = {v} (x)" if v == k else str(v) for v in ticks])
    return fig


def render_figure8(
    out: Path,
    model: TraceModel,
    k: int,
    title: str,
    marks: Mapping[str, float],
    logs: Sequence[LogInstant],
    branch: tuple[TraceModel, int, LogInstant] | None = None,
) -> list[Path]:
    """The timeline with its instants, commit, terms, votes, and a log matrix per
    instant; ``branch`` adds the (d) run's log matrix, drawn from its own model."""
    paths: list[Path] = []
    fig = timeline_figure(model, title)
    mark_instants(fig, model, marks)
    paths += save(fig, out / "timeline")
    paths += save(commit_figure(model), out / "commit")
    paths += save(terms_figure(model), out / "terms")
    if model.elections:
        paths += save(votes_figure(model), out / "votes")
    for log in logs:
        paths += save(name_x(log_figure(model, log.t, log.title), k), out / log.name)
    if branch is not None:
        bmodel, bk, log = branch
        paths += save(name_x(log_figure(bmodel, log.t, log.title), bk), out / log.name)
    return paths
