"""`RaftNode` on in-memory twins of its storage and transport.

The node's driver -- the persistence order, applying, answering clients --
without sockets or disks: what a node needs from both is two small
interfaces (`raft.runtime.backends`), and these tests hold it to that.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from local_nodes import CLUSTER, eventually
from memory_twins import MemoryNetwork

from raft.kv import KVStateMachine, encode_set
from raft.runtime.node import NodeSettings, RaftNode

IDS = ("n1", "n2", "n3")


def settings(root: Path, node_id: str) -> NodeSettings:
    return NodeSettings(
        id=node_id,
        cluster_id=CLUSTER,
        peers={i: ("127.0.0.1", 0) for i in IDS},  # addresses are never used
        data_dir=root / node_id,
        tick_interval=0.05,  # 0.5-1 s elections: robust on a busy machine
        stop_timeout=3.0,
    )


async def test_a_cluster_on_twins_elects_commits_and_recovers(tmp_path: Path) -> None:
    net = MemoryNetwork()
    kvs = {i: KVStateMachine() for i in IDS}

    def node(i: str) -> RaftNode:
        s = settings(tmp_path, i)
        return RaftNode(s, kvs[i], storage=net.disk, transport=net.transport)

    nodes = {i: node(i) for i in IDS}
    try:
        for n in nodes.values():
            await n.start()
        await eventually(lambda: sum(n.is_leader for n in nodes.values()) == 1, 5, "a leader")
        leader = next(n for n in nodes.values() if n.is_leader)
        await asyncio.gather(*(leader.propose(encode_set(f"k{i}", b"v"), 5) for i in range(50)))
        follower = next(i for i in IDS if i != leader.id)
        await nodes[follower].stop()
        # Its log survives in its (memory) disk: restarted, it catches up from there.
        kvs[follower] = KVStateMachine()
        nodes[follower] = node(follower)
        await nodes[follower].start()
        await leader.propose(encode_set("last", b"v"), 5)
        await eventually(
            lambda: nodes[follower].status()["applied_index"] == leader.status()["applied_index"],
            5,
            "the restarted follower to catch up",
        )
        assert kvs[follower].data == kvs[leader.id].data
        assert len(net.disks[follower].load().entries) >= 51
    finally:
        for n in nodes.values():
            await n.stop()
