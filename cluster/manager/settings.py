"""A manager's settings: the contents of its ``config.json``.

Kept apart so that every part of the manager can take the settings it runs
with without importing the process that reads them, and so that reading a
config file is one small function a test can call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.manager.peers import Peer
from raft.runtime.plain import from_plain

__all__ = ["ManagerSettings"]


@dataclass(frozen=True, slots=True)
class ManagerSettings:
    """The contents of a manager's ``config.json`` (written by the supervisor)."""

    name: str
    node_id: str
    cluster_id: str
    data_dir: Path
    api_port: int
    #: Every manager of the initial configuration, this one included.
    peers: dict[str, Peer]
    api_host: str = "127.0.0.1"
    tick_interval: float = 0.05
    heartbeat_ticks: int = 1
    election_ticks: int = 10
    snapshot_entries: int = 10_000
    #: Writes and linearizable reads give up after this many seconds (503).
    request_timeout: float = 3.0
    fsync: bool = True
    log_level: str = "INFO"
    #: The voters of a brand-new cluster (None: every peer); [] for a manager
    #: that joins an existing one as a learner.
    voters: list[str] | None = None
    #: Founding setting: the swarm starts with autolock on (`cluster.security.crypto`).
    autolock: bool = False
    #: Mutual TLS between managers: paths of "ca", "cert" and "key" (PEM),
    #: and for a founding manager "ca_key", the root key the first leader
    #: seals into the store; None (a cluster made before certificates): plain TCP.
    tls: dict[str, str] | None = None
    #: The swarm port (HTTPS, mutual TLS) where workers and newcomers talk to
    #: us (`cluster.api.swarm`); None: not served.
    swarm_port: int | None = None
    #: Where to leave one line saying why, when the manager stops on its own
    #: (a failed fsync, a damaged log): the supervisor shows it in ``status``.
    exit_reason_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ManagerSettings:
        """The settings in ``path``; keys this version does not know are kept in ``extra``."""
        return from_plain(cls, json.loads(path.read_text()), str(path), unknown_into="extra")

    @property
    def election_timeout(self) -> float:
        return self.tick_interval * self.election_ticks

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def swarm_url(self) -> str | None:
        port = self.swarm_port
        return f"https://{self.api_host}:{port}" if port else None
