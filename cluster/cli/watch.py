"""The live status view (``watch``, and foreground ``up``).

Every refresh gathers the cluster's state (`cluster.local.status.collect`: each
manager's ``/raft/status``, the supervisor's view of its process) and the
events appended to the traces since the last refresh, then draws them:

* a header with the leader, the term and the quorum (reachable / needed),
  red when the quorum is lost;
* one row per manager: role, term, commit and applied index, availability,
  process state (running / paused / down) and whether it is reachable;
* the last few events: role changes, elections, refused votes with their
  reason, faults.

On a terminal the view is drawn in place with `rich` (``rich.live.Live``).
When stdout is not a terminal (a pipe, a file, a test) each refresh prints a
compact text snapshot instead: one status line and the new events.

The traces are followed, not reread: `TraceTail` remembers how far it read
each file and reads only what was appended since (at the start, only the
end of each file).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.local.layout import ClusterDir, Description
from cluster.local.status import collect, describe_network, reachability
from cluster.local.supervisor import Supervisor

__all__ = ["Event", "TraceTail", "describe", "plain_snapshot", "watch"]

#: How many recent events the view shows.
EVENTS_SHOWN = 8
#: At the start, read at most this much of the end of each trace.
BACKLOG_BYTES = 32 * 1024


# ---------------------------------------------------------------- following traces


class TraceTail:
    """Follow a set of JSON-lines files, returning only lines appended since the last poll.

    A file that appears later is picked up; one that shrinks (deleted and
    recreated by ``down --purge`` and ``up``) is read again from its start.
    A line is returned only once it is complete (ends with a newline).
    """

    def __init__(self, backlog: int = BACKLOG_BYTES) -> None:
        self.backlog = backlog
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}

    def poll(self, paths: Iterable[Path]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for path in paths:
            records.extend(self._read(path))
        records.sort(key=lambda r: r.get("t", 0.0))
        return records

    def _read(self, path: Path) -> list[dict[str, Any]]:
        try:
            size = path.stat().st_size
        except OSError:
            return []
        offset = self._offsets.get(path)
        skip_first = False
        if offset is None or size < offset:
            # First sight (or the file was replaced): only its last lines.
            offset = max(0, size - self.backlog) if offset is None else 0
            skip_first = offset > 0
            self._partial[path] = b""
        if size == offset:
            self._offsets[path] = offset
            return []
        try:
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
        except OSError:
            return []
        self._offsets[path] = offset + len(chunk)
        data = self._partial.get(path, b"") + chunk
        lines = data.split(b"\n")
        self._partial[path] = lines.pop()  # b"" if data ended with a newline
        if skip_first and lines:
            lines.pop(0)  # we started reading in the middle of it
        out = []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out


@dataclass(frozen=True, slots=True)
class Event:
    """One line of the view's event list."""

    t: float
    node: str
    text: str
    #: "fault", "election", "role", "refused" or "info": picks the colour.
    kind: str


def describe(rec: dict[str, Any]) -> Event | None:
    """The event worth showing for a trace record, or None for the routine ones."""
    t, node, kind = rec.get("t", 0.0), str(rec.get("node", "?")), rec.get("type")
    if kind == "role":
        text = f"{rec.get('from')} -> {rec.get('to')} (term {rec.get('term')})"
        return Event(t, node, text, "role")
    if kind == "election":
        what = "pre-vote" if rec.get("pre_vote") else "election"
        return Event(t, node, f"starts {what} for term {rec.get('term')}", "election")
    if kind == "vote" and not rec.get("granted", True):
        what = "pre-vote" if rec.get("pre_vote") else "vote"
        reason = f": {rec['reason']}" if rec.get("reason") else ""
        text = f"refuses {what} to {rec.get('candidate')} (term {rec.get('term')}){reason}"
        return Event(t, node, text, "refused")
    if kind == "fault":
        detail = rec.get("target") or " | ".join(",".join(g) for g in rec.get("groups") or [])
        return Event(t, node, f"fault: {rec.get('kind')} {detail}".rstrip(), "fault")
    if kind == "membership":
        fields = {k: v for k, v in rec.items() if k not in ("t", "node", "type")}
        return Event(t, node, "membership " + json.dumps(fields, sort_keys=True), "info")
    if kind == "start":
        return Event(t, node, f"started (term {rec.get('term')})", "info")
    if kind == "snapshot":
        return Event(t, node, f"snapshot at index {rec.get('index')}", "info")
    return None


def trace_paths(cdir: ClusterDir, desc: Description) -> list[Path]:
    return [cdir.node_dir(m.name) / "trace.jsonl" for m in desc.members] + [cdir.faults_file]


# ---------------------------------------------------------------- the model of one refresh


def _rows(st: dict[str, Any], procs: dict[str, str]) -> list[tuple[str, ...]]:
    managers = [
        (
            n["name"],
            n["role"],
            str(n["term"]),
            str(n["commit_index"]),
            str(n["applied_index"]),
            n["availability"],
            procs.get(n["name"], "?"),
            reachability(st, n),
        )
        for n in st["nodes"]
    ]
    # Workers hold no Raft state: "reachable" is whether the leader still
    # hears their heartbeats.
    workers = [
        (
            w["name"],
            "worker",
            "-",
            "-",
            "-",
            w["availability"],
            procs.get(w["name"], "?"),
            "yes" if w["state"] == "ready" else "no",
        )
        for w in st.get("workers", [])
    ]
    return managers + workers


COLUMNS = ("NODE", "ROLE", "TERM", "COMMIT", "APPLIED", "AVAILABILITY", "PROCESS", "REACHABLE")


def quorum_ok(st: dict[str, Any]) -> bool:
    return st["reachable"] >= st["quorum"]


def headline(st: dict[str, Any]) -> str:
    q = "ok" if quorum_ok(st) else "LOST"
    line = (
        f"leader: {st['leader'] or 'none'}   term: {st['term']}   "
        f"quorum: {st['reachable']}/{st['quorum']} reachable/needed ({q})"
    )
    if st.get("partition"):
        line += "   partition: " + " | ".join(",".join(g) for g in st["partition"])
    if net := describe_network(st.get("network")):
        line += "   " + net
    return line


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"


def plain_snapshot(
    st: dict[str, Any], procs: dict[str, str], events: Iterable[Event], now: float
) -> str:
    """The text a non-terminal gets per refresh: one status line, then new events."""
    short = {"leader": "L", "follower": "F", "candidate": "C", "learner": "l"}
    parts = []
    for n in st["nodes"]:
        role = short.get(n["role"], n["role"])
        parts.append(f"{n['name']}={role}/t{n['term']}/c{n['commit_index']}/a{n['applied_index']}")
    for w in st.get("workers", []):
        parts.append(f"{w['name']}=worker/{w['state']}")
    q = "ok" if quorum_ok(st) else "LOST"
    line = (
        f"{_clock(now)} leader={st['leader'] or 'none'} term={st['term']} "
        f"quorum={st['reachable']}/{st['quorum']} {q} | " + " ".join(parts)
    )
    if st.get("partition"):
        line += " | partition=" + "|".join(",".join(g) for g in st["partition"])
    lines = [line] + [f"  {_clock(e.t)} {e.node}: {e.text}" for e in events]
    return "\n".join(lines)


# ---------------------------------------------------------------- drawing with rich

_ROLE_STYLE = {
    "leader": "bold green",
    "follower": "",
    "candidate": "yellow",
    "learner": "cyan",
    "down": "red",
    "paused": "yellow",
    "locked": "magenta",
}
_EVENT_STYLE = {"fault": "bold magenta", "election": "yellow", "role": "cyan", "refused": "red"}


def render(st: dict[str, Any], procs: dict[str, str], events: Iterable[Event]) -> Any:
    """A rich renderable of one refresh."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    ok = quorum_ok(st)
    head = Text(headline(st), style="bold white on red" if not ok else "bold green")
    table = Table(expand=False, header_style="bold")
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("TERM", "COMMIT", "APPLIED") else "left")
    for row in _rows(st, procs):
        style = _ROLE_STYLE.get(row[1], "")
        cells = [Text(c) for c in row]
        cells[1].stylize(style)
        if row[6] != "running":
            cells[6].stylize("red" if row[6] == "down" else "yellow")
        if row[7] != "yes":
            cells[7].stylize("red")
        table.add_row(*cells, style="bold" if row[1] == "leader" else None)
    ev = Table(
        show_header=False, box=None, pad_edge=False, title="recent events", title_justify="left"
    )
    ev.add_column("time", style="dim")
    ev.add_column("node")
    ev.add_column("event")
    for e in events:
        ev.add_row(_clock(e.t), e.node, Text(e.text, style=_EVENT_STYLE.get(e.kind, "")))
    hint = Text("Ctrl-C to stop", style="dim")
    return Group(head, table, ev, hint)


# ---------------------------------------------------------------- the loop


class _View:
    """What one refresh needs and what it remembers between refreshes."""

    def __init__(self, sup: Supervisor, cdir: ClusterDir) -> None:
        self.sup, self.cdir = sup, cdir
        self.tail = TraceTail()
        self.recent: deque[Event] = deque(maxlen=EVENTS_SHOWN)

    def refresh(self) -> tuple[dict[str, Any], dict[str, str], list[Event]]:
        desc = self.cdir.load()
        st = collect(self.sup, desc)
        procs = {m.name: self.sup.process_state(m) for m in desc.members}
        new = [e for r in self.tail.poll(trace_paths(self.cdir, desc)) if (e := describe(r))]
        self.recent.extend(new)
        return st, procs, new


def watch(
    sup: Supervisor, cdir: ClusterDir, interval: float = 0.3, count: int | None = None
) -> None:
    """Show the cluster until Ctrl-C (the caller catches it) or ``count`` refreshes."""
    from rich.console import Console

    console = Console()
    view = _View(sup, cdir)
    n = 0
    if not console.is_terminal:
        while count is None or n < count:
            started = time.monotonic()
            st, procs, new = view.refresh()
            if n == 0:
                new = new[-EVENTS_SHOWN:]  # the backlog: only its end
            print(plain_snapshot(st, procs, new, time.time()), flush=True)
            n += 1
            if count is None or n < count:
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
        return

    from rich.live import Live

    st, procs, _ = view.refresh()
    n = 1
    with Live(render(st, procs, view.recent), console=console, refresh_per_second=8) as live:
        while count is None or n < count:
            time.sleep(interval)
            st, procs, _ = view.refresh()
            live.update(render(st, procs, view.recent))
            n += 1
