"""The manager's parts without a process: the peers it knows, the keys' refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster.api.backend import StorageFullError
from cluster.manager.backend import RaftBackend
from cluster.manager.duties import LeaderDuties
from cluster.manager.keyring import KeyChange
from cluster.manager.peers import Peer, Peers
from cluster.manager.process import Manager, ManagerSettings
from cluster.security import crypto
from cluster.state import commands as c
from cluster.state.errors import FailedPrecondition
from cluster.state.store import Store
from raft.core.membership import ConfChange, ConfChangeError, ConfChangeOp
from raft.runtime.node import DiskFull


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


class _Node:
    """A RaftNode stand-in for the membership loop: who votes, who learns, and
    a core that refuses to promote a learner that has not caught up."""

    def __init__(self, voters: list[str], learners: list[str], behind: set[str]) -> None:
        self.voters, self.learners, self.behind = voters, learners, behind
        self.proposed: list[tuple[str, str]] = []

    def status(self) -> dict[str, object]:
        return {"voters": self.voters, "learners": self.learners}

    async def propose_conf_change(self, change: ConfChange, timeout: float) -> None:
        if change.op is ConfChangeOp.PROMOTE and change.node in self.behind:
            raise ConfChangeError(f"{change.node} has not caught up")
        self.proposed.append((change.op.value, change.node))


async def test_a_learner_that_cannot_be_promoted_does_not_hold_back_the_others() -> None:
    store = Store()
    for i, name in enumerate(("manager1", "manager2", "manager3"), start=1):
        cmd = c.create_node(f"n{i}", "2024-05-01T12:00:00Z", hostname=name, role="manager")
        assert store.apply(i, cmd).ok
    node = _Node(voters=["manager1"], learners=["manager2", "manager3"], behind={"manager2"})
    duties = LeaderDuties.__new__(LeaderDuties)  # only what _reconcile_members reads
    duties.settings = type("S", (), {"name": "manager1"})()
    duties.store, duties.node = store, node
    duties.peers = Peers("manager1", {f"manager{i}": _peer(f"n{i}", 7000 + i) for i in (1, 2, 3)})
    duties.backend = type("B", (), {"request_timeout": 1.0})()
    await duties._reconcile_members()
    # manager2 (down, or still behind) is refused; manager3 is promoted in the same pass.
    assert node.proposed == [("promote", "manager3")]


class _FullNode:
    """A Raft node whose disk is full, as `RaftBackend` sees it."""

    async def propose(self, data: bytes, timeout: float | None = None) -> None:
        raise DiskFull("manager1 cannot write its Raft log: no space left on device (/d/x.seg)")

    async def read_index(self, timeout: float | None = None) -> int:
        raise DiskFull("manager1 cannot write its Raft log: no space left on device (/d/x.seg)")


async def test_a_full_disk_is_a_507_naming_the_cause(tmp_path: Path) -> None:
    m = _manager(tmp_path)
    node: Any = _FullNode()
    backend = RaftBackend(m.settings, node, Store(), Peers("manager1", {}), lambda: None)
    for call in (backend.write(b"cmd"), backend.read_barrier(1.0)):
        with pytest.raises(StorageFullError) as info:
            await call
        assert info.value.http_status == 507
        assert info.value.message == (
            "manager1 cannot write its Raft log: no space left on device (/d/x.seg)"
        )
