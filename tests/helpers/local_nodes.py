"""Helpers for the node driver tests: free ports, bounded waits, in-process clusters."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raft.kv import KVStateMachine
from raft.runtime.backends import StorageFactory, disk_storage
from raft.runtime.node import NodeSettings, RaftNode
from raft.runtime.trace import TraceSettings

CLUSTER = "node-test"


def free_ports(n: int) -> list[int]:
    """Ports that were free a moment ago (bound to 0, then released together)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


async def eventually(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``cond`` until it holds; fail the test after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
        await asyncio.sleep(0.01)


#: Seconds per tick.  Elections time out after 10-20 ticks, so 0.5-1 s: every
#: node of a cluster shares this one event loop (and the machine its cores),
#: and with 0.02 s ticks a pause of 200 ms -- a busy CI machine, a garbage
#: collection -- was enough for an election nobody provoked.
TICK = 0.05


class LocalCluster:
    """N RaftNodes with KV state machines in this event loop, on 127.0.0.1."""

    def __init__(self, root: Path, n: int = 3, tick: float = TICK, **overrides: Any) -> None:
        self.root = root
        ids = [f"n{i}" for i in range(1, n + 1)]
        self.peers = {i: ("127.0.0.1", p) for i, p in zip(ids, free_ports(n), strict=True)}
        self.tick = tick
        self.overrides = overrides
        self.nodes: dict[str, RaftNode] = {}
        self.kvs: dict[str, KVStateMachine] = {}

    def settings(self, node_id: str) -> NodeSettings:
        return NodeSettings(
            id=node_id,
            cluster_id=CLUSTER,
            peers=self.peers,
            data_dir=self.root / node_id,
            tick_interval=self.tick,
            trace_path=self.root / node_id / "trace.jsonl",
            trace=TraceSettings(flush_interval=0.05),
            stop_timeout=3.0,
            **self.overrides,
        )

    async def start(
        self, node_id: str, storage: StorageFactory = disk_storage, **overrides: Any
    ) -> RaftNode:
        """Start ``node_id``; ``overrides`` change its settings only (its own
        election timeout, say), ``storage`` gives it another disk."""
        kv = KVStateMachine()
        settings = dataclasses.replace(self.settings(node_id), **overrides)
        node = RaftNode(settings, kv, storage=storage)
        await node.start()
        self.nodes[node_id], self.kvs[node_id] = node, kv
        return node

    async def start_all(self) -> None:
        for node_id in self.peers:
            await self.start(node_id)

    async def stop(self, node_id: str) -> None:
        node = self.nodes.pop(node_id)
        await node.stop()

    async def stop_all(self) -> None:
        for node_id in list(self.nodes):
            await self.stop(node_id)

    def leader(self) -> RaftNode | None:
        leaders = [n for n in self.nodes.values() if n.is_leader]
        if len(leaders) != 1:
            return None
        return leaders[0]

    async def wait_leader(self, timeout: float = 10.0) -> RaftNode:
        await eventually(lambda: self.leader() is not None, timeout, "a single leader")
        leader = self.leader()
        assert leader is not None
        # Every live node must know it, so that NotLeader hints are meaningful.
        await eventually(
            lambda: all(n.status()["leader"] == leader.id for n in self.nodes.values()),
            timeout,
            "every node to know the leader",
        )
        return leader
