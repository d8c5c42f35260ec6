"""The swarm port's join route against a fake manager (plain HTTP, no processes).

Mutual TLS itself and the dispatcher's certificate checks run on real
processes in `test_join_integration`; here: who may join as what, and how
a follower, a bad request or two joins at once are answered.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from api_fakes import SwarmBackend, bootstrap
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cluster.api.swarm import make_swarm_app
from cluster.security.pki import MANAGER_ROLE, WORKER_ROLE, make_csr
from cluster.state import objects as o

ENDPOINTS = {
    "Raft": "127.0.0.1:7004",
    "API": "http://127.0.0.1:8004",
    "Swarm": "https://127.0.0.1:9004",
}


@pytest.fixture
async def swarm() -> AsyncIterator[tuple[TestClient, SwarmBackend]]:
    backend = bootstrap(SwarmBackend())
    async with TestClient(TestServer(make_swarm_app(backend))) as client:
        yield client, backend


def tokens(backend: SwarmBackend) -> dict[str, str]:
    return backend.store.cluster()["JoinTokens"]


def csr() -> str:
    return make_csr(ec.generate_private_key(ec.SECP256R1())).decode()


async def post(client: TestClient, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with client.post("/join", data=json.dumps(body)) as resp:
        return resp.status, await resp.json()


def subject(pem: str) -> dict[x509.ObjectIdentifier, str]:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return {a.oid: str(a.value) for a in cert.subject}


async def test_a_worker_token_makes_a_worker_named_by_the_swarm(swarm) -> None:
    client, backend = swarm
    status, answer = await post(client, {"JoinToken": tokens(backend)["Worker"], "CSR": csr()})
    assert status == 200, answer
    assert answer["Role"] == "worker" and answer["Hostname"] == "worker2"  # worker1 exists
    name = subject(answer["Certificate"])
    assert name[NameOID.COMMON_NAME] == answer["NodeID"]
    assert name[NameOID.ORGANIZATIONAL_UNIT_NAME] == WORKER_ROLE
    assert name[NameOID.ORGANIZATION_NAME] == "cluster-a"
    node = backend.store.get(o.NODE, answer["NodeID"])
    assert node["Spec"]["Role"] == "worker" and node["Status"]["State"] == "unknown"
    assert "ManagerStatus" not in node


async def test_a_manager_token_makes_a_manager_with_its_endpoints(swarm) -> None:
    client, backend = swarm
    token = tokens(backend)["Manager"]
    status, answer = await post(client, {"JoinToken": token, "CSR": csr()})
    assert status == 400 and "Endpoints" in answer["message"]
    status, answer = await post(client, {"JoinToken": token, "CSR": csr(), "Endpoints": ENDPOINTS})
    assert status == 200, answer
    assert answer["Role"] == "manager" and answer["Hostname"] == "manager4"
    name = subject(answer["Certificate"])
    assert name[NameOID.COMMON_NAME] == "manager4"  # its Raft id, as raft.runtime.tls checks
    assert name[NameOID.ORGANIZATIONAL_UNIT_NAME] == MANAGER_ROLE
    node = backend.store.get(o.NODE, answer["NodeID"])
    assert node["ManagerStatus"]["Addr"] == "127.0.0.1:7004"
    assert node["Description"]["Endpoints"] == ENDPOINTS


@pytest.mark.parametrize(
    ("token_role", "asked", "message"),
    [
        ("Worker", "manager", "a worker join token cannot join as a manager"),
        ("Manager", "worker", "a manager join token cannot join as a worker"),
    ],
)
async def test_the_token_not_the_request_decides_the_role(
    swarm, token_role: str, asked: str, message: str
) -> None:
    client, backend = swarm
    before = len(backend.store.list(o.NODE))
    body = {"JoinToken": tokens(backend)[token_role], "CSR": csr(), "Role": asked}
    status, answer = await post(client, body | {"Endpoints": ENDPOINTS})
    assert (status, answer["message"]) == (403, message)
    assert len(backend.store.list(o.NODE)) == before  # nothing recorded


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"JoinToken": "SWMTKN-1-nope", "CSR": "x"}, 403, "invalid join token"),
        ({"CSR": "x"}, 400, "JoinToken"),
        ({"JoinToken": "t", "CSR": "x", "Admin": True}, 400, "unknown field 'Admin'"),
        ({"JoinToken": "t", "CSR": "x", "Role": "root"}, 400, "worker or manager"),
        ({"JoinToken": "t", "CSR": "x", "Hostname": "Bad Name"}, 400, "Hostname"),
    ],
)
async def test_bad_requests_are_refused_and_change_nothing(
    swarm, body: dict[str, Any], status: int, fragment: str
) -> None:
    client, backend = swarm
    before = backend.store.applied_index
    got, answer = await post(client, body)
    assert got == status and fragment in answer["message"], answer
    assert backend.store.applied_index == before


async def test_a_garbage_signing_request_is_a_400(swarm) -> None:
    client, backend = swarm
    body = {"JoinToken": tokens(backend)["Worker"], "CSR": "-----BEGIN CERTIFICATE REQUEST-----"}
    status, answer = await post(client, body)
    assert status == 400 and "signing request" in answer["message"]


async def test_a_taken_hostname_is_a_409(swarm) -> None:
    client, backend = swarm
    body = {"JoinToken": tokens(backend)["Worker"], "CSR": csr(), "Hostname": "worker1"}
    status, answer = await post(client, body)
    assert status == 409 and "worker1" in answer["message"]


async def test_concurrent_joins_get_distinct_names(swarm) -> None:
    client, backend = swarm
    token = tokens(backend)["Worker"]
    answers = await asyncio.gather(
        *(post(client, {"JoinToken": token, "CSR": csr()}) for _ in range(5))
    )
    assert [s for s, _ in answers] == [200] * 5
    assert sorted(a["Hostname"] for _, a in answers) == [f"worker{i}" for i in range(2, 7)]


async def test_a_follower_names_the_leader_instead_of_forwarding(swarm) -> None:
    client, backend = swarm
    backend.mode, backend.leader_name = "follower", "manager2"
    status, answer = await post(client, {"JoinToken": tokens(backend)["Worker"], "CSR": csr()})
    assert status == 421
    assert answer["Leader"] == "manager2" and answer["LeaderURL"] == "https://127.0.0.1:9002"


async def test_the_dispatcher_needs_a_certificate(swarm) -> None:
    client, _ = swarm
    async with client.post("/dispatcher/register", data="{}") as resp:
        assert resp.status == 401
        assert "certificate" in (await resp.json())["message"]


async def test_the_root_certificate_is_public(swarm) -> None:
    client, backend = swarm
    async with client.get("/ca") as resp:
        assert resp.status == 200 and await resp.read() == backend.ca.cert_pem()


async def test_renewal_needs_the_certificate_being_renewed(swarm) -> None:
    """Without a client certificate there is no identity to certify again."""
    client, _ = swarm
    async with client.post("/renew", json={"CSR": csr()}) as resp:
        assert resp.status == 401
        assert "the certificate being renewed" in (await resp.json())["message"]
