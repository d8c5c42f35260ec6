"""A rolling update: how many tasks run each image, over time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from viz.figures.base import GRID, NODE_COLORS, NODE_DASHES, new_figure

__all__ = ["RolloutSample", "draw_rollout", "rollout_figure"]


@dataclass(frozen=True, slots=True)
class RolloutSample:
    """One look at the service: seconds from the trace's start, running tasks per image."""

    t: float
    images: dict[str, int]


def draw_rollout(
    ax: Axes,
    samples: Sequence[RolloutSample],
    marks: Sequence[tuple[float, str]] = (),
    title: str = "",
) -> None:
    """A step line per image (running tasks); ``marks``: (time, command) drawn as
    labelled vertical lines where the update and the rollback were given."""
    images: list[str] = []
    for s in samples:
        images += [i for i in sorted(s.images) if i not in images]
    ts = [s.t for s in samples]
    top = max((sum(s.images.values()) for s in samples), default=1)
    for k, image in enumerate(images):
        ax.step(ts, [s.images.get(image, 0) for s in samples], where="post",
                color=NODE_COLORS[k % len(NODE_COLORS)], ls=NODE_DASHES[k % len(NODE_DASHES)],
                lw=2, label=f"running {image}")  # fmt: skip
    for t, text in marks:
        ax.axvline(t, color="#555555", lw=1, ls=":")
        ax.annotate(text, xy=(t, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3),
                    textcoords="offset points", fontsize=8, ha="left", va="top",
                    color="#333333")  # fmt: skip
    ax.set_ylim(0, top + 1.2)
    ax.set_yticks(range(0, top + 1))
    ax.set_ylabel("running tasks")
    ax.set_xlabel("seconds from the start of the trace")
    ax.grid(color=GRID)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              borderaxespad=0)  # fmt: skip
    ax.set_title(title, loc="left")


def rollout_figure(
    samples: Sequence[RolloutSample], marks: Sequence[tuple[float, str]] = (), title: str = ""
) -> Figure:
    fig = new_figure(3.6, width=10)
    draw_rollout(fig.subplots(), samples, marks, title)
    return fig
