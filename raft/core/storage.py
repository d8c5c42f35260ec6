"""What a node keeps on stable storage, and the in-memory twin used by tests.

Raft's safety rests on three things surviving a crash (Figure 2): the
current term, the vote cast in it, and the log.  The core never touches a
disk; it hands the driver a `Ready` batch and the driver writes it through a
`Storage` and syncs it *before* sending the messages that promise it
(persist before send; the order is `raft.core.persist`).

`MemoryStorage` keeps the same data in plain Python objects.  The simulator
keeps one per node as the durable part of its disk (`raft.sim.node`), across
simulated crashes, which is exactly the difference between volatile and
persistent state; writes not yet synced sit in front of it and a crash loses
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from raft.core.messages import Entry, HardState, Snapshot


@dataclass(slots=True)
class PersistentState:
    """Everything a node reloads at start: hard state, snapshot, log after it."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot = field(default_factory=Snapshot)
    entries: list[Entry] = field(default_factory=list)


class Storage(Protocol):
    """Durable home of one node's Raft state.

    `append` may start at or before the current last index: the entries from
    ``entries[0].index`` on replace whatever was stored there (a follower
    overwriting a conflicting suffix, §5.3).  Nothing is durable until `sync`
    returns.
    """

    def load(self) -> PersistentState: ...

    def append(self, entries: list[Entry]) -> None: ...

    def set_hard_state(self, hs: HardState) -> None: ...

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot of our own and drop every entry it covers (§7)."""
        ...

    def install_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot from the leader: it replaces the whole log (Figure 13)."""
        ...

    def sync(self) -> None: ...


class MemoryStorage:
    """`Storage` in memory: durable for as long as the object lives."""

    def __init__(self) -> None:
        self._state = PersistentState()

    def load(self) -> PersistentState:
        s = self._state
        return PersistentState(s.hard_state, s.snapshot, list(s.entries))

    def append(self, entries: list[Entry]) -> None:
        if not entries:
            return
        log = self._state.entries
        offset = self._state.snapshot.meta.index + 1
        keep = entries[0].index - offset
        if keep < 0:
            raise ValueError(f"append at {entries[0].index} is below the snapshot")
        if keep > len(log):
            last = offset + len(log) - 1
            raise ValueError(f"append at {entries[0].index} leaves a gap after {last}")
        del log[keep:]
        log.extend(entries)

    def set_hard_state(self, hs: HardState) -> None:
        self._state.hard_state = hs

    def save_snapshot(self, snapshot: Snapshot) -> None:
        s = self._state
        index = snapshot.meta.index
        if index < s.snapshot.meta.index:
            raise ValueError(
                f"snapshot at {index} is older than the stored one at {s.snapshot.meta.index}"
            )
        s.entries = [e for e in s.entries if e.index > index]
        if s.entries and s.entries[0].index != index + 1:
            s.entries = []
        s.snapshot = snapshot

    def install_snapshot(self, snapshot: Snapshot) -> None:
        self.save_snapshot(snapshot)
        self._state.entries = []

    def sync(self) -> None:
        pass
