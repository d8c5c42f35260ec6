"""How long does `DiskStorage` take to open a long log behind a snapshot?  (A measurement.)

A restarted manager first reads its data directory back (`raft.runtime.diskread`):
the snapshot, then every record of every log segment, keeping the entries
after the snapshot (§7).  A segment is deleted only once all of it is behind
the snapshot, so the last one can hold up to ``segment_size`` bytes of
entries the snapshot already covers.  This script writes ``--entries``
entries in records of ``--batch`` (one record per batch, as a busy leader
writes them), saves a snapshot ``--behind`` entries short of the end, and
times opening the directory and loading its state, ``--rounds`` times.

It measures the storage alone, without the manager's process start, its
imports or its catching up with the leader: ``bench/restart_bench.py``
measures the whole restart.

::

    python bench/open_bench.py                       # 1,000,000 entries
    python bench/open_bench.py --entries 3000000     # a full 64 MiB segment

The directory is a temporary one, deleted at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from raft.core.messages import ConfState, Entry, Snapshot, SnapshotMeta
from raft.runtime.disk import DiskStorage


def fill(path: Path, entries: int, batch: int, behind: int) -> None:
    """``entries`` entries of 16 bytes in records of ``batch``; a snapshot ``behind`` short."""
    with DiskStorage(path) as st:
        first = 1
        while first <= entries:
            last = min(entries, first + batch - 1)
            data = [b"bench-entry-%05d" % (i % 100_000) for i in range(first, last + 1)]
            st.append([Entry(1, i, d) for i, d in enumerate(data, first)])
            first = last + 1
            if first % (100 * batch) == 1:
                st.sync()
        meta = SnapshotMeta(max(1, entries - behind), 1, ConfState(voters=("bench",)))
        st.save_snapshot(Snapshot(meta, bytes(1000)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=200, help="entries per log record")
    ap.add_argument("--behind", type=int, default=5_000, help="entries after the snapshot")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="swarmraft-open-bench-"))
    try:
        fill(root, a.entries, a.batch, a.behind)
        size = sum(p.stat().st_size for p in root.glob("log-*.seg"))
        times = []
        for _ in range(a.rounds):
            t0 = time.perf_counter()
            with DiskStorage(root) as st:
                kept = len(st.load().entries)
            times.append(time.perf_counter() - t0)
        print(
            f"{a.entries:,} entries ({size / 2**20:.1f} MiB of log), {kept:,} after the snapshot: "
            f"open+load {', '.join(f'{t:.3f}' for t in times)} s "
            f"(median {statistics.median(times):.3f} s)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
