"""The Jepsen test's figure: every operation over time, and its latency.

Data first, drawing second: the caller turns its history and fault lines
into a `HistoryModel` (plain rows and windows, times from the start of the
run); `draw_operations` and `draw_op_latency` only draw it on an ``ax``;
`history_figure` makes the two-panel figure.

Top panel: one row per client, one bar per operation from invocation to
answer (an unknown outcome to the moment the client gave up).  Ok is green,
fail red with ``////``, unknown amber with ``xx`` -- the hatches and the
end markers keep it readable in grayscale.  Fault windows are shaded across
both panels.  Bottom panel: latency of each operation on a log axis.
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from viz.figures.base import new_figure

__all__ = [
    "FaultWindow",
    "HistoryModel",
    "OpBar",
    "draw_op_latency",
    "draw_operations",
    "history_figure",
]

#: status -> (colour, hatch, end marker, legend label); ``info`` is an unknown outcome.
STYLE = {
    "ok": ("#2ca02c", "", "o", "ok"),
    "fail": ("#d62728", "////", "x", "fail (no effect)"),
    "info": ("#ff9f1c", "xx", "^", "unknown (may take effect)"),
}
#: fault kind -> (colour, hatch)
FAULT_STYLE = {
    "partition": ("#1f77b4", "\\\\"),
    "kill": ("#7f7f7f", ".."),
    "pause": ("#9467bd", "--"),
}


@dataclass(frozen=True, slots=True)
class OpBar:
    client: int
    start: float  # seconds since the run's start
    length: float
    status: str  # "ok", "fail" or "info"
    op: str


@dataclass(frozen=True, slots=True)
class FaultWindow:
    start: float  # seconds since the run's start
    end: float
    kind: str
    label: str
    #: a few characters for a figure: ``kill m3``, ``cut m1,m2``
    short: str = ""


@dataclass(frozen=True, slots=True)
class HistoryModel:
    bars: tuple[OpBar, ...]
    faults: tuple[FaultWindow, ...]
    clients: tuple[int, ...]
    end: float


def _shade(ax: Axes, model: HistoryModel, labels: bool) -> None:
    """Fault windows across the panel; with ``labels``, named above it (three staggered rows)."""
    for n, f in enumerate(model.faults):
        colour, hatch = FAULT_STYLE.get(f.kind, ("#bbbbbb", ""))
        ax.axvspan(
            max(f.start, 0.0), f.end, facecolor=colour, alpha=0.12, hatch=hatch,
            edgecolor=colour, linewidth=0,
        )  # fmt: skip
        if labels:
            ax.annotate(
                f.short or f.label, xy=(max(f.start, 0.0), 1.0),
                xycoords=("data", "axes fraction"), xytext=(1, 2 + 8 * (n % 3)),
                textcoords="offset points", fontsize=6.5, color=colour, va="bottom",
                ha="left", annotation_clip=False,
            )  # fmt: skip


def draw_operations(ax: Axes, model: HistoryModel) -> None:
    """One row per client, one bar per operation, coloured by outcome."""
    _shade(ax, model, labels=True)
    row = {c: i for i, c in enumerate(model.clients)}
    for status, (colour, hatch, marker, _label) in STYLE.items():
        for c in model.clients:
            spans = [
                (b.start, b.length) for b in model.bars if b.client == c and b.status == status
            ]
            if not spans:
                continue
            y = row[c]
            # Outlines only on the rare long bars: on thousands of short ok
            # bars they would paint the row black.
            edge = "none" if status == "ok" else "black"
            ax.broken_barh(
                spans, (y - 0.35, 0.7), facecolors=colour, edgecolor=edge,
                linewidth=0.3, hatch=hatch,
            )  # fmt: skip
            if status != "ok":
                ax.plot(
                    [s + n for s, n in spans], [y] * len(spans), linestyle="none",
                    marker=marker, markersize=3.5, color="black",
                )  # fmt: skip
    ax.set_yticks(range(len(model.clients)), [f"client {c}" for c in model.clients])
    ax.set_ylim(-0.7, len(model.clients) - 0.3)
    ax.invert_yaxis()
    ax.set_xlim(0, max(model.end, 1e-3))
    ax.set_title("Operations by client (bar: invoke to answer)", fontsize=10, pad=30)
    handles = [
        Patch(facecolor=c, hatch=h, edgecolor="black", label=lab)
        for c, h, _m, lab in STYLE.values()
    ]
    kinds = sorted({f.kind for f in model.faults})
    handles += [
        Patch(facecolor=FAULT_STYLE[k][0], alpha=0.25, hatch=FAULT_STYLE[k][1], label=k)
        for k in kinds
        if k in FAULT_STYLE
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7)


def draw_op_latency(ax: Axes, model: HistoryModel) -> None:
    """Latency of each operation (invoke to answer or give-up) on a log axis."""
    _shade(ax, model, labels=False)
    for status, (colour, _hatch, marker, label) in STYLE.items():
        pts = [(b.start, b.length * 1000) for b in model.bars if b.status == status]
        if pts:
            xs, ys = zip(*pts, strict=True)
            edge = None if marker == "x" else "black"  # an unfilled marker has no edge
            ax.scatter(
                xs, ys, s=6, c=colour, marker=marker, label=label, linewidths=0.3,
                edgecolors=edge,
            )  # fmt: skip
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms)")
    ax.set_xlabel("time since the clients started (s)")
    ax.set_xlim(0, max(model.end, 1e-3))
    ax.grid(True, which="major", axis="y", linewidth=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7)


def history_figure(model: HistoryModel, title: str) -> Figure:
    """Operations by client over their latencies, sharing the time axis."""
    rows = max(1, len(model.clients))
    fig = new_figure(2.6 + 0.35 * rows + 2.6, dpi=100)
    top, bottom = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [1.0 + 0.15 * rows, 1.2]}
    )
    draw_operations(top, model)
    draw_op_latency(bottom, model)
    fig.suptitle(title, fontsize=11)
    return fig
