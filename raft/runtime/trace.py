"""A node's trace: JSON lines that `viz` and the scenario checks read.

Every line is one object with ``t`` (Unix time, float seconds), ``node`` and
``type``, plus the fields of its type (docs/traces.md).  Rare events
(role changes, elections, votes, snapshots, ...) become one line each.
Frequent ones would swamp the file and the disk at full rate, so they are
summarised:

* ``commit`` and ``apply``: at most one line per `TraceSettings.sample_interval`.
  The first event after a quiet spell is written as it is; the ones that follow
  within the interval are folded into one line carrying the last index, the
  first index of the range and a ``count``, written when the interval is over.
  A plot of commit index over time therefore keeps its shape at a 100 ms grain.
* ``append`` / ``append_reply``: counters (messages and entries, sent and
  received) summed over all peers, one line per `TraceSettings.count_interval`
  and only when something happened.  Heartbeats are counted, never listed.
* ``message``: what this node *sent*, link by link, so that a view can draw
  messages between nodes.  Every vote and pre-vote request and answer is one
  line (``kind`` ``vote_request`` / ``pre_vote_request`` / ``vote_reply`` /
  ``pre_vote_reply``, with ``granted``).  AppendEntries (``append``, or
  ``heartbeat`` when empty) and their answers (``append_reply``) are counted
  per link and written as one line per `TraceSettings.link_interval` with
  ``count``, ``entries`` and ``window`` (seconds), only for links that carried
  something.

Writing must never stall the Raft loop, so `TraceWriter.emit` only appends to
an in-memory buffer; `TraceWriter.run` (a task the node owns) writes the
buffer out from a worker thread every `TraceSettings.flush_interval`.  The
buffer is bounded: when the disk cannot keep up, new lines are dropped and
counted, and a ``trace_overflow`` line says how many once there is room again.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from raft.core.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Message,
    RequestVote,
    RequestVoteResponse,
)
from raft.core.protocol import RaftCore, TraceEvent

__all__ = ["TraceSettings", "TraceWriter"]


#: Trace event types that also deserve a line on stderr.
_NOTABLE = frozenset(
    {"role", "election", "check_quorum", "snapshot", "membership", "transfer", "leader"}
)


@dataclass(frozen=True, slots=True)
class TraceSettings:
    sample_interval: float = 0.1  # at most one commit / apply line per this many seconds
    count_interval: float = 1.0  # append / append_reply counters per this many seconds
    link_interval: float = 0.1  # per-link ``message`` summaries per this many seconds
    # How often the buffer goes to the file: what a live view reading the trace lags by.
    flush_interval: float = 0.1
    max_buffered: int = 50_000  # lines held in memory before new ones are dropped


@dataclass(slots=True)
class _Range:
    """commit or apply events folded into one line."""

    first: int
    last: int
    count: int
    extra: dict[str, Any]
    ops: Counter[str] = field(default_factory=Counter)


class TraceWriter:
    """Buffers a node's trace lines and writes them in the background.

    With ``path`` None the writer only counts (a node without a trace file
    behaves the same, just silently).
    """

    def __init__(
        self, path: str | Path | None, node: str, settings: TraceSettings | None = None
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.node = node
        self.settings = settings or TraceSettings()
        self.dropped = 0
        self._buf: list[str] = []
        self._unreported_drops = 0
        self._file: TextIO | None = None
        # A flush cancelled at shutdown may still be writing in its thread.
        self._write_lock = threading.Lock()
        # Summaries: type -> pending range, and when that type was last written.
        self._ranges: dict[str, _Range] = {}
        self._last_sampled: dict[str, float] = {}
        self._counters: dict[str, Counter[str]] = {}
        self._counters_since = time.time()
        # Per link: (kind, destination) -> [messages, entries, highest term].
        self._links: dict[tuple[str, str], list[int]] = {}
        self._links_since = self._counters_since

    # ------------------------------------------------------------ recording

    def record(self, ev: TraceEvent, core: RaftCore) -> bool:
        """Write one of the core's trace events; True if it deserves a log line too.

        A role change is followed by a ``log`` line (`log_of`), so figures see
        the log as it stood when the role changed.
        """
        f = ev.fields
        if ev.type == "commit":
            self.commit(f.get("index", 0), f.get("term"))
            return False
        self.emit(ev.type, **f)
        if ev.type == "role":
            self.log_of(core)
        return ev.type in _NOTABLE

    def log_of(self, core: RaftCore, last: int = 64) -> None:
        """Write a ``log`` line: (index, term) of the last entries and the commit
        index, so figures can draw the logs side by side (viz's log matrix).
        Written on start, on every role change, and on request."""
        log = core.log
        lo = max(log.offset, log.last_index - last + 1)
        self.emit(
            "log",
            entries=[[e.index, e.term] for e in log.entries[lo - log.offset :]],
            commit=log.committed,
            snapshot_index=core.snapshot.meta.index,
        )

    def emit(self, type_: str, **fields: Any) -> None:
        """Record one line now (never blocks; may drop if the buffer is full)."""
        self._put({"t": time.time(), "node": self.node, "type": type_, **fields})

    def commit(self, index: int, term: int | None) -> None:
        """The commit index advanced to ``index`` (sampled)."""
        self._sample("commit", index, {"term": term}, None)

    def apply(self, index: int, op: str) -> None:
        """The entry at ``index`` (an ``op`` command) was applied (sampled)."""
        self._sample("apply", index, {}, op)

    def count(self, type_: str, **increments: int) -> None:
        """Add to the counters reported in the next ``type_`` summary line."""
        counter = self._counters.setdefault(type_, Counter())
        counter.update(increments)

    def sent(self, kind: str, dst: str, term: int, entries: int = 0) -> None:
        """One AppendEntries-like message to ``dst``, counted for its link's summary."""
        link = self._links.get((kind, dst))
        if link is None:
            self._links[(kind, dst)] = [1, entries, term]
        else:
            link[0] += 1
            link[1] += entries
            if term > link[2]:
                link[2] = term

    def on_send(self, m: Message) -> None:
        """Count or record one message this node sends (``append`` counters, ``message``)."""
        if isinstance(m, AppendEntries):
            n = len(m.entries)
            self.count("append", sent=1, entries_sent=n, heartbeats_sent=0 if n else 1)
            self.sent("append" if n else "heartbeat", m.dst, m.term, n)
        elif isinstance(m, AppendEntriesResponse):
            self.count("append_reply", sent=1)
            self.sent("append_reply", m.dst, m.term)
        elif isinstance(m, RequestVote):
            kind = "pre_vote_request" if m.pre_vote else "vote_request"
            self.emit("message", kind=kind, to=m.dst, term=m.term, **{"from": m.src})
        elif isinstance(m, RequestVoteResponse):
            kind = "pre_vote_reply" if m.pre_vote else "vote_reply"
            self.emit(
                "message", kind=kind, to=m.dst, term=m.term, granted=m.granted,
                **{"from": m.src},
            )  # fmt: skip

    def on_receive(self, m: Message) -> None:
        """Count one message this node received (the ``append`` counters)."""
        if isinstance(m, AppendEntries):
            n = len(m.entries)
            self.count("append", received=1, entries_received=n, heartbeats_received=0 if n else 1)
        elif isinstance(m, AppendEntriesResponse):
            self.count("append_reply", received=1, rejected=0 if m.success else 1)

    def summarize(self, force: bool = False) -> None:
        """Write the summaries whose interval is over (all of them if ``force``)."""
        now = time.time()
        if self._links and (force or now - self._links_since >= self.settings.link_interval):
            window = round(now - self._links_since, 3)
            for (kind, dst), (n, entries, term) in self._links.items():
                self._put(
                    {"t": now, "node": self.node, "type": "message", "kind": kind,
                     "from": self.node, "to": dst, "term": term, "count": n,
                     "entries": entries, "window": window}
                )  # fmt: skip
            self._links = {}
            self._links_since = now
        elif not self._links:
            self._links_since = now
        for type_, pending in list(self._ranges.items()):
            if force or now - self._last_sampled.get(type_, 0.0) >= self.settings.sample_interval:
                del self._ranges[type_]
                self._write_range(type_, pending, now)
        if force or now - self._counters_since >= self.settings.count_interval:
            interval = round(now - self._counters_since, 3)
            for type_, counter in self._counters.items():
                if counter:
                    self._put(
                        {
                            "t": now,
                            "node": self.node,
                            "type": type_,
                            "interval": interval,
                            **counter,
                        }
                    )
            self._counters = {}
            self._counters_since = now

    def _sample(self, type_: str, index: int, extra: dict[str, Any], op: str | None) -> None:
        now = time.time()
        pending = self._ranges.get(type_)
        if pending is None and now - self._last_sampled.get(type_, 0.0) >= (
            self.settings.sample_interval
        ):
            one = _Range(index, index, 1, extra)
            if op is not None:
                one.ops[op] += 1
            self._write_range(type_, one, now)
            return
        if pending is None:
            pending = self._ranges[type_] = _Range(index, index, 0, extra)
        pending.last = index
        pending.count += 1
        pending.extra = extra
        if op is not None:
            pending.ops[op] += 1

    def _write_range(self, type_: str, r: _Range, now: float) -> None:
        self._last_sampled[type_] = now
        line: dict[str, Any] = {"t": now, "node": self.node, "type": type_, "index": r.last}
        line.update(r.extra)
        if r.ops:
            # The op kind of a single entry, or the mix of a folded range.
            line["op"] = next(iter(r.ops)) if len(r.ops) == 1 else "mixed"
        if r.count > 1:
            line["first_index"] = r.first
            line["count"] = r.count
            if len(r.ops) > 1:
                line["ops"] = dict(r.ops)
        self._put(line)

    def _put(self, line: dict[str, Any]) -> None:
        if self.path is None:
            return
        if len(self._buf) >= self.settings.max_buffered:
            self.dropped += 1
            self._unreported_drops += 1
            return
        if self._unreported_drops:
            n, self._unreported_drops = self._unreported_drops, 0
            self._buf.append(
                json.dumps(
                    {"t": line["t"], "node": self.node, "type": "trace_overflow", "dropped": n}
                )
            )
        self._buf.append(json.dumps(line, default=str, separators=(",", ":")))

    # ------------------------------------------------------------ writing

    async def run(self) -> None:
        """Summarise and flush periodically until cancelled (then flush once more)."""
        try:
            while True:
                await asyncio.sleep(self.settings.flush_interval)
                self.summarize()
                await self.flush()
        finally:
            self.summarize(force=True)
            self.flush_now()

    async def flush(self) -> None:
        """Write what is buffered from a worker thread, off the event loop."""
        if not self._buf:
            return
        lines, self._buf = self._buf, []
        await asyncio.to_thread(self._write, lines)

    def flush_now(self) -> None:
        """Write what is buffered, blocking (for shutdown)."""
        lines, self._buf = self._buf, []
        if lines:
            self._write(lines)

    def close(self) -> None:
        self.summarize(force=True)
        self.flush_now()
        with self._write_lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _write(self, lines: list[str]) -> None:
        if self.path is None:
            return
        with self._write_lock:
            size = -1
            try:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                size = os.fstat(self._file.fileno()).st_size  # all flushed before
                self._file.write("\n".join(lines) + "\n")
                self._file.flush()
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                # A full disk must not stop the node: the trace is for people,
                # not for Raft.  The lines are dropped (counted, reported by the
                # next ``trace_overflow`` line), the part that landed is cut
                # off (no half line for a reader to choke on), and the file is
                # reopened next time.
                self.dropped += len(lines)
                self._unreported_drops += len(lines)
                if self._file is not None:
                    with contextlib.suppress(OSError):
                        self._file.close()  # closes even when its last flush fails
                    self._file = None
                if size >= 0:
                    os.truncate(self.path, size)
