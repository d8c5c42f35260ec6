"""The benchmark's figure: latency of sampled writes over time, failovers shaded.

`latency_model` turns the benchmark's samples into series per phase (pure,
tested without a figure); `draw_write_latency` only draws them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from viz.figures.base import new_figure

__all__ = ["LatencyModel", "draw_write_latency", "latency_figure", "latency_model"]


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Times are seconds from the start of the measurements, latencies ms."""

    managers: int
    #: phase -> (times, latencies), phases in the order they were first sampled
    phases: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]
    #: failover windows: from the kill until the cluster caught up
    windows: tuple[tuple[float, float], ...]


def latency_model(
    samples: Iterable[tuple[float, float, str]],
    windows: Iterable[tuple[float, float]],
    t0: float,
    managers: int,
) -> LatencyModel:
    """From ``(time, ms, phase)`` samples and ``(start, end)`` windows in absolute time."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for t, ms, phase in samples:
        xs, ys = series.setdefault(phase, ([], []))
        xs.append(t - t0)
        ys.append(ms)
    phases = {p: (tuple(xs), tuple(ys)) for p, (xs, ys) in series.items()}
    return LatencyModel(managers, phases, tuple((a - t0, b - t0) for a, b in windows))


def draw_write_latency(ax: Axes, model: LatencyModel) -> None:
    """A point per sampled write on a log axis, a colour per phase."""
    for phase, (xs, ys) in model.phases.items():
        ax.scatter(xs, ys, s=2, alpha=0.5, label=phase, rasterized=True)
    for i, (a, b) in enumerate(model.windows):
        ax.axvspan(a, b, color="red", alpha=0.12,
                   label="failover (kill .. caught up)" if i == 0 else None)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("seconds since the start of the measurements")
    ax.set_ylabel("write latency (ms)")
    ax.set_title(f"Write latency over time, {model.managers} managers")
    ax.legend(loc="upper left", fontsize=7, markerscale=4, ncol=2)


def latency_figure(model: LatencyModel) -> Figure:
    fig = new_figure(4.5, width=11)
    draw_write_latency(fig.subplots(), model)
    return fig
