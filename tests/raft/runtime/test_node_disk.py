"""Real nodes on a disk that fills, fails or is slow (raft/runtime/node.py, "A disk that fills up").

In-process nodes on real TCP and a real disk; the faults come from the
`raft.runtime.faultydisk` test hook, or from a small tmpfs that really fills
(root only, else skipped).  Every wait is bounded, every node stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import pytest
from local_nodes import LocalCluster, eventually
from small_fs import fill, small_fs

from raft.core.messages import NodeId
from raft.core.protocol import NotLeader
from raft.kv import encode_set
from raft.runtime.backends import disk_storage
from raft.runtime.faultydisk import FaultyDisk
from raft.runtime.node import DiskFull, NodeSettings, ProposalError, RaftNode
from raft.runtime.powercut import appends_a_command

#: Seconds between a full node's write attempts here.
RETRY = 0.05


def recording(disks: dict[NodeId, FaultyDisk], **faults: object):
    """A storage factory that keeps each node's `FaultyDisk` for the test to flip."""

    def make(settings: NodeSettings) -> FaultyDisk:
        disks[settings.id] = FaultyDisk(disk_storage(settings), **faults)  # type: ignore[arg-type]
        return disks[settings.id]

    return make


async def write_all(node: RaftNode, keys: range, acked: dict[str, bytes]) -> None:
    for k in keys:
        await node.propose(encode_set(f"k{k}", b"v%d" % k), timeout=5.0)
        acked[f"k{k}"] = b"v%d" % k


def holds(c: LocalCluster, node_id: str, acked: dict[str, bytes]) -> bool:
    return all(c.kvs[node_id].get(k) == v for k, v in acked.items())


async def test_a_full_leader_stops_answering_and_resumes_by_itself(tmp_path: Path) -> None:
    """The leader's disk fills: nothing it promises leaves, the others elect a
    leader and go on, its own clients hear why at once; space back, it rejoins."""
    c = LocalCluster(tmp_path, disk_retry_interval=RETRY)
    disks: dict[NodeId, FaultyDisk] = {}
    acked: dict[str, bytes] = {}
    try:
        for n in c.peers:
            await c.start(n, storage=recording(disks))
        old = await c.wait_leader()
        await write_all(old, range(5), acked)
        term = old.status()["term"]
        disks[old.id].full = True
        stuck = asyncio.create_task(old.propose(encode_set("lost?", b"x"), timeout=1.0))
        await eventually(lambda: old.status()["disk"] == "full", 5, "the full disk")
        error = old.status()["disk_error"]
        assert error.startswith(f"{old.id} cannot write its Raft log: no space left on device")
        with pytest.raises(DiskFull, match="cannot write its Raft log"):
            await old.propose(encode_set("k", b"v"))  # at once, while it still leads
        with pytest.raises(ProposalError):  # times out: it cannot make the entry durable
            await stuck
        sent = old.transport.stats.sent
        await eventually(
            lambda: any(n.is_leader and n.status()["term"] > term for n in c.nodes.values()),
            10,
            "another leader",
        )
        new = c.leader()
        assert new is not None and new is not old
        await write_all(new, range(5, 10), acked)
        assert old.transport.stats.sent == sent  # no vote, no ack, no heartbeat left it
        disks[old.id].full = False
        await eventually(lambda: old.status()["disk"] == "ok", 5, "the write to succeed")
        await eventually(lambda: holds(c, old.id, acked), 10, "the old leader to catch up")
        await write_all(new, range(10, 12), acked)
        await eventually(lambda: all(holds(c, n, acked) for n in c.nodes), 10, "every write")
    finally:
        await c.stop_all()
    for node_id in c.peers:  # and on disk, as a restart reads it
        await c.start(node_id)
    try:
        await eventually(lambda: all(holds(c, n, acked) for n in c.nodes), 10, "every write")
    finally:
        await c.stop_all()


async def test_a_full_follower_neither_votes_nor_acks_until_it_can_write(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, disk_retry_interval=RETRY)
    disks: dict[NodeId, FaultyDisk] = {}
    acked: dict[str, bytes] = {}
    try:
        for n in c.peers:
            await c.start(n, storage=recording(disks))
        leader = await c.wait_leader()
        follower = next(n for n in c.nodes.values() if n is not leader)
        disks[follower.id].full = True
        await write_all(leader, range(3), acked)  # a majority without it
        await eventually(lambda: follower.status()["disk"] == "full", 5, "the follower to see")
        sent = follower.transport.stats.sent
        with pytest.raises(NotLeader) as info:  # a write it gets goes to the leader
            await follower.propose(encode_set("k", b"v"))
        assert info.value.leader == leader.id
        await write_all(leader, range(3, 6), acked)
        assert follower.transport.stats.sent == sent
        assert not holds(c, follower.id, acked)
        disks[follower.id].full = False
        await eventually(lambda: holds(c, follower.id, acked), 10, "the follower to catch up")
        assert follower.status()["disk"] == "ok"
        assert disks[follower.id].full_syncs >= 1
    finally:
        await c.stop_all()


async def test_a_failed_fsync_stops_the_node_and_a_restart_recovers(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path)
    acked: dict[str, bytes] = {}
    try:
        await c.start("n1")
        await c.start("n2")
        await c.wait_leader()
        n3 = await c.start("n3", storage=FaultyDisk.factory(fail_fsync=appends_a_command))
        leader = await c.wait_leader()
        await write_all(leader, range(3), acked)  # n3's fsync of one of these fails
        await eventually(lambda: n3.failure is not None, 10, "n3's failed fsync")
        assert n3.storage_failed
        reason = n3.failure_reason
        assert reason is not None and "\n" not in reason
        assert "fsync of" in reason and "Input/output error" in reason, reason
        with pytest.raises(ProposalError, match="not running"):
            await n3.propose(b"x")
        await c.stop("n3")
        n3 = await c.start("n3")  # on what its disk holds
        await write_all(leader, range(3, 5), acked)
        await eventually(lambda: holds(c, "n3", acked), 10, "n3 to catch up")
    finally:
        await c.stop_all()


async def test_a_slow_disk_provokes_no_election(tmp_path: Path) -> None:
    """Every fsync 50 ms late, under a stream of writes: the first leader
    keeps its term.  (The three nodes share one event loop here, so a sync
    run on the loop stalls all three; runs off the loop, the larger batches,
    do not.  docs/architecture.md has the numbers, with the tool's command.)"""
    c = LocalCluster(tmp_path, tick=0.05)
    disks: dict[NodeId, FaultyDisk] = {}
    acked: dict[str, bytes] = {}
    try:
        for n in c.peers:
            await c.start(n, storage=recording(disks, fsync_delay=0.05))
        leader = await c.wait_leader()
        term = leader.status()["term"]
        await write_all(leader, range(60), acked)  # 60 writes, each >= 2 slow fsyncs
        assert all(n.status()["term"] == term for n in c.nodes.values())
        assert sum(d.syncs for d in disks.values()) >= 120
    finally:
        await c.stop_all()
    elections = [
        ev
        for n in c.peers
        for ev in map(json.loads, (tmp_path / n / "trace.jsonl").read_text().splitlines())
        if ev["type"] == "election" and not ev.get("pre_vote")
    ]
    assert len(elections) == 1, elections  # the first one only


async def test_a_full_file_system_then_space_again(tmp_path: Path) -> None:
    """All three nodes on one tmpfs that fills (the issue's story): no write
    is acknowledged that is not durable, and writes resume with no restart."""
    with small_fs(tmp_path / "fs", "8m") as fs:
        c = LocalCluster(fs, disk_retry_interval=RETRY)
        acked: dict[str, bytes] = {}
        try:
            await c.start_all()
            leader = await c.wait_leader()
            await write_all(leader, range(5), acked)
            fill(fs / "ballast")
            # Writes may still fit in the pages the files already hold (each
            # log keeps up to a MiB of zeros ahead of it, `raft.runtime.disk`);
            # one of these soon does not, and from then on nothing is acknowledged.
            refused = []
            for k in range(5, 3000):
                value = b"%d" % k * 500
                try:
                    await leader.propose(encode_set(f"k{k}", value), timeout=2.0)
                    acked[f"k{k}"] = value
                except (ProposalError, NotLeader) as exc:  # it may step down meanwhile
                    refused.append(exc)
                    if len(refused) == 2:
                        break
            assert refused, "the file system never filled"
            await eventually(
                lambda: any(n.status()["disk"] == "full" for n in c.nodes.values()), 5, "full"
            )
            (fs / "ballast").unlink()
            await eventually(
                lambda: all(n.status()["disk"] == "ok" for n in c.nodes.values()), 10, "room"
            )
            leader = await c.wait_leader()
            await write_all(leader, range(10, 15), acked)
            await eventually(lambda: all(holds(c, n, acked) for n in c.nodes), 10, "every write")
        finally:
            await c.stop_all()
        for node_id in c.peers:
            await c.start(node_id)
        try:
            await eventually(lambda: all(holds(c, n, acked) for n in c.nodes), 10, "on disk")
        finally:
            await c.stop_all()


async def test_a_node_stops_promptly_while_its_disk_is_full(tmp_path: Path) -> None:
    """Its held batch is abandoned, like a crash before the fsync; what was
    acknowledged before is still there after a restart."""
    c = LocalCluster(tmp_path, disk_retry_interval=RETRY)
    disks: dict[NodeId, FaultyDisk] = {}
    acked: dict[str, bytes] = {}
    try:
        for n in c.peers:
            await c.start(n, storage=recording(disks))
        leader = await c.wait_leader()
        await write_all(leader, range(3), acked)
        disks[leader.id].full = True
        stuck = asyncio.create_task(leader.propose(encode_set("x", b"y"), timeout=5.0))
        await eventually(lambda: leader.status()["disk"] == "full", 5, "the full disk")
        t0 = asyncio.get_running_loop().time()
        await c.stop(leader.id)
        assert asyncio.get_running_loop().time() - t0 < 1.0  # not the 3 s stop timeout
        with pytest.raises(ProposalError):
            await stuck
        await c.start(leader.id)
        await eventually(lambda: holds(c, leader.id, acked), 10, "the acknowledged writes")
    finally:
        await c.stop_all()


@pytest.mark.parametrize("delay", [0.1, 0.2])
async def test_heartbeats_do_not_wait_for_a_slow_fsync(tmp_path: Path, delay: float) -> None:
    """Every fsync 100-200 ms late (up to two thirds of the managers' election
    timeout), under a stream of writes from 8 clients: the leader's heartbeats
    leave while its fsync runs (§10.2.1), so its followers hear it every tick
    or so -- never only once per fsync -- and none starts an election, not
    even a pre-vote round."""
    c = LocalCluster(tmp_path, tick=0.05, election_ticks=6)  # the managers' timing
    disks: dict[NodeId, FaultyDisk] = {}
    try:
        for n in c.peers:
            await c.start(n, storage=recording(disks, fsync_delay=delay))
        leader = await c.wait_leader(10)
        term = leader.status()["term"]
        followers = [n for n in c.nodes.values() if n is not leader]
        since = time.time()
        end = time.monotonic() + 3.0
        silence = 0.0  # the longest a follower went without hearing the leader

        async def client(i: int) -> None:
            k = 0
            while time.monotonic() < end:
                await leader.propose(encode_set(f"c{i}-{k}", b"v"), timeout=5.0)
                k += 1

        async def watch() -> None:
            nonlocal silence
            while time.monotonic() < end:
                now = time.monotonic()
                for f in followers:
                    silence = max(silence, now - (f.last_heard(leader.id) or now))
                await asyncio.sleep(0.01)

        await asyncio.gather(watch(), *(client(i) for i in range(8)))
        assert all(n.status()["term"] == term for n in c.nodes.values())
        assert min(d.syncs for d in disks.values()) >= 3.0 / delay / 2  # the disks were slow
        # Held behind the fsync, heartbeats would come once per fsync: `delay` apart.
        assert silence < min(delay, 3 * 0.05), silence
    finally:
        await c.stop_all()
    elections = [
        ev
        for n in c.peers
        for ev in map(json.loads, (tmp_path / n / "trace.jsonl").read_text().splitlines())
        if ev["type"] == "election" and ev["t"] > since
    ]
    assert elections == []


async def test_a_leader_whose_fsync_hangs_is_still_replaced(tmp_path: Path) -> None:
    """Heartbeats leave during a *slow* fsync only: one that has run for an
    election timeout stops them, so a leader whose disk hangs is replaced
    (as a full one is) instead of holding the cluster without committing."""
    c = LocalCluster(tmp_path, tick=0.05)  # election timeout 0.5-1 s
    disks: dict[NodeId, FaultyDisk] = {}
    try:
        for n in c.peers:
            await c.start(n, storage=recording(disks))
        old = await c.wait_leader(10)
        term = old.status()["term"]
        disks[old.id].fsync_delay = 0.05  # slow once: its next syncs run off the loop
        await write_all(old, range(2), {})
        syncs = disks[old.id].syncs
        disks[old.id].fsync_delay = 3.0
        hung = asyncio.create_task(old.propose(encode_set("k", b"v"), timeout=5.0))
        await eventually(
            lambda: any(n.is_leader and n.status()["term"] > term for n in c.nodes.values()),
            2.5,
            "another leader while the old one's fsync hangs",
        )
        disks[old.id].fsync_delay = 0.0
        await eventually(lambda: disks[old.id].syncs > syncs, 5, "the hung fsync to end")
        # Either outcome is Raft's: the followers had the entry (it left
        # before the fsync, §10.2.1) and the new leader may commit it, or not.
        with contextlib.suppress(ProposalError):
            await hung
    finally:
        await c.stop_all()
