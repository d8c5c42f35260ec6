"""The manager's parts without a process: the peers it knows, the keys' refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.manager.keyring import KeyChange
from cluster.manager.peers import Peer, Peers
from cluster.manager.process import Manager, ManagerSettings
from cluster.security import crypto
from cluster.state import commands as c
from cluster.state.errors import FailedPrecondition
from cluster.state.store import Store


def _peer(node_id: str, raft: int) -> Peer:
    return Peer(node_id, ("127.0.0.1", raft), f"http://127.0.0.1:{raft + 1}")


def test_not_leader_names_the_leaders_url_when_known() -> None:
    peers = Peers("manager1", {"manager1": _peer("n1", 7000), "manager2": _peer("n2", 7100)})
    e = peers.not_leader("manager2")
    assert (e.leader_name, e.leader_api_url) == ("manager2", "http://127.0.0.1:7101")
    assert peers.not_leader("manager9").leader_api_url is None
    assert peers.not_leader(None).leader_name is None


def test_peers_learnt_from_the_store_are_seen_by_every_holder() -> None:
    peers = Peers("manager1", {"manager1": _peer("n1", 7000)})
    holder = peers  # what the backend, the duties and the status share
    store = Store()
    ends = {"Raft": "127.0.0.1:7300", "API": "http://127.0.0.1:7301"}
    cmd = c.create_node(
        "n4",
        "2024-05-01T12:00:00Z",
        hostname="manager4",
        role="manager",
        manager_addr=ends["Raft"],
        description={"Endpoints": ends},
    )
    assert store.apply(1, cmd).ok
    assert peers.learn(store) == ["manager4"]
    assert holder.raft_addresses()["manager4"] == ("127.0.0.1", 7300)
    assert peers.learn(store) == []  # nothing new: no churn


def _manager(tmp_path: Path) -> Manager:
    settings = ManagerSettings(
        name="manager1",
        node_id="n1",
        cluster_id="c1",
        data_dir=tmp_path / "manager1",
        api_port=0,
        peers={"manager1": _peer("n1", 0)},
    )
    return Manager(settings)


def test_autolock_changes_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    keyring = _manager(tmp_path).keyring
    with pytest.raises(FailedPrecondition, match="no unlock key to rotate"):
        keyring.autolock_change(had=False, want=False, rotate=True, now=0.0)
    with pytest.raises(FailedPrecondition, match="does not hold the current unlock key"):
        keyring.autolock_change(had=True, want=False, rotate=False, now=0.0)
    assert keyring.autolock_change(had=False, want=False, rotate=False, now=0.0).commands == []


def test_a_key_change_never_shows_its_key() -> None:
    key = crypto.generate_unlock_key()
    change = KeyChange([b"x"], key, crypto.kek_from_unlock_key(key))
    assert key not in repr(change) and "SWMKEY" not in repr(change)
