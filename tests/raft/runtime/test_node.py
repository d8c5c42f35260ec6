"""The asyncio node driver with in-process nodes on 127.0.0.1 (real TCP, real disk).

Every wait is bounded (`eventually`, timeouts on proposals); every node a
test starts is stopped by the fixture, even when the test fails.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from local_nodes import LocalCluster, eventually

from raft.kv import KVStateMachine, encode_cas, encode_set
from raft.runtime.node import NodeSettings, NotLeader, ProposalTimeout, RaftNode
from raft.runtime.trace import TraceSettings, TraceWriter
from raft.runtime.transport import LinkFault


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    c = LocalCluster(tmp_path)
    try:
        await c.start_all()
        yield c
    finally:
        await c.stop_all()


async def test_leader_elected_and_proposals_apply_everywhere(cluster: LocalCluster) -> None:
    leader = await cluster.wait_leader()
    results = await asyncio.gather(
        *(leader.propose(encode_set(f"k{i}", b"v%d" % i), timeout=5) for i in range(200))
    )
    assert results == [None] * 200
    assert await leader.propose(encode_cas("k1", b"v1", b"new"), timeout=5) is True
    assert await leader.propose(encode_cas("k1", b"v1", b"again"), timeout=5) is False
    index = leader.status()["commit_index"]
    await eventually(
        lambda: all(n.status()["applied_index"] >= index for n in cluster.nodes.values()),
        what="every node to apply the writes",
    )
    for kv in cluster.kvs.values():
        assert len(kv.data) == 200
        assert kv.data["k1"] == b"new"
    st = leader.status()
    assert st["role"] == "leader"
    assert set(st["peers"]) == set(cluster.peers) - {leader.id}
    assert all(p["match"] == st["last_log_index"] for p in st["peers"].values())


async def test_proposal_to_follower_raises_not_leader_with_hint(cluster: LocalCluster) -> None:
    leader = await cluster.wait_leader()
    follower = next(n for n in cluster.nodes.values() if n is not leader)
    with pytest.raises(NotLeader) as info:
        await follower.propose(encode_set("x", b"y"), timeout=1)
    assert info.value.leader == leader.id


async def test_linearizable_read_on_leader_and_follower(cluster: LocalCluster) -> None:
    leader = await cluster.wait_leader()
    await leader.propose(encode_set("r", b"1"), timeout=5)
    for node in cluster.nodes.values():
        index = await node.read_index(timeout=5)
        assert node.status()["applied_index"] >= index
        assert cluster.kvs[node.id].get("r") == b"1"  # the write is visible everywhere


async def test_follower_restart_catches_up_from_disk(cluster: LocalCluster) -> None:
    leader = await cluster.wait_leader()
    for i in range(50):
        await leader.propose(encode_set(f"a{i}", b"1"), timeout=5)
    follower = next(n.id for n in cluster.nodes.values() if n is not leader)
    await eventually(lambda: len(cluster.kvs[follower].data) == 50, what="follower applied")
    await cluster.stop(follower)
    for i in range(50):
        await leader.propose(encode_set(f"b{i}", b"2"), timeout=5)
    node = await cluster.start(follower)
    # A fresh state machine: whatever it holds comes from the log on disk, then the leader.
    await eventually(lambda: len(cluster.kvs[follower].data) == 100, what="follower caught up")
    assert node.status()["term"] == leader.status()["term"]
    assert cluster.kvs[follower].data == cluster.kvs[leader.id].data


async def test_restarted_node_reapplies_committed_entries_before_hearing_a_leader(
    tmp_path: Path,
) -> None:
    c = LocalCluster(tmp_path)
    try:
        await c.start_all()
        leader = await c.wait_leader()
        for i in range(20):
            await leader.propose(encode_set(f"k{i}", b"v"), timeout=5)
        await eventually(lambda: all(len(kv.data) == 20 for kv in c.kvs.values()), what="apply")
        await c.stop_all()  # graceful: the commit index is written at stop
        alone = await c.start("n1")
        await eventually(lambda: len(c.kvs["n1"].data) == 20, what="replay from disk alone")
        assert alone.status()["role"] != "leader"
    finally:
        await c.stop_all()


async def test_proposal_times_out_without_quorum(cluster: LocalCluster) -> None:
    leader = await cluster.wait_leader()
    for node_id in [n for n in cluster.nodes if n != leader.id]:
        await cluster.stop(node_id)
    with pytest.raises((ProposalTimeout, NotLeader)):
        await leader.propose(encode_set("lost", b"?"), timeout=0.2)


async def test_fault_filter_persists_across_restart(cluster: LocalCluster) -> None:
    leader = await cluster.wait_leader()
    isolated = next(n.id for n in cluster.nodes.values() if n is not leader)
    cluster.nodes[isolated].fault_filter.block("*")
    saved = json.loads((cluster.root / isolated / "faults.json").read_text())
    assert saved["outbound"]["*"]["drop"] and saved["inbound"]["*"]["drop"]
    await cluster.stop(isolated)
    node = await cluster.start(isolated)
    assert node.fault_filter.to_dict() == saved
    # Still cut off after the restart: the others commit without it, it sees nothing.
    await leader.propose(encode_set("during", b"partition"), timeout=5)
    # Wait on a condition, not a clock: a second entry, sent after the first on
    # every link, is applied by every connected node.  Had the isolated node's
    # rules been lost, the first entry would have reached it by then as well.
    await leader.propose(encode_set("after", b"partition"), timeout=5)
    others = [n for n in cluster.nodes if n != isolated]
    await eventually(
        lambda: all(cluster.kvs[n].get("after") == b"partition" for n in others), what="apply"
    )
    assert cluster.kvs[isolated].get("during") is None
    node.fault_filter.heal()
    await eventually(lambda: cluster.kvs[isolated].get("during") == b"partition", what="heal")


async def test_trace_has_the_design_schema(cluster: LocalCluster) -> None:
    leader = await cluster.wait_leader()
    await asyncio.gather(*(leader.propose(encode_set(f"t{i}", b"x"), 5) for i in range(300)))
    for node_id in list(cluster.nodes):
        await cluster.stop(node_id)
    lines = [
        json.loads(line)
        for node_id in cluster.peers
        for line in (cluster.root / node_id / "trace.jsonl").read_text().splitlines()
    ]
    assert all({"t", "node", "type"} <= set(line) for line in lines)
    types = {line["type"] for line in lines}
    missing = {"start", "role", "election", "vote", "commit", "apply", "append", "stop"} - types
    assert not missing
    applies = [x for x in lines if x["type"] == "apply" and x["node"] == leader.id]
    assert sum(x.get("count", 1) for x in applies) >= 300
    assert len(applies) < 100  # summarised, not one line per entry


def test_trace_writer_samples_and_counts(tmp_path: Path) -> None:
    w = TraceWriter(tmp_path / "t.jsonl", "n1", TraceSettings(sample_interval=60))
    for i in range(1, 1001):
        w.apply(i, "set")
    w.count("append", sent=1, entries_sent=3)
    w.count("append", sent=1, entries_sent=0, heartbeats_sent=1)
    w.close()
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    applies = [x for x in lines if x["type"] == "apply"]
    assert applies[0] == {**applies[0], "index": 1, "op": "set"}
    assert applies[1]["first_index"] == 2 and applies[1]["index"] == 1000
    assert applies[1]["count"] == 999
    (append,) = [x for x in lines if x["type"] == "append"]
    assert append["sent"] == 2 and append["entries_sent"] == 3 and append["heartbeats_sent"] == 1


def test_settings_from_json_dict(tmp_path: Path) -> None:
    s = NodeSettings.from_dict(
        {
            "id": "a",
            "cluster_id": "c",
            "peers": {"a": ["127.0.0.1", 1], "b": ["127.0.0.1", 2]},
            "data_dir": str(tmp_path),
            "trace": {"sample_interval": 0.5},
        }
    )
    assert s.peers["b"] == ("127.0.0.1", 2) and s.trace.sample_interval == 0.5
    assert s.fsync and s.election_ticks == 10 and s.heartbeat_ticks == 1
    with pytest.raises(ValueError):
        NodeSettings.from_dict({"id": "a", "bogus": 1})


async def test_stop_is_bounded_and_idempotent(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, n=1)
    node: RaftNode = await c.start("n1")
    try:
        await eventually(lambda: node.is_leader, what="single-node leader")
        assert await node.propose(encode_set("solo", b"1"), timeout=5) is None
        node.fault_filter.set_rule("*", LinkFault(delay=0.01))
    finally:
        async with asyncio.timeout(5):
            await node.stop()
            await node.stop()
    assert isinstance(c.kvs["n1"], KVStateMachine)


async def test_snapshots_compact_and_bring_a_lagging_follower_back(tmp_path: Path) -> None:
    # §7: snapshots every 50 entries, only 10 kept behind, so a follower that
    # misses 200 entries must be sent the leader's snapshot.
    c = LocalCluster(tmp_path, snapshot_entries=50, trailing_entries=10)
    try:
        await c.start_all()
        leader = await c.wait_leader()
        lagging = next(n for n in c.nodes if n != leader.id)
        await c.stop(lagging)
        await asyncio.gather(*(leader.propose(encode_set(f"s{i}", b"x"), 5) for i in range(200)))
        assert leader.status()["snapshot_index"] > 0
        await c.start(lagging)
        await eventually(lambda: len(c.kvs[lagging].data) == 200, what="snapshot catch-up")
        assert c.nodes[lagging].status()["snapshot_index"] > 0
        # Restart from our own snapshot plus the log after it.
        await c.stop(leader.id)
        await c.wait_leader()
        await c.start(leader.id)
        await eventually(lambda: len(c.kvs[leader.id].data) == 200, what="restore at start")
    finally:
        await c.stop_all()
