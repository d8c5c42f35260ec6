"""A manager process whose disk fails its fsync: ``python faulty_manager.py --config FILE``.

TEST ONLY.  The same ``python -m cluster.manager`` a cluster runs, except
that its Raft node's storage is a `raft.runtime.faultydisk.FaultyDisk` whose
first fsync of a client's command fails with EIO.  A test starts it by hand
in place of one manager (same config, same data) and waits for it to exit.
"""

from __future__ import annotations

import sys
from typing import Any

import cluster.manager.process as process
from raft.runtime.faultydisk import FaultyDisk
from raft.runtime.node import RaftNode
from raft.runtime.powercut import appends_a_command


class _NodeOnAFailingDisk(RaftNode):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["storage"] = FaultyDisk.factory(fail_fsync=appends_a_command)
        super().__init__(*args, **kwargs)


if __name__ == "__main__":
    process.RaftNode = _NodeOnAFailingDisk  # type: ignore[misc]
    sys.exit(process.main())
