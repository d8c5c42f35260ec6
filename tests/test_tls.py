"""Mutual TLS on the Raft transport (real sockets on 127.0.0.1, port 0).

Certificates come from `cluster.pki` the way ``up`` issues them.  A test that
shows a peer's messages did *not* arrive sends a marker from an honest peer
afterwards and waits for it; the refused connection is also seen closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from transport_harness import TIMEOUT, Node, eventually, transport_factory, vote

from cluster.pki import MANAGER_ROLE, WORKER_ROLE, CertificateAuthority
from raft.codec import PROTOCOL_VERSION, Hello, encode_frame, encode_hello, frame
from raft.tls import TLSFiles

CLUSTER = "tls-cluster"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., TLSFiles]:
    """Issue certificates: ``pki(name, role=..., ca="main", cluster=...)``."""
    root = tmp_path_factory.mktemp("pki")
    cas = {
        "main": CertificateAuthority.create(CLUSTER),
        "foreign": CertificateAuthority.create(CLUSTER),
    }
    count = 0

    def issue(name: str, role: str = MANAGER_ROLE, ca: str = "main", cluster: str = CLUSTER):
        nonlocal count
        count += 1
        return cas[ca].issue_files(root / f"{count}-{name}", name, role, cluster)

    return issue


@pytest.fixture
async def make_node() -> AsyncIterator[Callable[..., Any]]:
    """``make_node(name, tls)``: a transport of this cluster, stopped after the test."""
    async for make in transport_factory():

        async def make_tls(node_id: str, tls: TLSFiles | None, make=make) -> Node:
            return await make(node_id, CLUSTER, tls=tls)

        yield make_tls


def link(a: Node, b: Node) -> None:
    a.t.set_peers({**a.t.peers, b.t.node_id: b.address})
    b.t.set_peers({**b.t.peers, a.t.node_id: a.address})


async def test_certificates_from_one_ca_exchange_messages(make_node, pki):
    a = await make_node("manager1", pki("manager1"))
    b = await make_node("manager2", pki("manager2"))
    link(a, b)
    a.t.send(vote("manager1", "manager2"))
    b.t.send(vote("manager2", "manager1", term=2))
    await b.inbox.wait_for_message(vote("manager1", "manager2"))
    await a.inbox.wait_for_message(vote("manager2", "manager1", term=2))
    assert a.t.stats.refused == b.t.stats.refused == 0


async def test_plain_tcp_still_works_without_tls(make_node):
    a = await make_node("manager1", None)
    b = await make_node("manager2", None)
    link(a, b)
    a.t.send(vote("manager1", "manager2"))
    await b.inbox.wait_for_message(vote("manager1", "manager2"))


async def assert_intruder_refused(make_node, pki, intruder_id: str, intruder_tls: TLSFiles | None):
    """``intruder_id`` dials manager2 and sends; nothing it sends arrives.

    An honest manager1 sends a marker afterwards, which must arrive: so the
    intruder's message was not merely slow.
    """
    target = await make_node("manager2", pki("manager2"))
    honest = await make_node("manager1", pki("manager1"))
    intruder = await make_node(intruder_id, intruder_tls)
    link(honest, target)
    # The target knows the intruder's claimed id as a member: only the
    # certificate stands between it and the cluster.
    target.t.set_peers({**target.t.peers, intruder_id: ("127.0.0.1", 9)})
    intruder.t.set_peers({"manager2": target.address})
    intruder.t.send(vote(intruder_id, "manager2", term=99))
    await eventually(lambda: intruder.t.stats.refused + target.t.stats.refused > 0
                     or intruder.t.stats.dropped_write_failed > 0)  # fmt: skip
    honest.t.send(vote("manager1", "manager2", term=1))
    await target.inbox.wait_for_message(vote("manager1", "manager2", term=1))
    assert all(m.src != intruder_id for m in target.inbox.messages)
    assert not intruder.t.is_connected("manager2")
    assert target.t.stats.accepts == 1  # the honest peer only


async def test_foreign_ca_cannot_connect(make_node, pki):
    await assert_intruder_refused(make_node, pki, "manager3", pki("manager3", ca="foreign"))


async def test_plain_tcp_peer_cannot_connect(make_node, pki):
    await assert_intruder_refused(make_node, pki, "manager3", None)


async def test_certificate_for_another_name_is_refused(make_node, pki):
    # manager3 holds a good certificate, but for manager4's name, and claims to be manager3.
    files = pki("manager4")
    await assert_intruder_refused(make_node, pki, "manager3", files)


async def test_worker_certificate_cannot_join_raft(make_node, pki):
    await assert_intruder_refused(make_node, pki, "worker1", pki("worker1", role=WORKER_ROLE))


async def test_other_cluster_certificate_is_refused(make_node, pki):
    files = pki("manager3", cluster="another-cluster")
    await assert_intruder_refused(make_node, pki, "manager3", files)


async def test_dialer_refuses_a_server_whose_certificate_is_another_node(make_node, pki):
    """A manager listening with manager3's certificate cannot pose as manager2."""
    impostor = await make_node("manager2", pki("manager3"))
    a = await make_node("manager1", pki("manager1"))
    impostor.t.set_peers({"manager1": ("127.0.0.1", 9)})
    a.t.set_peers({"manager2": impostor.address})
    a.t.send(vote("manager1", "manager2"))
    await eventually(lambda: a.t.stats.refused > 0 or impostor.t.stats.refused > 0)
    assert impostor.inbox.messages == []
    assert not a.t.is_connected("manager2")


async def test_client_without_certificate_is_closed_before_any_message(make_node, pki):
    """A raw TLS client with no certificate: the server closes without reading a frame."""
    target = await make_node("manager2", pki("manager2"))
    files = pki("manager1")
    target.t.set_peers({"manager1": ("127.0.0.1", 9)})
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
    ctx.check_hostname = False
    try:
        reader, writer = await asyncio.open_connection(*target.address, ssl=ctx, server_hostname="")
    except OSError:
        return  # refused during the handshake: also fine
    writer.write(frame(encode_hello(Hello(PROTOCOL_VERSION, CLUSTER, "manager1"))))
    writer.write(encode_frame(vote("manager1", "manager2"), 1 << 20))
    async with asyncio.timeout(TIMEOUT):
        with contextlib.suppress(OSError):  # ssl.SSLError is an OSError
            assert await reader.read(4096) == b""
    writer.close()
    assert target.inbox.messages == []
    assert target.t.stats.accepts == 0


def test_key_files_are_private(pki):
    files = pki("manager1")
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert Path(files.ca).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
