"""Child process for the crash test in test_disk.py: write until killed.

Usage: ``python tests/disk_crash_child.py DATA_DIR SEED``.  Appends batches
of entries whose content is a function of their index (`expected_data`),
sets the hard state's commit to the last index, now and then saves a
snapshot, calls `sync` and only then prints ``ack <last index>``.  The parent
SIGKILLs it at a random moment and checks that every acknowledged entry is
still there.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from raft.core.messages import Entry, HardState, Snapshot, SnapshotMeta
from raft.runtime.disk import DiskStorage

SEGMENT_SIZE = 16 * 1024


def expected_data(index: int) -> bytes:
    """The payload of entry ``index``: varied length, checkable by the parent."""
    return index.to_bytes(8, "big") * (1 + index % 5)


def snapshot_data(index: int) -> bytes:
    return b"snapshot-at-%d" % index


def main(path: str, seed: int) -> None:
    rng = random.Random(seed)
    storage = DiskStorage(path, segment_size=SEGMENT_SIZE)
    state = storage.load()
    last = storage.last_index
    term = state.hard_state.term + 1
    batches = 0
    while True:
        n = rng.randint(1, 50)
        entries = [Entry(term, i, expected_data(i)) for i in range(last + 1, last + n + 1)]
        storage.append(entries)
        last += n
        storage.set_hard_state(HardState(term=term, vote="n1", commit=last))
        batches += 1
        if batches % 7 == 0:
            at = max(0, last - 20)
            storage.save_snapshot(Snapshot(SnapshotMeta(at, term), snapshot_data(at)))
        storage.sync()
        sys.stdout.write(f"ack {last}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
