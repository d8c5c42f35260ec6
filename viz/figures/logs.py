"""The log matrix: a row per node, a cell per index, labelled by term."""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from viz.figures.base import TERM_COLORS, TERM_HATCHES, new_figure
from viz.model import LogMatrix, TraceModel

__all__ = ["draw_log", "log_figure", "style_of_term"]


# ====================================================================== log matrix


def style_of_term(term: int) -> tuple[str, str]:
    """(colour, hatch) of entries of ``term``: by the term's number, not its rank
    in one panel, so a term looks the same in every figure of a run."""
    i = max(term - 1, 0)
    return TERM_COLORS[i % len(TERM_COLORS)], TERM_HATCHES[i % len(TERM_HATCHES)]


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
    term_style = {t: style_of_term(t) for t in terms}
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


def log_figure(model: TraceModel, t: float | None = None, title: str | None = None) -> Figure:
    matrix = model.log_matrix(t)
    if matrix is None:
        raise ValueError("no log lines in this trace before that instant")
    fig = new_figure(1.4 + 0.5 * len(matrix.rows))
    draw_log(fig.subplots(), matrix, title)
    return fig
