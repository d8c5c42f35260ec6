"""What a `raft.runtime.node.RaftNode` needs from its storage and its transport.

A node is handed factories for both (hashicorp/raft's habit: one small
interface each, with a twin for tests).  The defaults are the real ones:
`disk_storage` (`DiskStorage` in ``data_dir/raft``, fsync as the settings
say) and `tcp_transport` (`Transport` on the node's Raft port).  A test can
give a node an in-memory log or network instead, or wrap the disk (see
`raft.runtime.powercut`).

Storage is opened in the node's sync thread (opening a disk log reads and
repairs files); the transport is built on the event loop and started there.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from raft.core.messages import Message, NodeId
from raft.core.storage import Storage
from raft.runtime.disk import DiskStorage
from raft.runtime.faults import FaultFilter
from raft.runtime.settings import Address, NodeSettings
from raft.runtime.transport import Transport, TransportSettings

__all__ = [
    "NodeStorage",
    "NodeTransport",
    "StorageFactory",
    "TransportFactory",
    "TransportWiring",
    "disk_storage",
    "tcp_transport",
]


class NodeStorage(Storage, Protocol):
    """`raft.core.storage.Storage`, plus `close` (sync what is buffered, release files)."""

    def close(self) -> None: ...


class NodeTransport(Protocol):
    """Moves messages between nodes; ``send`` never blocks and may lose them."""

    #: The port it listens on, once started.
    port: int

    async def start(self) -> None: ...

    async def stop(self, timeout: float = 5.0) -> None: ...

    def send(self, msg: Message) -> None: ...

    def set_peers(self, peers: Mapping[NodeId, Address]) -> None: ...


@dataclass(frozen=True, slots=True)
class TransportWiring:
    """What the node gives its transport: where to listen, whom to call back."""

    port: int
    peers: Mapping[NodeId, Address]
    on_message: Callable[[Message], None]
    fault_filter: FaultFilter
    rng: random.Random


StorageFactory = Callable[[NodeSettings], NodeStorage]
TransportFactory = Callable[[NodeSettings, TransportWiring], NodeTransport]


def disk_storage(settings: NodeSettings) -> DiskStorage:
    """The default: the log in ``data_dir/raft``, fsynced unless ``settings.fsync`` is off."""
    return DiskStorage(Path(settings.data_dir) / "raft", fsync=settings.fsync)


def tcp_transport(settings: NodeSettings, wiring: TransportWiring) -> Transport:
    """The default: TCP (with mutual TLS if ``settings.tls``) on 127.0.0.1.

    Its deadlines follow the node's timing, with T the election timeout
    (the minimum, ``election_ticks`` heartbeat ticks): a peer silent for 2T,
    the longest election timeout, is dialled anew beside its connection, and
    the kernel gives up on data unacknowledged for 8T, at least 4 s -- long
    enough for TCP to resend through a lossy path several times over ("Dead
    links" in `raft.runtime.transport`).
    """
    election_timeout = settings.election_ticks * settings.tick_interval
    limits = TransportSettings(
        silence_timeout=2 * election_timeout, user_timeout=max(4.0, 8 * election_timeout)
    )
    return Transport(
        settings.id,
        settings.cluster_id,
        settings.listen_host,
        wiring.port,
        peers=wiring.peers,
        on_message=wiring.on_message,
        fault_filter=wiring.fault_filter,
        rng=wiring.rng,
        tls=settings.tls,
        settings=limits,
    )
