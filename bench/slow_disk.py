"""Elections under a slow disk: every fsync made late by a test hook (not a test).

Three in-process `RaftNode`s on real TCP and real disk, each on a
`raft.runtime.faultydisk.FaultyDisk` whose every sync takes ``--delay``
seconds more; ``--clients`` writers keep proposing to the leader for
``--duration`` seconds.  Prints the writes done and the elections and
pre-vote rounds that happened after the first leader (an unprovoked one is
a sign that heartbeats or check-quorum waited on the disk)::

    python bench/slow_disk.py --delay 0.05 --clients 16 --duration 15

The three nodes share one event loop, so a sync run on the loop (a small
batch's) stalls all three at once; see docs/architecture.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "helpers"))

from local_nodes import LocalCluster

from raft.kv import encode_set
from raft.runtime.backends import disk_storage
from raft.runtime.faultydisk import FaultyDisk
from raft.runtime.node import NodeSettings, ProposalError


async def run(delay: float, duration: float, clients: int, election_ticks: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="slow-disk-"))
    c = LocalCluster(root, tick=0.05, election_ticks=election_ticks)
    disks: dict[str, FaultyDisk] = {}

    def slow(settings: NodeSettings) -> FaultyDisk:
        disks[settings.id] = FaultyDisk(disk_storage(settings), fsync_delay=delay)
        return disks[settings.id]

    done = 0
    try:
        for n in c.peers:
            await c.start(n, storage=slow)
        await c.wait_leader(10)
        since = time.time()
        end = time.monotonic() + duration

        async def writer(i: int) -> None:
            nonlocal done
            k = 0
            while time.monotonic() < end:
                leader = c.leader()
                try:
                    if leader is None:
                        raise ProposalError("no leader")
                    await leader.propose(encode_set(f"c{i}-{k}", b"x" * 100), timeout=5)
                    done += 1
                except Exception:  # no leader for a moment: try again soon
                    await asyncio.sleep(0.05)
                k += 1

        await asyncio.gather(*(writer(i) for i in range(clients)))
        terms = {n: node.status()["term"] for n, node in c.nodes.items()}
    finally:
        await c.stop_all()
    events = [
        ev
        for n in c.peers
        for ev in map(json.loads, (root / n / "trace.jsonl").read_text().splitlines())
        if ev["type"] == "election" and ev["t"] > since
    ]
    return {
        "fsync_delay_ms": round(delay * 1000),
        "clients": clients,
        "seconds": duration,
        "writes_per_s": round(done / duration),
        "elections": sum(not ev.get("pre_vote") for ev in events),
        "pre_vote_rounds": sum(bool(ev.get("pre_vote")) for ev in events),
        "terms": terms,
        "syncs": sum(d.syncs for d in disks.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, nargs="+", default=[0.05])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--election-ticks", type=int, default=6, help="as the managers' default")
    a = ap.parse_args()
    for delay in a.delay:
        print(json.dumps(asyncio.run(run(delay, a.duration, a.clients, a.election_ticks))))


if __name__ == "__main__":
    main()
