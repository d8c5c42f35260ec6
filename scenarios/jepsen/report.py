"""The Jepsen test's products: the figures and the study note ``report.md``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from raft.core.quorum import majority
from scenarios.checks import CheckResult
from scenarios.jepsen.history import Record
from scenarios.jepsen.nemesis import fault_intervals
from scenarios.linearizability import Status, Verdict

if TYPE_CHECKING:
    from scenarios.jepsen.settings import Settings
    from viz.figures.jepsen import HistoryModel

__all__ = ["draw", "history_model", "write_note"]


def history_model(
    records: Sequence[Record], fault_lines: Iterable[dict[str, Any]], t0: float, t_end: float
) -> HistoryModel:
    """Rows and windows relative to ``t0``, as `viz` draws them; a zero-length
    operation still shows."""
    from viz.figures.jepsen import FaultWindow, HistoryModel, OpBar

    bars = tuple(
        OpBar(r.client, r.invoke - t0, max(r.end - r.invoke, 1e-4), r.status.value, r.op)
        for r in records
    )
    faults = tuple(
        FaultWindow(i.start - t0, i.end - t0, i.kind, i.label, i.short)
        for i in fault_intervals(list(fault_lines), t_end)
        if i.end >= t0
    )
    clients = tuple(sorted({r.client for r in records}))
    return HistoryModel(bars, faults, clients, t_end - t0)


def draw(
    out: Path,
    records: list[Record],
    fault_lines: list[dict[str, Any]],
    t_start: float,
    t_end: float,
    s: Settings,
    say: Callable[[str], None],
) -> list[str]:
    """``history.png/svg`` from the records, ``timeline.png/svg`` from the traces."""
    from viz.figures import save, timeline_figure
    from viz.figures.jepsen import history_figure

    names: list[str] = []
    model = history_model(records, fault_lines, t_start, t_end)
    title = (
        f"Jepsen test: {s.clients} clients, {s.managers} managers, seed {s.seed}, {s.duration:g} s"
    )
    save(history_figure(model, title), out / "history", dpi=130)
    names.append("history.png")
    try:
        from viz.model import read_model

        tm = read_model(out / "traces", until=t_end)
        fig = timeline_figure(tm, "Roles of the managers during the Jepsen test")
        save(fig, out / "timeline")
        names.append("timeline.png")
    except Exception as e:  # the roles figure is a bonus; the history figure is the point
        say(f"[jepsen] no timeline figure: {type(e).__name__}: {e}")
    return names


def _op_row(r: Record, t0: float) -> dict[str, Any]:
    """One operation of a minimized violation, its cells as the note prints them."""
    return {
        "id": r.id,
        "client": r.client,
        "op": r.op,
        "input": "" if r.input is None else repr(tuple(r.input)),
        "output": repr(r.output) if r.status is Status.OK else "",
        "status": r.status.value,
        "http": r.http,
        "node": r.node,
        "served_by": r.served_by,
        "invoke": r.invoke - t0,
        "end": None if r.status is Status.INFO else r.end - t0,
    }


def write_note(
    out: Path,
    s: Settings,
    records: list[Record],
    verdict: Verdict | None,
    checks: list[CheckResult],
    metrics: dict[str, Any],
    fault_lines: list[dict[str, Any]],
    t_start: float,
    t_end: float,
    figures: list[str],
    passed: bool,
) -> None:
    """``report.md`` from ``viz/templates/jepsen.md.j2``."""
    from viz.notes import render

    windows = fault_intervals(fault_lines, t_end)
    by_id = {r.id: r for r in records}
    keys = []
    violations = []
    if verdict is not None:
        for k, r in verdict.keys.items():
            word = "linearizable" if r.ok else ("undecided" if r.ok is None else "VIOLATION")
            keys.append({"key": k, "ops": r.ops, "states": r.states, "verdict": word})
        for v in verdict.violations:
            rows = [_op_row(by_id[op.id], t_start) for op in v.core if op.id in by_id]
            violations.append({"key": v.key, "failed_at": v.failed_at - t_start,
                               "explanation": v.explanation, "rows": rows})  # fmt: skip
    text = render(
        "jepsen.md.j2",
        passed=passed,
        checked=verdict is not None,
        linearizable=verdict.ok if verdict is not None else None,
        clients=s.clients,
        managers=s.managers,
        quorum=majority(s.managers),
        tolerance=(s.managers - 1) // 2,
        duration=s.duration,
        seed=s.seed,
        metrics=metrics,
        fault_kinds=sorted({w.kind for w in windows}),
        faults=[
            {"start": w.start - t_start, "end": w.end - t_start, "label": w.label} for w in windows
        ],
        keys=keys,
        violations=violations,
        checks=checks,
        figures=figures,
    )
    with contextlib.suppress(OSError):
        (out / "report.md").write_text(text)
