"""Mutual TLS on the Raft transport (real sockets on 127.0.0.1, port 0).

Certificates come from `cluster.security.pki` the way ``up`` issues them.  A test that
shows a peer's messages did *not* arrive sends a marker from an honest peer
afterwards and waits for it; the refused connection is also seen closed.
Each side counts a failed handshake and logs it (`warnings_from`): one line
per remote and reason however often a bad peer retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from transport_harness import TIMEOUT, Node, eventually, transport_factory, vote

from cluster.security.pki import MANAGER_ROLE, WORKER_ROLE, CertificateAuthority
from raft.runtime.codec import PROTOCOL_VERSION, Hello, encode_frame, encode_hello, frame
from raft.runtime.handshake import TLS_GO, WarningThrottle
from raft.runtime.tls import TLSFiles
from raft.runtime.transport import Transport

CLUSTER = "tls-cluster"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., TLSFiles]:
    """Issue certificates: ``pki(name, role=..., ca="main", cluster=..., expired=False)``."""
    root = tmp_path_factory.mktemp("pki")
    cas = {
        "main": CertificateAuthority.create(CLUSTER),
        "foreign": CertificateAuthority.create(CLUSTER),
    }
    count = 0

    def issue(
        name: str,
        role: str = MANAGER_ROLE,
        ca: str = "main",
        cluster: str = CLUSTER,
        expired: bool = False,
    ) -> TLSFiles:
        nonlocal count
        count += 1
        files = cas[ca].issue_files(root / f"{count}-{name}", name, role, cluster)
        if expired:
            write_expired_certificate(
                cas[ca], root / f"{count}-{ca}-ca", files, name, role, cluster
            )
        return files

    return issue


def write_expired_certificate(
    ca: CertificateAuthority, ca_dir: Path, files: TLSFiles, name: str, role: str, cluster: str
) -> None:
    """Replace ``files``' certificate with one from ``ca`` that expired yesterday."""
    ca.save(ca_dir)
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = serialization.load_pem_private_key(files.key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def warnings_from(caplog: pytest.LogCaptureFixture, node_id: str, needle: str) -> list[str]:
    """The WARNING lines ``node_id``'s transport logged that contain ``needle``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == f"test.transport.{node_id}"
        and r.levelno == logging.WARNING
        and needle in r.getMessage()
    ]


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


def handshake_failures(node: Node) -> int:
    """Handshakes that failed on ``node``'s side, at the TLS or the Hello level."""
    return node.t.stats.refused + node.t.stats.tls_failures


async def assert_intruder_refused(
    make_node, pki, intruder_id: str, intruder_tls: TLSFiles | None
) -> tuple[Node, Node]:
    """``intruder_id`` dials manager2 and sends; nothing it sends arrives.

    An honest manager1 sends a marker afterwards, which must arrive: so the
    intruder's message was not merely slow.  Returns (target, intruder).
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
    # Both sides see the failure (each in its own words: see the tests below).
    await eventually(lambda: handshake_failures(target) > 0 and handshake_failures(intruder) > 0)
    honest.t.send(vote("manager1", "manager2", term=1))
    await target.inbox.wait_for_message(vote("manager1", "manager2", term=1))
    assert all(m.src != intruder_id for m in target.inbox.messages)
    assert not intruder.t.is_connected("manager2")
    assert target.t.stats.accepts == 1  # the honest peer only
    return target, intruder


async def test_foreign_ca_cannot_connect(make_node, pki, caplog):
    caplog.set_level(logging.WARNING)
    files = pki("manager3", ca="foreign")
    target, intruder = await assert_intruder_refused(make_node, pki, "manager3", files)
    # The intruder's TLS refuses the target's certificate first, and says why;
    # the target only sees it hang up in the middle of the handshake.
    assert intruder.t.stats.tls_failures >= 1
    [line] = warnings_from(caplog, "manager3", "TLS handshake with manager2")
    assert f"at 127.0.0.1:{target.t.port} failed: CERTIFICATE_VERIFY_FAILED" in line
    await eventually(lambda: target.t.stats.tls_failures >= 1)
    [line] = warnings_from(caplog, "manager2", "TLS handshake from 127.0.0.1:")
    assert line.endswith("failed: closed by the peer during the TLS handshake")


async def test_plain_tcp_peer_cannot_connect(make_node, pki, caplog):
    caplog.set_level(logging.WARNING)
    target, intruder = await assert_intruder_refused(make_node, pki, "manager3", None)
    await eventually(lambda: target.t.stats.tls_failures >= 1)
    [line] = warnings_from(caplog, "manager2", "TLS handshake from 127.0.0.1:")
    assert line.endswith("failed: WRONG_VERSION_NUMBER")
    # The plain dialer cannot tell TLS from a refusal: the acceptor hung up.
    assert intruder.t.stats.refused >= 1
    [line] = warnings_from(caplog, "manager3", "handshake with manager2")
    assert "refused: it closed the connection before its Hello" in line


async def test_expired_client_certificate_is_counted_and_logged(make_node, pki, caplog):
    """A dialer whose certificate expired: refused, counted and logged on both sides.

    With TLS 1.3 the server checks the client's certificate after the
    client's side of the handshake is done, so the dialer only sees the
    acceptor hang up before its Hello: a refusal, not a TLS failure.
    """
    caplog.set_level(logging.WARNING)
    files = pki("manager3", expired=True)
    target, intruder = await assert_intruder_refused(make_node, pki, "manager3", files)
    assert target.t.stats.tls_failures >= 1
    [line] = warnings_from(caplog, "manager2", "TLS handshake from 127.0.0.1:")
    assert line.endswith("failed: CERTIFICATE_VERIFY_FAILED (certificate has expired)")
    assert intruder.t.stats.refused >= 1
    assert warnings_from(caplog, "manager3", "closed the connection before its Hello")


async def test_dialer_counts_and_logs_an_expired_server_certificate(make_node, pki, caplog):
    caplog.set_level(logging.WARNING)
    server = await make_node("manager2", pki("manager2", expired=True))
    a = await make_node("manager1", pki("manager1"))
    server.t.set_peers({"manager1": a.address})
    a.t.set_peers({"manager2": server.address})
    a.t.send(vote("manager1", "manager2"))
    await eventually(lambda: a.t.stats.tls_failures >= 1)
    [line] = warnings_from(caplog, "manager1", "TLS handshake with manager2")
    assert line == (
        f"manager1: TLS handshake with manager2 at 127.0.0.1:{server.t.port} failed: "
        "CERTIFICATE_VERIFY_FAILED (certificate has expired)"
    )
    assert not a.t.is_connected("manager2")
    assert server.inbox.messages == []


async def test_a_renewed_certificate_is_used_without_a_restart(make_node, pki, caplog):
    """Replacing a running node's files (what a renewal does) takes effect on the
    next connection: an expired server certificate, refused, then renewed in place."""
    caplog.set_level(logging.WARNING)
    files = pki("manager2", expired=True)
    server = await make_node("manager2", files)
    a = await make_node("manager1", pki("manager1"))
    server.t.set_peers({"manager1": a.address})
    a.t.set_peers({"manager2": server.address})
    a.t.send(vote("manager1", "manager2"))
    await eventually(lambda: a.t.stats.tls_failures >= 1)
    assert server.inbox.messages == []

    fresh = pki("manager2")
    for path in ("key", "cert"):
        getattr(files, path).write_bytes(getattr(fresh, path).read_bytes())
    a.t.send(vote("manager1", "manager2", term=2))
    await server.inbox.wait_for_message(vote("manager1", "manager2", term=2))
    assert a.t.is_connected("manager2")


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


async def dial_without_certificate(target: Node, files: TLSFiles) -> None:
    """A raw TLS client with no certificate says Hello and sends a vote; returns once closed.

    It follows the wire protocol up to TLS: plain TCP, the acceptor's go byte, then TLS."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca))
    ctx.check_hostname = False
    reader, writer = await asyncio.open_connection(*target.address)
    try:
        assert await reader.readexactly(1) == TLS_GO
        await writer.start_tls(ctx, server_hostname="")
    except OSError:
        writer.close()
        return  # refused during the handshake: also fine
    try:
        writer.write(frame(encode_hello(Hello(PROTOCOL_VERSION, CLUSTER, "manager1"))))
        writer.write(encode_frame(vote("manager1", "manager2"), 1 << 20))
        async with asyncio.timeout(TIMEOUT):
            with contextlib.suppress(OSError):  # ssl.SSLError is an OSError
                assert await reader.read(4096) == b""
    finally:
        writer.close()


async def test_client_without_certificate_is_closed_before_any_message(make_node, pki, caplog):
    """The server closes without reading a frame, counts it and says why, naming the client."""
    caplog.set_level(logging.WARNING)
    target = await make_node("manager2", pki("manager2"))
    target.t.set_peers({"manager1": ("127.0.0.1", 9)})
    await dial_without_certificate(target, pki("manager1"))
    assert target.inbox.messages == []
    assert target.t.stats.accepts == 0
    await eventually(lambda: target.t.stats.tls_failures == 1)
    [line] = warnings_from(caplog, "manager2", "TLS handshake")
    assert line.startswith("manager2: TLS handshake from 127.0.0.1:")
    assert line.endswith(" failed: PEER_DID_NOT_RETURN_A_CERTIFICATE")


async def test_a_burst_of_bad_handshakes_is_counted_but_logged_once(make_node, pki, caplog):
    """Thirty clients without a certificate: thirty failures, one warning line."""
    caplog.set_level(logging.WARNING)
    target = await make_node("manager2", pki("manager2"))
    files = pki("manager1")
    burst = 30
    await asyncio.gather(*(dial_without_certificate(target, files) for _ in range(burst)))
    await eventually(lambda: target.t.stats.tls_failures == burst)
    assert len(warnings_from(caplog, "manager2", "TLS handshake")) == 1
    assert target.t.stats.accepts == 0
    # One bad client costs nobody else: an honest peer still gets through.
    honest = await make_node("manager1", files)
    link(honest, target)
    honest.t.send(vote("manager1", "manager2"))
    await target.inbox.wait_for_message(vote("manager1", "manager2"))


async def test_a_persistent_bad_dialer_is_logged_once_per_interval(make_node, pki, caplog):
    """A transport redialling every few ms with a foreign certificate: counted every time."""
    caplog.set_level(logging.WARNING)
    target = await make_node("manager2", pki("manager2"))
    intruder = await make_node("manager3", pki("manager3", ca="foreign"))
    target.t.set_peers({"manager3": ("127.0.0.1", 9)})
    intruder.t.set_peers({"manager2": target.address})
    # Each failure empties its queue (stale): keep it fed, so that it keeps redialling.
    async with asyncio.timeout(TIMEOUT):
        term = 0
        while target.t.stats.tls_failures < 5 or intruder.t.stats.tls_failures < 5:
            term += 1
            intruder.t.send(vote("manager3", "manager2", term=term))
            await asyncio.sleep(0.01)  # polls the counters; the timeout bounds the wait
    assert len(warnings_from(caplog, "manager2", "TLS handshake")) == 1
    assert len(warnings_from(caplog, "manager3", "TLS handshake")) == 1


def test_warning_throttle_reports_what_it_held_back():
    now = [0.0]
    throttle = WarningThrottle(10.0, clock=lambda: now[0])
    key = ("127.0.0.1", "PEER_DID_NOT_RETURN_A_CERTIFICATE")
    assert throttle.admit(key) == 0  # the first one is logged
    assert throttle.admit(("127.0.0.1", "WRONG_VERSION_NUMBER")) == 0  # another reason: logged
    assert throttle.admit(("10.0.0.9", key[1])) == 0  # another host: logged
    for _ in range(7):
        now[0] += 1.0
        assert throttle.admit(key) is None  # within the interval: held back
    now[0] = 10.0
    assert throttle.admit(key) == 7  # the next line says how many were held back
    assert throttle.admit(key) is None


def test_warning_throttle_forgets_quiet_keys_when_full():
    now = [0.0]
    throttle = WarningThrottle(1.0, clock=lambda: now[0])
    for host in range(throttle.MAX_KEYS):
        throttle.admit((f"10.0.{host // 256}.{host % 256}", "X"))
    now[0] = 5.0
    throttle.admit(("192.0.2.1", "X"))
    assert len(throttle._keys) == 1


def test_held_back_count_is_in_the_next_line(caplog):
    caplog.set_level(logging.WARNING)
    t = Transport("manager2", CLUSTER, logger=logging.getLogger("test.transport.manager2"))
    now = [0.0]
    t._handshake.warnings = WarningThrottle(10.0, clock=lambda: now[0])
    for _ in range(4):
        t._handshake.warn("127.0.0.1", "WRONG_VERSION_NUMBER", "%s: failed: %s", "x", "WHY")
    now[0] = 11.0
    t._handshake.warn("127.0.0.1", "WRONG_VERSION_NUMBER", "%s: failed: %s", "x", "WHY")
    assert warnings_from(caplog, "manager2", "failed") == [
        "x: failed: WHY",
        "x: failed: WHY (and 3 more like it since the last report)",
    ]


def test_key_files_are_private(pki):
    files = pki("manager1")
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert Path(files.ca).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_every_dial_gets_through_at_once_on_uvloop(pki):
    """uvloop starts reading an accepted socket whatever ``connection_made`` asked, so
    a ClientHello sent at once could land in the plain buffer and hang the handshake;
    the acceptor's go byte (`Handshake.accept_tls`) makes every first dial succeed."""
    pytest.importorskip("uvloop")
    from raft.runtime import eventloop

    async def dials() -> tuple[int, bool]:
        async for make in transport_factory():
            target = await make("manager2", CLUSTER, tls=pki("manager2"))
            assert eventloop.loop_name(asyncio.get_running_loop()) == "uvloop"
            dialers = [await make("manager1", CLUSTER, tls=pki("manager1")) for _ in range(12)]
            target.t.set_peers({"manager1": ("127.0.0.1", 9)})
            for i, d in enumerate(dialers, start=1):
                d.t.set_peers({"manager2": target.address})
                d.t.send(vote("manager1", "manager2", term=i))
            async with asyncio.timeout(TIMEOUT):
                for i in range(1, len(dialers) + 1):
                    await target.inbox.wait_for_message(vote("manager1", "manager2", term=i))
            failed = target.t.stats.tls_failures + sum(d.t.stats.tls_failures for d in dialers)
            return failed, all(d.t.stats.refused == 0 for d in dialers)
        raise AssertionError("unreachable")

    assert eventloop.run(dials()) == (0, True)


def _handshake(server: TLSFiles, client: TLSFiles) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """A mutual-TLS handshake in memory (no socket): the server's and the client's ends."""
    a_in, a_out, b_in, b_out = (ssl.MemoryBIO() for _ in range(4))
    s = server.server_context().wrap_bio(a_in, a_out, server_side=True)
    c = client.client_context().wrap_bio(b_in, b_out, server_side=False)
    for _ in range(20):
        done = 0
        for end in (c, s):
            try:
                end.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
        b_in.write(a_out.read())
        a_in.write(b_out.read())
        if done == 2:
            return s, c
    raise AssertionError("the in-memory handshake did not finish")


def test_peer_identity_from_ssl_agrees_with_the_parsed_certificate(pki, tmp_path):
    """`peer_identity` reads ssl's decoding (no cryptography package in a manager);
    it must find what `identity_of` finds in the parsed certificate, a subject with
    two CNs included (then no CN at all: ambiguous)."""
    from raft.runtime.tls import identity_of, peer_identity

    alice, bob = pki("manager1"), pki("worker7", role=WORKER_ROLE)
    ca = CertificateAuthority.create(CLUSTER)
    twice = ca.issue_files(tmp_path / "twice", "manager2", MANAGER_ROLE, CLUSTER)
    key = serialization.load_pem_private_key(twice.key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "manager2"),
            x509.NameAttribute(NameOID.COMMON_NAME, "manager3"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, MANAGER_ROLE),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CLUSTER),
        ]
    )
    ca.save(tmp_path / "ca")
    ca_key = serialization.load_pem_private_key((tmp_path / "ca" / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    twice.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for server, client in ((alice, bob), (bob, alice), (twice, twice)):
        s, c = _handshake(server, client)
        for end in (s, c):
            der = end.getpeercert(binary_form=True)
            assert der
            parsed = identity_of(x509.load_der_x509_certificate(der))
            assert peer_identity(end) == parsed
    assert peer_identity(s) is not None and peer_identity(s).node_id == ""
    assert peer_identity(_handshake(alice, bob)[0]).node_id == "worker7"
