"""The tasks-per-node figure: drawn from task samples, down spans read right."""

from __future__ import annotations

from typing import Any

from viz.figures.tasks import down_spans, tasks_per_node_figure


def sample(t: float, worker1: str, on_worker1: int) -> dict[str, Any]:
    tasks = [{"id": f"w{i}", "node": "worker1", "desired": "running", "state": "running"}
             for i in range(on_worker1)]  # fmt: skip
    tasks.append({"id": "m", "node": "manager1", "desired": "running", "state": "running"})
    return {"t": t, "nodes": {"manager1": {"state": "ready"}, "worker1": {"state": worker1}},
            "tasks": tasks}  # fmt: skip


SAMPLES = [sample(10.0, "ready", 2), sample(13.0, "down", 2), sample(23.0, "down", 0),
           sample(24.0, "ready", 0)]  # fmt: skip


def test_a_down_span_lasts_until_a_sample_says_otherwise():
    assert down_spans(SAMPLES, "worker1") == [(13.0, 24.0)]
    assert down_spans(SAMPLES[:3], "worker1") == [(13.0, 23.0)]  # down to the end
    assert down_spans(SAMPLES, "manager1") == []


def test_the_figure_draws_a_line_per_node_and_labels_its_marks_inside():
    fig = tasks_per_node_figure(SAMPLES, 9.0, [(10.5, "kill worker1"), (10.6, "drain x")],
                                title="Tasks")  # fmt: skip
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["manager1", "worker1"]
    labels = [t for t in ax.texts if "kill" in t.get_text() or "drain" in t.get_text()]
    assert len({t.get_position()[1] for t in labels}) == 2  # close marks: stacked, not overlaid
    assert any("worker1 down" in t.get_text() for t in ax.texts)
    top = ax.get_ylim()[1]
    assert all(t.get_position()[1] <= top for t in labels)
