"""TEST ONLY: a disk whose power a test can cut, to see "persist before send" hold.

A killed process keeps the kernel's page cache, so killing a node never
shows a vote or an acknowledgement sent before its fsync: the write still
reaches the disk.  A power loss does not forgive that.  `PowerCutStorage`
wraps a `DiskStorage` and, once a test arms it, cuts the power at the first
``sync`` whose writes match the test's condition: every write not yet
fsynced is dropped (`DiskStorage.lose_power`) and `PowerCut` is raised, so
the node fails on the spot, before anything of that batch that waits for the
fsync can leave.  Whatever the driver sent *before* the fsync has left.

Nothing in a running cluster builds one: a node gets it only from a test
(``RaftNode(..., storage=PowerCutStorage.factory(when))``), and it does
nothing until armed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from raft.core.messages import Entry, HardState, Snapshot
from raft.core.storage import PersistentState
from raft.runtime.backends import disk_storage
from raft.runtime.disk import DiskStorage
from raft.runtime.settings import NodeSettings

__all__ = [
    "PowerCut",
    "PowerCutStorage",
    "UnsyncedWrites",
    "WatchedDisk",
    "appends_a_command",
    "grants_a_vote",
]


class PowerCut(Exception):
    """The simulated power loss happened: this node's storage is gone."""


@dataclass(slots=True)
class UnsyncedWrites:
    """What the node wrote since its last sync (what a power loss now would take)."""

    durable: HardState
    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)


#: A condition on the writes about to be synced: cut the power if it holds.
Trigger = Callable[[UnsyncedWrites], bool]


def grants_a_vote(w: UnsyncedWrites) -> bool:
    """The writes record a vote not yet durable (§5.2: a vote being granted)."""
    hs = w.hard_state
    return (
        hs is not None
        and hs.vote is not None
        and (hs.term, hs.vote)
        != (
            w.durable.term,
            w.durable.vote,
        )
    )


class WatchedDisk:
    """TEST ONLY: a `DiskStorage` passed through, keeping what was written since
    the last sync (`UnsyncedWrites`) so a subclass can decide, at ``sync``, what
    happens to it.  `PowerCutStorage` and `raft.runtime.faultydisk.FaultyDisk`
    are the two."""

    def __init__(self, disk: DiskStorage) -> None:
        self.disk = disk
        self._writes = UnsyncedWrites(HardState())

    def load(self) -> PersistentState:
        state = self.disk.load()
        self._writes = UnsyncedWrites(state.hard_state)
        return state

    def append(self, entries: list[Entry]) -> None:
        self.disk.append(entries)
        self._writes.entries.extend(entries)

    def set_hard_state(self, hs: HardState) -> None:
        self.disk.set_hard_state(hs)
        self._writes.hard_state = hs

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self.disk.save_snapshot(snapshot)

    def install_snapshot(self, snapshot: Snapshot) -> None:
        self.disk.install_snapshot(snapshot)

    def sync(self) -> None:
        self.disk.sync()
        self._synced()

    def _synced(self) -> None:
        """The writes so far are durable: start counting afresh."""
        w = self._writes
        self._writes = UnsyncedWrites(w.hard_state or w.durable)

    def close(self) -> None:
        self.disk.close()


class PowerCutStorage(WatchedDisk):
    """A `DiskStorage` with a power switch for tests (see the module docstring)."""

    def __init__(self, disk: DiskStorage, when: Trigger | None = None) -> None:
        super().__init__(disk)
        #: The condition that cuts the power at the next sync; None: never.
        self.armed = when
        self.cut = False

    @classmethod
    def factory(cls, when: Trigger | None) -> Callable[[NodeSettings], PowerCutStorage]:
        """A `raft.runtime.backends.StorageFactory` for `RaftNode` that arms ``when``."""
        return lambda settings: cls(disk_storage(settings), when)

    def sync(self) -> None:
        if self.armed is not None and self.armed(self._writes):
            self.armed, self.cut = None, True
            self.disk.lose_power()
            raise PowerCut("power cut before the fsync (test hook)")
        super().sync()

    def close(self) -> None:
        if not self.cut:
            self.disk.close()


def appends_a_command(w: UnsyncedWrites) -> bool:
    """The writes hold a client's command (a non-empty entry), not just a no-op."""
    return any(e.data for e in w.entries)
