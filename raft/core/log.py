"""The in-memory view of a node's Raft log.

Layout::

    snapshot.index | offset ............................. last_index
    (compacted)    | entries[0]   entries[1]   ...   entries[-1]

Invariants, checked by the simulator after every step:

* ``snapshot_index < offset == snapshot_index + 1``; ``entries[i].index == offset + i``.
* ``applied <= committed <= last_index`` (an entry is applied only once committed).
* terms never decrease along the log.
* ``stable`` (persisted, acknowledged by storage) ``<= last_index``.

The log knows nothing of roles or messages; `raft.core.protocol` decides what to append
and when an index is committed.
"""

from __future__ import annotations

from raft.core.messages import Entry, SnapshotMeta


class RaftLog:
    """Entries after the last snapshot, plus the commit and apply positions."""

    __slots__ = ("applied", "committed", "entries", "snapshot", "stable")

    def __init__(self, snapshot: SnapshotMeta, entries: list[Entry], committed: int) -> None:
        self.snapshot = snapshot
        self.entries: list[Entry] = [e for e in entries if e.index > snapshot.index]
        if self.entries and self.entries[0].index != snapshot.index + 1:
            raise ValueError(
                f"log starts at {self.entries[0].index}, expected {snapshot.index + 1}"
            )
        #: Everything loaded from storage is durable already.
        self.stable = self.last_index
        self.committed = max(min(committed, self.last_index), snapshot.index)
        #: The snapshot is applied when the state machine is restored from it.
        self.applied = snapshot.index

    # ------------------------------------------------------------ positions

    @property
    def offset(self) -> int:
        return self.snapshot.index + 1

    @property
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snapshot.index

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot.term

    def term(self, index: int) -> int | None:
        """Term of the entry at ``index``; None if compacted away or beyond the end."""
        if index == self.snapshot.index:
            return self.snapshot.term
        i = index - self.offset
        if 0 <= i < len(self.entries):
            return self.entries[i].term
        return None

    def match_term(self, index: int, term: int) -> bool:
        """Log Matching's check (§5.3): do we hold an entry at ``index`` with ``term``?"""
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """The election restriction (§5.4.1): is a log ending at (term, index) at
        least as up-to-date as ours?  Later term wins; same term, longer log wins."""
        return (last_term, last_index) >= (self.last_term, self.last_index)

    def first_index_of_term(self, index: int) -> int:
        """Walk back from ``index`` to the first entry of the same term.

        Used for the conflict hint: the leader can then skip the whole term
        in one round trip instead of one entry at a time (end of §5.3).
        """
        term = self.term(index)
        i = index
        while i > self.offset and self.term(i - 1) == term:
            i -= 1
        return i

    def last_index_of_term(self, term: int) -> int | None:
        """The last index that holds ``term``, or None if the term is absent."""
        for e in reversed(self.entries):
            if e.term == term:
                return e.index
            if e.term < term:
                return None
        return None

    # ------------------------------------------------------------ reading

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.offset]

    def slice(self, lo: int, hi: int, max_count: int, max_bytes: int) -> list[Entry]:
        """Entries in [lo, hi), at most ``max_count`` and (after the first) ``max_bytes``."""
        start = lo - self.offset
        if start < 0:
            raise IndexError(f"index {lo} is compacted (log starts at {self.offset})")
        out = self.entries[start : start + min(hi - lo, max_count)]
        if max_bytes and len(out) > 1:
            size = 0
            for n, e in enumerate(out):
                size += len(e.data)
                if size > max_bytes and n > 0:
                    return out[:n]
        return out

    # ------------------------------------------------------------ writing

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        """Append at the end; ``entries[0]`` must follow ``last_index``."""
        if not entries:
            return
        if entries[0].index != self.last_index + 1:
            raise ValueError(f"append at {entries[0].index} after {self.last_index}")
        self.entries.extend(entries)

    def truncate_from(self, index: int) -> None:
        """Drop ``index`` and everything after it (a conflicting suffix, §5.3).

        A committed entry is never dropped: that would break State Machine
        Safety (§5.4.3), so trying is a bug and raises.
        """
        if index <= self.committed:
            raise AssertionError(f"truncating committed entry {index} (commit {self.committed})")
        del self.entries[index - self.offset :]
        self.stable = min(self.stable, index - 1)

    def compact(self, meta: SnapshotMeta) -> None:
        """Forget entries up to ``meta.index``, now covered by a snapshot (§7)."""
        if meta.index <= self.snapshot.index:
            return
        if self.term(meta.index) == meta.term:
            del self.entries[: meta.index - self.offset + 1]
        else:
            self.entries = []  # the snapshot replaces a log we do not share
        self.snapshot = meta
        self.stable = max(self.stable, meta.index)
        self.committed = max(self.committed, meta.index)
