"""What a manager says about itself: ``GET /raft/status`` and ``GET /info``.

Both must answer without a quorum, and while the manager is locked: they are
how users see that there is none, or that it waits for its unlock key.  So
they read only local facts -- the Raft node's own status, the local store,
the key files -- and never wait on Raft.  Apart from the rest because it is
read-only and every view of the cluster (``status``, the live view, the
scenarios) depends on its keys (DESIGN.md, HTTP API contract).
"""

from __future__ import annotations

import os
from typing import Any

from cluster.manager.keyring import KeyRing
from cluster.manager.peers import Peers
from cluster.manager.settings import ManagerSettings
from cluster.state.store import Store
from raft.runtime.node import RaftNode

__all__ = ["info", "raft_status"]


def raft_status(
    settings: ManagerSettings, node: RaftNode, store: Store, peers: Peers, keyring: KeyRing
) -> dict[str, Any]:
    """The node's status, named for users, with what only the manager knows."""
    if keyring.locked:
        return {
            "name": settings.name,
            "node_id": settings.node_id,
            "role": "locked",
            "locked": True,
            "term": 0,
            "leader": None,
            "commit_index": 0,
            "applied_index": 0,
            "last_log_index": 0,
            "api_url": settings.api_url,
            "pid": os.getpid(),
            "initialised": False,
        }
    st = node.status()
    st["name"] = settings.name
    st["node_id"] = settings.node_id
    st["leader_api_url"] = peers.api_url(st.get("leader"))
    st["api_url"] = settings.api_url
    st["pid"] = os.getpid()
    st["initialised"] = store.cluster() is not None
    # Autolock in force here: a restart would come back locked.
    st["autolock"] = keyring.autolock_in_force
    # Which unlock key a restart would ask for (the KEK's public ID, a hash, as
    # stored beside the data): it follows a rotation on the next duty tick, so a
    # caller can wait until every manager has taken the new key.
    st["unlock_key_id"] = keyring.unlock_key_id()
    return st


def info(settings: ManagerSettings, node: RaftNode, store: Store, locked: bool) -> dict[str, Any]:
    """Facts for ``GET /info`` that the store does not hold."""
    s = settings
    st = node.status()
    return {
        "Managers": len(st.get("voters", s.peers)),
        "Nodes": store.count("node"),
        "LocalNodeState": "locked" if locked else "active",
        "Raft": {
            "HeartbeatTick": s.heartbeat_ticks,
            "ElectionTick": s.election_ticks,
            "SnapshotInterval": s.snapshot_entries,
            "TickInterval": s.tick_interval,
        },
    }
