"""Managers learnt from the store (`cluster.manager.joins.learn_peers`), without processes."""

from __future__ import annotations

from cluster.manager.joins import learn_peers
from cluster.manager.process import Peer
from cluster.state import commands as c
from cluster.state.store import Store

NOW = "2024-05-01T12:00:00Z"


def _node(store: Store, node_id: str, name: str, raft: int) -> None:
    ends = {"Raft": f"127.0.0.1:{raft}", "API": f"http://127.0.0.1:{raft + 1}"}
    cmd = c.create_node(
        node_id,
        NOW,
        hostname=name,
        role="manager",
        manager_addr=ends["Raft"],
        description={"Endpoints": ends | {"Swarm": f"https://127.0.0.1:{raft + 2}"}},
    )
    assert store.apply(store.applied_index + 1, cmd).ok


def _peer(node_id: str, raft: int) -> Peer:
    return Peer(
        node_id,
        ("127.0.0.1", raft),
        f"http://127.0.0.1:{raft + 1}",
        f"https://127.0.0.1:{raft + 2}",
    )


def test_new_and_moved_managers_are_learnt_never_ourselves_and_nobody_dropped() -> None:
    store = Store()
    _node(store, "id1", "manager1", 7000)
    _node(store, "id4", "manager4", 7300)
    known = {"manager1": _peer("id1", 7000), "manager2": _peer("id2", 7100)}
    learnt = learn_peers(store, known, Peer, "manager1")
    assert learnt == known | {"manager4": _peer("id4", 7300)}  # manager2 kept, not in store
    assert learn_peers(store, learnt, Peer, "manager1") is None  # nothing new: no churn

    # manager4 removed, its name given to a newcomer on other ports: the new address wins.
    version = store.get("node", "id4")["Version"]["Index"]
    demote = c.update_node("id4", version, {"Role": "worker", "Availability": "active"}, NOW)
    assert store.apply(store.applied_index + 1, demote).ok
    assert store.apply(store.applied_index + 1, c.remove_node("id4", force=True)).ok
    _node(store, "id4b", "manager4", 7600)
    moved = learn_peers(store, learnt, Peer, "manager1")
    assert moved is not None and moved["manager4"] == _peer("id4b", 7600)

    # Our own entry is our config's, whatever the store says.
    mine = {"manager1": _peer("id1", 9000)}
    assert learn_peers(store, mine, Peer, "manager1")["manager1"] == _peer("id1", 9000)
