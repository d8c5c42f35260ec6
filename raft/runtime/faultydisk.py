"""TEST ONLY: a disk that is full, slow, or fails its fsync, on a test's say-so.

`FaultyDisk` wraps a `DiskStorage` the way `raft.runtime.powercut` does, for
the three other ways a disk lets a node down (docs/architecture.md, "Disks
that fill or fail"):

* ``full``: while set, every ``sync`` raises `DiskFullError` and makes
  nothing durable, as `DiskStorage` does on a file system with no space left
  (where it also cuts back what part of the write landed).  Tests that can
  mount a small file system fill a real one instead; this lets the node's
  side be tested anywhere.
* ``fail_fsync``: a condition on the writes about to be synced; when it
  holds, the next fsync fails with EIO (`DiskStorage.fail_next_fsync`) and
  the storage refuses every later call, as after a real failed fsync.
* ``fsync_delay``: seconds every ``sync`` takes on top of the real one,
  a slow disk (a ``time.sleep``, on whichever thread the node syncs from).

Nothing in a running cluster builds one: a node gets it only from a test
(``RaftNode(..., storage=FaultyDisk.factory(...))``).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable

from raft.runtime.backends import disk_storage
from raft.runtime.disk import DiskFullError, DiskStorage
from raft.runtime.powercut import Trigger, UnsyncedWrites, WatchedDisk
from raft.runtime.settings import NodeSettings

__all__ = ["FaultyDisk", "always"]


def always(_: UnsyncedWrites) -> bool:
    """A `Trigger` that holds at the first sync it sees."""
    return True


class FaultyDisk(WatchedDisk):
    """A `DiskStorage` a test can fill, slow down or break (see the module docstring)."""

    def __init__(
        self,
        disk: DiskStorage,
        *,
        fail_fsync: Trigger | None = None,
        fsync_delay: float = 0.0,
    ) -> None:
        super().__init__(disk)
        #: While True, every sync fails with `DiskFullError` (nothing written).
        self.full = False
        #: The condition that makes the next fsync fail with EIO; None: never.
        self.fail_fsync = fail_fsync
        self.fsync_delay = fsync_delay
        self.syncs = 0
        self.full_syncs = 0

    @classmethod
    def factory(
        cls, *, fail_fsync: Trigger | None = None, fsync_delay: float = 0.0
    ) -> Callable[[NodeSettings], FaultyDisk]:
        """A `raft.runtime.backends.StorageFactory` for `RaftNode`."""
        return lambda s: cls(disk_storage(s), fail_fsync=fail_fsync, fsync_delay=fsync_delay)

    def sync(self) -> None:
        if self.fsync_delay:
            time.sleep(self.fsync_delay)
        if self.full:
            self.full_syncs += 1
            raise DiskFullError(self.disk.path, OSError(errno.ENOSPC, "No space left on device"))
        if self.fail_fsync is not None and self.fail_fsync(self._writes):
            self.fail_fsync = None
            self.disk.fail_next_fsync(OSError(errno.EIO, "Input/output error"))
        super().sync()
        self.syncs += 1
