"""The Jepsen test's products: the figures and the study note ``report.md``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scenarios.checks import CheckResult
from scenarios.jepsen_history import Record
from scenarios.jepsen_nemesis import fault_intervals
from scenarios.linearizability import Status, Verdict

if TYPE_CHECKING:
    from scenarios.jepsen_settings import Settings
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


def _rel(t: float, t0: float) -> str:
    return f"{t - t0:.2f} s"


def _op_row(r: Record, t0: float) -> str:
    end = "∞ (unknown)" if r.status is Status.INFO else _rel(r.end, t0)
    inp = "" if r.input is None else f"{tuple(r.input)!r}"
    out = "" if r.status is not Status.OK else repr(r.output)
    return (
        f"| #{r.id} | client {r.client} | {r.op} | {inp} | {out} | {r.status.value} "
        f"| {r.http or ''} | {r.node or ''} → {r.served_by or '?'} "
        f"| {_rel(r.invoke, t0)} | {end} |"
    )


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
    lines: list[str] = []
    add = lines.append
    word = "PASSED" if passed else "FAILED"
    if verdict is None:
        lin = "not checked (no history)"
    elif verdict.ok:
        lin = "**linearizable**"
    elif verdict.ok is None:
        lin = "**undecided** (the checker's search budget ran out)"
    else:
        lin = "**NOT linearizable**"
    add(f"# Jepsen-style test: {word}")
    add("")
    kinds = sorted({w.kind for w in fault_intervals(fault_lines, t_end)})
    add(
        f"{s.clients} clients read, wrote and compare-and-set {metrics['keys']} registers on "
        f"{s.managers} real manager processes for {s.duration:g} s while a nemesis "
        f"(seed {s.seed}) injected {metrics['faults_injected']} faults "
        f"({', '.join(kinds) or 'none'}). "
        f"The history of {metrics['ops']} operations is {lin}."
    )
    add("")
    add(f"    python -m scenarios run jepsen --duration {s.duration:g} --seed {s.seed} "
        f"--clients {s.clients}")  # fmt: skip
    add("")
    add("| operations | ok | fail | unknown | 409 refusals | keys | states explored | check |")
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    add(
        f"| {metrics['ops']} | {metrics['ok']} | {metrics['fail']} | {metrics['unknown']} "
        f"| {metrics['refused_409']} | {metrics['keys']} | {metrics['states_explored']} "
        f"| {metrics['check_seconds']:.2f} s |"
    )
    add("")
    if "history.png" in figures:
        add("![Operations over time and their latency](history.png)")
        add("")
        add(
            "Each row is a client; each bar one operation from invocation to answer: green "
            "ok, red (hatched `////`, x marker) failed without effect, amber (hatched "
            "`xx`, triangle) unknown -- the client gave up at the end of the bar, but the "
            "operation may "
            "take effect at any later time. Shaded windows are the faults. Below, each "
            "operation's latency on a log scale: note the walls at the client timeout "
            "during faults, and how fast everything is again after each heal."
        )
        add("")
    add("## The registers and the model")
    add("")
    add(
        "Each register is a config: its value is `Spec.Labels.value`, its version "
        "`Version.Index`. A **read** is `GET /configs/{key}` (linearizable: ReadIndex) and "
        "returns (version, value). A **write** and a **cas** are both "
        "`POST /configs/{key}/update?version=V` -- a compare-and-set on the version; a write "
        "sends the last version its client saw, a cas a version drawn from the key's recent "
        'ones (often stale). The answer is the new version, or 409 ("update out of '
        'sequence"): an *ok* refusal, a committed fact that the version was not V. The '
        "checker uses the versioned-object model (`VersionedModel`), each key starting "
        "from the (version, value) read back after its creation."
    )
    add("")
    add(
        "Answers are mapped conservatively: a timeout, a dropped connection after "
        'sending, a 500 or a 503 that could come after the write was proposed ("did not '
        'commit within ... it may still commit later", leadership lost in flight, the '
        "leader unreachable from a forwarding follower) are **unknown**: the write may "
        "take effect at any time later, or never. Only a refused connection, a 4xx, or a "
        "503 that proves no proposal was made (no leader known, a read barrier timed out) "
        "is a **fail**."
    )
    add("")
    add("## Faults")
    add("")
    windows = fault_intervals(fault_lines, t_end)
    if windows:
        add("| from | to | fault |")
        add("| ---: | ---: | --- |")
        for w in windows:
            label = w.label.replace("|", "\\|")  # a partition's sides, inside a table
            add(f"| {_rel(w.start, t_start)} | {_rel(w.end, t_start)} | {label} |")
    else:
        add("No fault was injected.")
    add("")
    add("## Per key")
    add("")
    if verdict is not None:
        add("| key | operations checked | states explored | verdict |")
        add("| --- | ---: | ---: | --- |")
        for k, r in verdict.keys.items():
            v = "linearizable" if r.ok else ("undecided" if r.ok is None else "VIOLATION")
            add(f"| `{k}` | {r.ops} | {r.states} | {v} |")
        add("")
        add(
            "The checker drops failed operations and reads of unknown outcome; an unknown "
            "write stays, free to take effect anywhere after its invocation."
        )
        add("")
    if verdict is not None and verdict.violations:
        by_id = {r.id: r for r in records}
        add("## Violations")
        add("")
        for v in verdict.violations:
            add(f"### Key `{v.key}`, first failing at {_rel(v.failed_at, t_start)}")
            add("")
            add("```")
            add(v.explanation)
            add("```")
            add("")
            add("The minimized operations (times since the clients started):")
            add("")
            add("| op | client | kind | input (expected, value) | output | status | HTTP "
                "| asked → served by | invoked | answered |")  # fmt: skip
            add("| --- | --- | --- | --- | --- | --- | --- | --- | ---: | ---: |")
            for op in v.core:
                rec = by_id.get(op.id)
                if rec is not None:
                    add(_op_row(rec, t_start))
            add("")
    add("## Checks")
    add("")
    for c in checks:
        add(f"- {'✅' if c.passed else '❌'} **{c.name}**: {c.detail}")
    add("")
    add(
        "Files: `history.jsonl` (one operation a line, readable by "
        "`scenarios.linearizability.loads_history`), `faults.jsonl`, `result.json`, "
        + ", ".join(f"`{f}`" for f in figures)
        + ", `traces/`."
    )
    with contextlib.suppress(OSError):
        (out / "report.md").write_text("\n".join(lines) + "\n")
