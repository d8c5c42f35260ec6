"""In-memory twins of a node's storage and transport, for `RaftNode` tests.

`MemoryNetwork` hands messages from one node to another within the event
loop (no sockets, no ports), honouring each node's `FaultFilter`; its
`disk` keeps one `MemoryStorage` per node across restarts, which is all a
restart needs.  Give them to a node as its factories::

    net = MemoryNetwork()
    RaftNode(settings, sm, storage=net.disk, transport=net.transport)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from raft.core.messages import Message, NodeId
from raft.core.storage import MemoryStorage
from raft.runtime.backends import TransportWiring
from raft.runtime.settings import Address, NodeSettings


class MemoryDisk(MemoryStorage):
    """`MemoryStorage` with the `close` a node calls when it stops."""

    def close(self) -> None:
        pass


class MemoryTransport:
    """One node's end of a `MemoryNetwork`."""

    def __init__(self, net: MemoryNetwork, node_id: NodeId, wiring: TransportWiring) -> None:
        self.net = net
        self.node_id = node_id
        self.wiring = wiring
        self.port = 0
        self.sent = 0

    async def start(self) -> None:
        self.net.attached[self.node_id] = self

    async def stop(self, timeout: float = 5.0) -> None:
        if self.net.attached.get(self.node_id) is self:
            del self.net.attached[self.node_id]

    def send(self, msg: Message) -> None:
        w = self.wiring
        if w.fault_filter.decide("outbound", msg.dst, w.rng) is None:
            return
        self.sent += 1
        asyncio.get_running_loop().call_soon(self.net.deliver, msg)

    def set_peers(self, peers: Mapping[NodeId, Address]) -> None:
        pass  # everyone on the network is reachable by name


class MemoryNetwork:
    """Nodes in one event loop, talking without sockets."""

    def __init__(self) -> None:
        self.attached: dict[NodeId, MemoryTransport] = {}
        self.disks: dict[NodeId, MemoryDisk] = {}

    def disk(self, settings: NodeSettings) -> MemoryDisk:
        """A `StorageFactory`: the node's durable state, kept across its restarts."""
        return self.disks.setdefault(settings.id, MemoryDisk())

    def transport(self, settings: NodeSettings, wiring: TransportWiring) -> MemoryTransport:
        """A `TransportFactory`."""
        return MemoryTransport(self, settings.id, wiring)

    def deliver(self, msg: Message) -> None:
        dst = self.attached.get(msg.dst)
        if dst is None:
            return  # the node is down: a lost message, which Raft tolerates
        w = dst.wiring
        if w.fault_filter.decide("inbound", msg.src, w.rng) is None:
            return
        w.on_message(msg)
