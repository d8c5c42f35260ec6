"""Every figure a trace directory supports: what ``python -m viz DIR`` writes."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from viz.figures.base import save
from viz.figures.commit import commit_figure, terms_figure
from viz.figures.logs import log_figure
from viz.figures.timeline import timeline_figure
from viz.figures.votes import votes_figure
from viz.model import TraceModel

__all__ = ["KINDS", "render_all"]

#: The figures `render_all` can draw, in its order.
KINDS = ("timeline", "commit", "terms", "votes", "log")


def render_all(
    model: TraceModel,
    outdir: str | Path,
    formats: Iterable[str] = ("png", "svg"),
    *,
    headline: str | None = None,
    kinds: Collection[str] = KINDS,
) -> list[Path]:
    """Every figure the model supports, into ``outdir``; the paths written.
    ``headline``: the timeline's title when the caller measured what happened
    (a scenario's note and its timeline then say the same number); ``kinds``:
    which of `KINDS` to draw."""
    out = Path(outdir)
    formats = tuple(formats)
    paths: list[Path] = []
    if "timeline" in kinds:
        paths += save(timeline_figure(model, headline), out / "timeline", formats)
    if "commit" in kinds:
        paths += save(commit_figure(model), out / "commit", formats)
    if "terms" in kinds:
        paths += save(terms_figure(model), out / "terms", formats)
    if "votes" in kinds and model.elections:
        paths += save(votes_figure(model), out / "votes", formats)
    if "log" not in kinds:
        return paths
    for i, (t, caption) in enumerate(model.log_instants(), 1):
        matrix = model.log_matrix(t)
        if matrix is None:
            continue
        title = f"Logs {caption} ({t:.2f} s): committed up to index {matrix.commit}"
        paths += save(log_figure(model, t, title), out / f"log-{i}", formats)
    return paths
