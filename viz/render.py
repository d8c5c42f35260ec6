"""Whole figures from a `TraceModel`, and `render_all` for a trace directory.

Figures are built with `matplotlib.figure.Figure` directly: no pyplot, so no
global figure registry to leak from and no GUI backend; ``savefig`` renders
with Agg (PNG) or the vector backends.  The
scenario runner can call the ``*_figure`` functions one by one, or
`render_all`, which writes every figure the traces support as PNG and SVG.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from matplotlib.figure import Figure

from viz import draw
from viz.model import TraceModel

__all__ = [
    "commit_figure",
    "log_figure",
    "render_all",
    "save",
    "terms_figure",
    "timeline_figure",
    "votes_figure",
]

_WIDTH = 12.0


def _figure(height: float) -> Figure:
    return Figure(figsize=(_WIDTH, height), layout="constrained", dpi=110)


def timeline_figure(model: TraceModel, title: str | None = None) -> Figure:
    """Role lanes over the quorum strip, sharing the time axis."""
    n = len(model.nodes)
    fig = _figure(1.9 + 0.55 * n + 1.6)
    top, bottom = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [max(n, 1) * 0.55 + 0.9, 1.5]}
    )
    draw.draw_timeline(top, model, title)
    top.set_xlabel("")
    top.tick_params(axis="x", labelbottom=True)
    draw.draw_quorum(bottom, model)
    return fig


def commit_figure(model: TraceModel, title: str | None = None) -> Figure:
    fig = _figure(4.6)
    draw.draw_commit(fig.subplots(), model, title)
    return fig


def terms_figure(model: TraceModel, title: str | None = None) -> Figure:
    fig = _figure(3.2)
    draw.draw_terms(fig.subplots(), model, title)
    return fig


def votes_figure(model: TraceModel, elections: Iterable | None = None) -> Figure:
    chosen = list(elections) if elections is not None else draw.choose_elections(model)
    reasons = {v.reason for e in chosen for v in e.refused}
    fig = Figure(
        figsize=(max(6.0, 1.55 * len(chosen) + 2.0), 2.8 + 0.42 * len(model.nodes)
                 + 0.2 * len(reasons)),
        layout="constrained",
        dpi=110,
    )  # fmt: skip
    draw.draw_votes(fig.subplots(), model, chosen)
    return fig


def log_figure(model: TraceModel, t: float | None = None, title: str | None = None) -> Figure:
    matrix = model.log_matrix(t)
    if matrix is None:
        raise ValueError("no log lines in this trace before that instant")
    fig = _figure(1.4 + 0.5 * len(matrix.rows))
    draw.draw_log(fig.subplots(), matrix, title)
    return fig


def save(fig: Figure, base: Path, formats: Iterable[str] = ("png", "svg")) -> list[Path]:
    """Write ``base.<fmt>`` for each format; the paths written."""
    base.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        path = base.with_suffix(f".{fmt}")
        fig.savefig(path, format=fmt)
        out.append(path)
    return out


def render_all(
    model: TraceModel, outdir: str | Path, formats: Iterable[str] = ("png", "svg")
) -> list[Path]:
    """Every figure the model supports, into ``outdir``; the paths written."""
    out = Path(outdir)
    formats = tuple(formats)
    paths: list[Path] = []
    paths += save(timeline_figure(model), out / "timeline", formats)
    paths += save(commit_figure(model), out / "commit", formats)
    paths += save(terms_figure(model), out / "terms", formats)
    if model.elections:
        paths += save(votes_figure(model), out / "votes", formats)
    for i, (t, caption) in enumerate(model.log_instants(), 1):
        matrix = model.log_matrix(t)
        if matrix is None:
            continue
        title = f"Logs {caption} ({t:.2f} s): committed up to index {matrix.commit}"
        paths += save(log_figure(model, t, title), out / f"log-{i}", formats)
    return paths
