"""The endurance run's figure: each manager's memory and open files over a long run.

Drawn from the samples `scenarios.endurance` took (``(t, node, pid, rss_mb,
fds)``); a restarted manager is a new process, so its line is broken at each
restart rather than joined across it -- a fresh process's low RSS must not
read as memory given back.  Faults are short marks along the top.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from matplotlib.figure import Figure

from viz.figures.base import natural, new_figure, node_style

__all__ = ["endurance_figure"]


class _Sample(Protocol):
    t: float
    node: str
    pid: int
    rss_mb: float
    fds: int


FAULT_COLORS = {
    "kill": "#d62728",
    "leader-kill": "#8c1515",
    "pause": "#9467bd",
    "isolate": "#ff7f0e",
    "partition": "#bcbd22",
}


def endurance_figure(
    samples: Sequence[_Sample], faults: Iterable[dict[str, Any]], observed: str
) -> Figure:
    fig = new_figure(6.0)
    ax_rss, ax_fd = fig.subplots(2, 1, sharex=True)
    names = sorted({s.node for s in samples}, key=natural)
    for i, name in enumerate(names):
        color, _dashes = node_style(i)
        label = f"{name} (never killed)" if name == observed else name
        pids: list[int] = []
        for s in samples:
            if s.node == name and s.pid not in pids:
                pids.append(s.pid)
        for k, pid in enumerate(pids):
            mine = [s for s in samples if s.node == name and s.pid == pid]
            xs = [s.t / 60 for s in mine]
            kw = {"color": color, "lw": 1.2, "label": label if k == 0 else None}
            ax_rss.plot(xs, [s.rss_mb for s in mine], **kw)
            ax_fd.plot(xs, [s.fds for s in mine], **kw)
    kinds_seen: set[str] = set()
    for f in faults:
        kind = f["kind"]
        ax_rss.axvspan(
            f["t"] / 60,
            f["end"] / 60,
            ymin=0.96,
            ymax=1.0,
            color=FAULT_COLORS.get(kind, "grey"),
            label=f"fault: {kind}" if kind not in kinds_seen else None,
        )
        kinds_seen.add(kind)
    ax_rss.set_ylabel("resident memory (MB)")
    ax_rss.set_ylim(bottom=0)
    ax_rss.set_title(
        "Managers' memory and open files through a mixed run with a fault every few seconds"
    )
    ax_rss.legend(loc="lower right", fontsize=7, ncol=3)
    ax_fd.set_ylabel("open file descriptors")
    ax_fd.set_ylim(bottom=0)
    ax_fd.set_xlabel("minutes since the load started (a line breaks where a manager restarted)")
    return fig
