"""The store's change log: which objects each applied entry touched.

Why
---
The leader's control loop used to rescan every node, service and task on
every pass, so a write cost more the bigger the state was.  Swarm's
orchestrators instead *watch* the store: they are told what changed and
look only there.  `ChangeLog` is that watch, kept the simplest way that is
still safe: every successful entry appends ``(index, kind, ID)`` for each
object it wrote or removed, and a reader asks for everything after the index
it last saw (`ChangeLog.since`).

The log is derived state, like the store's indexes: never part of a
snapshot, so it cannot make two replicas' snapshots differ.  It keeps only
the most recent `LIMIT` records and starts afresh on `Store.restore`; a
reader whose index is older than what the log still holds gets ``None``,
meaning "I cannot tell you what changed: look at everything" (the control
loop then does a full pass).  So a lost change costs time, never a missed
reconcile.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

__all__ = ["Change", "ChangeLog"]

#: (kind, object ID): one object that changed (created, updated or removed).
Change = tuple[str, str]


class ChangeLog:
    """Bounded, ordered record of ``(index, kind, ID)`` for applied entries."""

    #: Records kept: a reader more than this many object changes behind starts over.
    LIMIT = 20_000

    def __init__(self, start: int = 0, limit: int = LIMIT) -> None:
        self._limit = limit
        self._indexes: list[int] = []
        self._changes: list[Change] = []
        #: Every change at an index above this one is recorded.
        self.horizon = start

    def record(self, index: int, changes: Iterable[Change]) -> None:
        """What the entry at ``index`` (above every recorded one) changed."""
        for change in sorted(changes):
            self._indexes.append(index)
            self._changes.append(change)
        if len(self._changes) > 2 * self._limit:
            # Drop the oldest half at once, so trimming costs O(1) per record.
            cut = len(self._changes) - self._limit
            self.horizon = self._indexes[cut - 1]
            del self._indexes[:cut], self._changes[:cut]

    def since(self, index: int) -> set[Change] | None:
        """Every object changed by an entry after ``index``; ``None`` if no longer known."""
        if index < self.horizon:
            return None
        return set(self._changes[bisect_right(self._indexes, index) :])
