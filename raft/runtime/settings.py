"""What one node is told: `NodeSettings`, typed and frozen, from code or a JSON file."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.core.messages import NodeId
from raft.core.types import Config
from raft.runtime.plain import from_plain
from raft.runtime.tls import TLSFiles
from raft.runtime.trace import TraceSettings

__all__ = ["Address", "NodeSettings"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Everything one node needs; times are seconds unless they say ticks."""

    id: NodeId
    cluster_id: str
    #: Raft addresses of every voter, this node included.
    peers: Mapping[NodeId, Address]
    data_dir: Path
    #: The voters of a brand-new cluster; None: every peer.  A server that
    #: joins an existing cluster starts with () and learns the configuration
    #: from the leader (dissertation §4.2.1).
    voters: tuple[NodeId, ...] | None = None
    listen_host: str = "127.0.0.1"
    #: Default: the port of our own entry in ``peers``.
    listen_port: int | None = None
    tick_interval: float = 0.05
    heartbeat_ticks: int = 1
    #: T in ticks; election timeouts are drawn from [T, 2T): 0.5-1 s by default.
    election_ticks: int = 10
    pre_vote: bool = True
    check_quorum: bool = True
    #: False: a demo mode that writes but never fsyncs, so a power loss can
    #: lose votes and entries.  The node says so in its log, its trace and
    #: ``status()["durable"]``.
    fsync: bool = True
    trace_path: Path | None = None
    trace: TraceSettings = field(default_factory=TraceSettings)
    propose_timeout: float = 5.0
    stop_timeout: float = 5.0
    #: A hard state whose only change is the commit index is written at most this
    #: often (`raft.core.persist`: it may be deferred); 0 writes every change at once.
    commit_sync_interval: float = 1.0
    #: Messages waiting for the core; beyond this, arrivals are dropped (Raft retries).
    inbox_limit: int = 100_000
    #: Applied entries between snapshots, and entries kept behind one for slow
    #: followers (§7); None keeps the core's defaults.
    snapshot_entries: int | None = None
    trailing_entries: int | None = None
    seed: int | None = None
    #: Mutual TLS between peers (`raft.runtime.tls`); None: plain TCP.
    tls: TLSFiles | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NodeSettings:
        """Settings from a JSON object (the ``--config`` file); ValueError if they do not fit."""
        if not isinstance(raw, Mapping):
            return from_plain(cls, raw, "node settings")  # raises: not an object
        d = dict(raw)
        tls = d.pop("tls", None)  # paths only: a password is never in a file
        settings = from_plain(cls, d, "node settings")
        if tls is not None:
            settings = dataclasses.replace(settings, tls=TLSFiles.from_config(tls))
        return settings

    def core_config(self) -> Config:
        """The core's `Config` from these settings (times in ticks)."""
        s = self
        kwargs: dict[str, Any] = {}
        if s.snapshot_entries is not None:
            kwargs["snapshot_entries"] = s.snapshot_entries
        if s.trailing_entries is not None:
            kwargs["trailing_entries"] = s.trailing_entries
        return Config(
            id=s.id,
            peers=tuple(sorted(s.peers if s.voters is None else s.voters)),
            election_ticks=s.election_ticks,
            heartbeat_ticks=s.heartbeat_ticks,
            pre_vote=s.pre_vote,
            check_quorum=s.check_quorum,
            **kwargs,
        )
