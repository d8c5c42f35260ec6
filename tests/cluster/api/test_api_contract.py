"""The HTTP API contract (docs/http-api.md) for ``GET /raft/status``, on the fake manager.

Every answer names the fields the contract lists (name, id, role, term,
leader, voted_for, commit_index, applied_index, last_log_index,
last_log_term, snapshot index) -- also from a manager that runs no Raft
yet: one locked by autolock, or one still starting.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_fakes import FakeBackend, bootstrap

from cluster.api.server import make_app

INTS = ("term", "commit_index", "applied_index", "last_log_index", "last_log_term")
NAMES = ("leader", "voted_for")


class LockedBackend(FakeBackend):
    """What `cluster.manager.process` answers while autolock keeps it locked."""

    def raft_status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "node_id": "aa3manager3xxxxxxxxxxxxxx",
            "role": "locked",
            "locked": True,
            "term": 0,
            "leader": None,
            "commit_index": 0,
            "applied_index": 0,
            "last_log_index": 0,
        }


class StartingBackend(FakeBackend):
    """A RaftNode whose core is not running yet answers only its id and role."""

    def raft_status(self) -> dict[str, Any]:
        return {"id": self.name, "role": "down"}


class LeaderBackend(FakeBackend):
    """The leader's answer carries each follower's match and next index."""

    def raft_status(self) -> dict[str, Any]:
        st = super().raft_status()
        st["voted_for"] = st.pop("vote")
        st["peers"] = {
            "manager2": {"match": 7, "next": 8},
            "manager3": {"match": 5, "next": 6},
        }
        return st


async def raft_status(backend: FakeBackend) -> dict[str, Any]:
    async with TestClient(TestServer(make_app(bootstrap(backend)))) as client:
        resp = await client.get("/raft/status")
        assert resp.status == 200
        return await resp.json()


def check_fields(st: dict[str, Any], name: str) -> None:
    assert st["name"] == name and st["id"] == name  # a manager's Raft ID is its name
    assert isinstance(st["role"], str) and st["role"]
    for key in INTS:
        assert type(st[key]) is int, key
    for key in NAMES:
        assert st[key] is None or isinstance(st[key], str), key
    assert type(st["snapshot_index"]) is int


@pytest.mark.parametrize("backend_class", [LockedBackend, StartingBackend])
async def test_raft_status_has_every_field_without_raft(backend_class: type) -> None:
    st = await raft_status(backend_class(name="manager3", mode="no-quorum"))
    check_fields(st, "manager3")
    assert st["term"] == 0 and st["leader"] is None and st["voted_for"] is None
    if backend_class is LockedBackend:
        assert st["role"] == "locked" and st["locked"] is True


async def test_raft_status_of_a_leader_keeps_its_own_values_and_peers() -> None:
    st = await raft_status(LeaderBackend())
    check_fields(st, "manager1")
    assert (st["role"], st["term"], st["leader"], st["voted_for"]) == (
        "leader",
        3,
        "manager1",
        "manager1",
    )
    assert st["last_log_term"] == 3 and st["commit_index"] > 0
    assert st["peers"]["manager2"] == {"match": 7, "next": 8}
