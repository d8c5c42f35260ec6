"""The TCP transport on real sockets (127.0.0.1, port 0).

Every wait is on a condition with a bound (`Inbox.wait_for`, `eventually`);
a test that must show something did *not* arrive sends a marker after it on
the same link and waits for the marker: links are FIFO, so anything not
delivered before the marker was dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import pytest
from transport_harness import (
    CLUSTER,
    FAST,
    TIMEOUT,
    Node,
    eventually,
    transport_factory,
    vote,
)

from raft.core.messages import (
    AppendEntries,
    Entry,
    Message,
    RequestVoteResponse,
    TimeoutNow,
)
from raft.runtime.codec import (
    PROTOCOL_VERSION,
    Hello,
    LocalProtocolError,
    decode_hello,
    encode_frame,
    encode_hello,
    frame,
)
from raft.runtime.transport import FaultFilter, LinkFault, Transport, TransportSettings


@pytest.fixture
async def make_node() -> AsyncIterator[Callable[..., Any]]:
    """Start transports on port 0; every one is stopped when the test ends, pass or fail."""
    async for make in transport_factory():
        yield make


async def mesh(make_node, *names: str) -> dict[str, Node]:
    """Start one transport per name and give each the others' addresses."""
    nodes = {name: await make_node(name) for name in names}
    for name, node in nodes.items():
        node.t.set_peers({other: n.address for other, n in nodes.items() if other != name})
    return nodes


async def raw_connect(node: Node) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*node.address)


async def raw_handshake(node: Node, as_id: str, cluster: str = CLUSTER):
    """Dial ``node`` by hand and complete the handshake, for tests that then misbehave."""
    reader, writer = await raw_connect(node)
    writer.write(frame(encode_hello(Hello(PROTOCOL_VERSION, cluster, as_id))))
    async with asyncio.timeout(TIMEOUT):
        size = int.from_bytes(await reader.readexactly(4), "big")
        reply = decode_hello(await reader.readexactly(size))
    assert reply.node_id == node.t.node_id
    return reader, writer


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True once the other end closes the connection (EOF or reset), within the bound."""
    async with asyncio.timeout(TIMEOUT):
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
    return True


# --------------------------------------------------------------------------
# Exchange


async def test_two_transports_exchange_messages(make_node):
    nodes = await mesh(make_node, "a", "b")
    a, b = nodes["a"], nodes["b"]
    assert a.t.port and b.t.port and a.t.port != b.t.port
    a.t.send(vote("a", "b"))
    await b.inbox.wait_for_message(vote("a", "b"))
    reply = RequestVoteResponse(term=1, src="b", dst="a", granted=True)
    b.t.send(reply)
    await a.inbox.wait_for_message(reply)
    assert a.t.is_connected("b") and b.t.is_connected("a")


async def test_three_transports_all_pairs(make_node):
    nodes = await mesh(make_node, "n1", "n2", "n3")
    sent = []
    for src in nodes:
        for dst in nodes:
            if src != dst:
                msg = TimeoutNow(term=len(sent), src=src, dst=dst)
                sent.append(msg)
                nodes[src].t.send(msg)
    for msg in sent:
        await nodes[msg.dst].inbox.wait_for_message(msg)


async def test_many_messages_arrive_in_order(make_node):
    nodes = await mesh(make_node, "a", "b")
    a, b = nodes["a"], nodes["b"]
    n = 2000
    for i in range(n):
        entries = (Entry(1, i + 1, b"x" * 16),)
        a.t.send(AppendEntries(1, "a", "b", i, 1 if i else 0, entries, 0, i))
    await b.inbox.wait_for(lambda msgs: len(msgs) >= n)
    assert [m.seq for m in b.inbox.messages] == list(range(n))
    assert a.t.stats.sent == n and a.t.stats.dropped_queue_full == 0
    # Coalescing: all were queued before the writer ran, so a few writes carried them all.
    assert a.t.stats.batches <= 3


# --------------------------------------------------------------------------
# Handshake refusals


async def test_wrong_cluster_is_refused(make_node, caplog):
    caplog.set_level(logging.WARNING)
    b = await make_node("b")
    stranger = await make_node("a", cluster="other-cluster")
    b.t.set_peers({"a": ("127.0.0.1", 1)})  # "a" is a known name, but not of this cluster
    stranger.t.set_peers({"b": b.address})
    stranger.t.send(vote("a", "b"))
    await eventually(lambda: b.t.stats.refused >= 1)
    assert b.inbox.messages == []
    assert not stranger.t.is_connected("b")
    refusals = [r for r in caplog.records if r.name == "test.transport.b" and "refused" in r.msg]
    assert refusals, "the refusal is logged"
    assert "other-cluster" in refusals[0].getMessage()


async def test_unknown_node_is_refused(make_node):
    b = await make_node("b")
    b.t.set_peers({"a": ("127.0.0.1", 1)})
    intruder = await make_node("z")
    intruder.t.set_peers({"b": b.address})
    intruder.t.send(vote("z", "b"))
    await eventually(lambda: b.t.stats.refused >= 1)
    assert b.inbox.messages == []


async def test_dialer_refuses_the_wrong_node_at_an_address(make_node):
    a = await make_node("a")
    c = await make_node("c")
    c.t.set_peers({"a": a.address})
    # a believes "b" lives at c's address (a stale table): c is not b, so no traffic.
    a.t.set_peers({"b": c.address, "c": c.address})
    a.t.send(vote("a", "b"))
    await eventually(lambda: a.t.stats.refused >= 1)
    a.t.send(vote("a", "c"))
    await c.inbox.wait_for_message(vote("a", "c"))
    assert c.inbox.messages == [vote("a", "c")]


async def test_other_protocol_version_is_refused(make_node):
    b = await make_node("b")
    b.t.set_peers({"a": ("127.0.0.1", 1)})
    reader, writer = await raw_connect(b)
    try:
        hello = msgpack.packb(["swarmraft", PROTOCOL_VERSION + 1, CLUSTER, "a"])
        writer.write(frame(hello))
        assert await closed_by_peer(reader)
    finally:
        writer.close()


# --------------------------------------------------------------------------
# Bad peers: only their connection suffers


async def test_garbage_closes_that_connection_only(make_node):
    nodes = await mesh(make_node, "a", "b")
    a, b = nodes["a"], nodes["b"]
    a.t.send(vote("a", "b", term=1))
    await b.inbox.wait_for_message(vote("a", "b", term=1))
    reader, writer = await raw_connect(b)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)))
        assert await closed_by_peer(reader)
    finally:
        writer.close()
    assert b.t.stats.protocol_errors == 1
    a.t.send(vote("a", "b", term=2))
    await b.inbox.wait_for_message(vote("a", "b", term=2))
    assert a.t.stats.connects == 1, "a's connection was never disturbed"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(struct.pack(">I", 64 * 1024 * 1024), id="oversized"),
        pytest.param(frame(b"\xc1"), id="bad-msgpack"),
        pytest.param(frame(msgpack.packb([PROTOCOL_VERSION, 99, 1, "c", "b"])), id="unknown-type"),
        pytest.param(encode_frame(vote("a", "b")), id="lying-src"),
        pytest.param(encode_frame(vote("c", "a")), id="wrong-dst"),
    ],
)
async def test_bad_frame_after_handshake_closes_connection(make_node, bad):
    nodes = await mesh(make_node, "a", "b")
    a, b = nodes["a"], nodes["b"]
    b.t.set_peers({"a": a.address, "c": ("127.0.0.1", 1)})
    reader, writer = await raw_handshake(b, "c")
    try:
        writer.write(encode_frame(vote("c", "b", term=5)) + bad)
        assert await closed_by_peer(reader)
    finally:
        writer.close()
    assert vote("c", "b", term=5) in b.inbox.messages  # what came before the bad frame counts
    assert b.t.stats.protocol_errors == 1
    a.t.send(vote("a", "b", term=6))
    await b.inbox.wait_for_message(vote("a", "b", term=6))


async def test_silent_dialer_is_dropped_after_handshake_timeout(make_node):
    settings = TransportSettings(handshake_timeout=0.1)
    b = await make_node("b", settings=settings)
    reader, writer = await raw_connect(b)
    try:
        assert await closed_by_peer(reader)
    finally:
        writer.close()


async def test_failing_on_message_keeps_the_connection(make_node, caplog):
    calls = []

    def explode(msg: Message) -> None:
        calls.append(msg)
        raise RuntimeError("consumer bug")

    a = await make_node("a")
    b = await make_node("b", on_message=explode)
    a.t.set_peers({"b": b.address})
    b.t.set_peers({"a": a.address})
    a.t.send(vote("a", "b", 1))
    a.t.send(vote("a", "b", 2))
    await eventually(lambda: len(calls) == 2)
    assert a.t.stats.connects == 1


# --------------------------------------------------------------------------
# Dead, slow and restarted peers


async def unused_address() -> tuple[str, int]:
    """An address where nothing listens (bound, read, closed)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return ("127.0.0.1", port)


async def test_dead_peer_does_not_block_a_live_one(make_node):
    settings = TransportSettings(queue_max_messages=100, backoff_initial=0.01, backoff_max=0.05)
    a = await make_node("a", settings=settings)
    b = await make_node("b")
    a.t.set_peers({"b": b.address, "dead": await unused_address()})
    b.t.set_peers({"a": a.address})
    for burst in range(10):  # bursts of 50 fit b's queue of 100; "dead" gets 500 in all
        for i in range(burst * 50, burst * 50 + 50):
            a.t.send(vote("a", "dead", term=i))
            a.t.send(vote("a", "b", term=i))
        await b.inbox.wait_for(lambda msgs, n=burst * 50 + 50: len(msgs) == n)
    assert [m.term for m in b.inbox.messages] == list(range(500))
    # The dead peer's queue stayed bounded: its oldest messages were dropped
    # when it filled up, or all of them when a dial failed (stale by then).
    assert a.t.queued("dead") <= 100
    stats = a.t.stats
    assert stats.dropped_queue_full + stats.dropped_write_failed >= 400
    assert not a.t.is_connected("dead")


async def test_reconnect_after_peer_restarts(make_node):
    nodes = await mesh(make_node, "a", "b")
    a, b = nodes["a"], nodes["b"]
    a.t.send(vote("a", "b", term=1))
    await b.inbox.wait_for_message(vote("a", "b", term=1))
    port = b.t.port
    await b.t.stop()
    await eventually(lambda: not a.t.is_connected("b"))

    b2 = await make_node("b", port=port)
    b2.t.set_peers({"a": a.address})
    # Messages sent while b was down or reconnecting may be lost (Raft resends);
    # keep sending until one gets through.
    async with asyncio.timeout(TIMEOUT):
        term = 2
        while not b2.inbox.messages:
            a.t.send(vote("a", "b", term=term))
            term += 1
            await asyncio.sleep(0.02)
    assert a.t.stats.connects == 2
    b2.t.send(vote("b", "a", term=99))
    await a.inbox.wait_for_message(vote("b", "a", term=99))


# --------------------------------------------------------------------------
# Peer table changes


async def test_set_peers_at_runtime(make_node):
    nodes = await mesh(make_node, "a", "b")
    a, b = nodes["a"], nodes["b"]
    c = await make_node("c")
    c.t.set_peers({"a": a.address})
    a.t.send(vote("a", "c"))  # unknown to a for now: dropped, not an error
    assert a.t.stats.dropped_unknown_peer == 1
    a.t.set_peers({"b": b.address, "c": c.address})
    a.t.send(vote("a", "c", term=2))
    await c.inbox.wait_for_message(vote("a", "c", term=2))
    a.t.set_peers({"c": c.address})  # b leaves
    a.t.send(vote("a", "b"))
    assert a.t.stats.dropped_unknown_peer == 2
    assert set(a.t.peers) == {"c"}


async def test_address_change_redials(make_node):
    a = await make_node("a")
    b1 = await make_node("b")
    b2 = await make_node("b")  # the same node id moved to another address
    for b in (b1, b2):
        b.t.set_peers({"a": a.address})
    a.t.set_peers({"b": b1.address})
    a.t.send(vote("a", "b", 1))
    await b1.inbox.wait_for_message(vote("a", "b", 1))
    a.t.set_peers({"b": b2.address})
    a.t.send(vote("a", "b", 2))
    await b2.inbox.wait_for_message(vote("a", "b", 2))
    assert vote("a", "b", 2) not in b1.inbox.messages


# --------------------------------------------------------------------------
# Fault filter


async def test_outbound_block_drops_and_heal_restores(make_node):
    nodes = await mesh(make_node, "a", "b")
    a, b = nodes["a"], nodes["b"]
    a.t.fault_filter.block("b", direction="outbound")
    a.t.send(vote("a", "b", term=1))
    b.t.send(vote("b", "a", term=1))  # asymmetric: the other direction still works
    await a.inbox.wait_for_message(vote("b", "a", term=1))
    a.t.fault_filter.heal()
    a.t.send(vote("a", "b", term=2))
    await b.inbox.wait_for_message(vote("a", "b", term=2))
    assert b.inbox.messages == [vote("a", "b", term=2)]
    assert a.t.stats.dropped_fault == 1


async def test_inbound_block_drops_on_receive(make_node):
    nodes = await mesh(make_node, "a", "b", "c")
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    b.t.fault_filter.block("a", direction="inbound")
    a.t.send(vote("a", "b", term=1))
    c.t.send(vote("c", "b", term=1))
    await b.inbox.wait_for_message(vote("c", "b", term=1))
    b.t.fault_filter.clear("a")
    a.t.send(vote("a", "b", term=2))
    await b.inbox.wait_for_message(vote("a", "b", term=2))
    assert vote("a", "b", term=1) not in b.inbox.messages
    assert b.t.stats.dropped_fault == 1


async def test_partition_cuts_both_directions(make_node):
    nodes = await mesh(make_node, "a", "b", "c")
    # The partition {a} | {b, c}, as the node would install it on every side.
    nodes["a"].t.fault_filter.block("b", "c")
    for name in ("b", "c"):
        nodes[name].t.fault_filter.block("a")
    for src in nodes:
        for dst in nodes:
            if src != dst:
                nodes[src].t.send(TimeoutNow(1, src, dst))
    await nodes["c"].inbox.wait_for_message(TimeoutNow(1, "b", "c"))
    await nodes["b"].inbox.wait_for_message(TimeoutNow(1, "c", "b"))
    for node in nodes.values():
        node.t.fault_filter.heal()
    for src in nodes:
        for dst in nodes:
            if src != dst:
                nodes[src].t.send(TimeoutNow(2, src, dst))
    for dst, node in nodes.items():
        await node.inbox.wait_for(lambda msgs: sum(m.term == 2 for m in msgs) == 2)
        crossed = [m for m in node.inbox.messages if m.term == 1 and "a" in (m.src, dst)]
        assert crossed == [], f"{dst} heard across the partition"


async def test_delay_is_added(make_node):
    nodes = await mesh(make_node, "a", "b")
    a, b = nodes["a"], nodes["b"]
    a.t.fault_filter.set_rule("b", LinkFault(delay=0.2), direction="outbound")
    b.t.fault_filter.set_rule("a", LinkFault(delay=0.1), direction="inbound")
    start = time.monotonic()
    a.t.send(vote("a", "b"))
    await b.inbox.wait_for_message(vote("a", "b"))
    assert time.monotonic() - start >= 0.3


async def test_loss_probability(make_node):
    nodes = await mesh(make_node, "a", "b")
    a, b = nodes["a"], nodes["b"]
    a.t.fault_filter.set_rule("*", LinkFault(loss=0.5), direction="outbound")
    for i in range(400):
        a.t.send(vote("a", "b", term=i))
    a.t.fault_filter.heal()
    marker = TimeoutNow(1000, "a", "b")
    a.t.send(marker)
    await b.inbox.wait_for_message(marker)
    got = len(b.inbox.messages) - 1
    assert 120 < got < 280
    assert got + a.t.stats.dropped_fault == 400


def test_fault_filter_json_round_trip():
    f = FaultFilter()
    f.block("manager2", direction="outbound")
    f.block("manager3")
    f.set_rule("*", LinkFault(loss=0.1, delay=0.05), direction="inbound")
    data = json.loads(json.dumps(f.to_dict()))
    g = FaultFilter.from_dict(data)
    assert g == f
    assert g.rule("inbound", "manager9") == LinkFault(loss=0.1, delay=0.05)
    assert g.rule("inbound", "manager3") == LinkFault(drop=True)
    assert g.rule("outbound", "manager1") is None
    assert FaultFilter.from_dict({}) == FaultFilter()
    for bad in ({"sideways": {}}, {"inbound": {"x": {"loss": 2}}}, {"inbound": {"x": {"y": 1}}}):
        with pytest.raises(ValueError):
            FaultFilter.from_dict(bad)


def test_fault_filter_decide():
    rng = random.Random(1)
    f = FaultFilter()
    assert f.decide("outbound", "x", rng) == 0.0
    f.block("x", direction="inbound")
    assert f.decide("inbound", "x", rng) is None
    assert f.decide("outbound", "x", rng) == 0.0
    f.set_rule("x", LinkFault(delay=0.5), direction="outbound")
    assert f.decide("outbound", "x", rng) == 0.5


# --------------------------------------------------------------------------
# Lifecycle


async def test_stop_leaves_no_task_behind(make_node):
    before = asyncio.all_tasks()
    nodes = await mesh(make_node, "a", "b")
    nodes["a"].t.send(vote("a", "b"))
    nodes["a"].t.fault_filter.set_rule("b", LinkFault(delay=10), direction="outbound")
    nodes["a"].t.send(vote("a", "b", term=2))  # a pending delayed delivery
    await nodes["b"].inbox.wait_for_message(vote("a", "b"))
    for node in nodes.values():
        await node.t.stop()
        await node.t.stop()  # idempotent
    assert asyncio.all_tasks() == before
    nodes["a"].t.send(vote("a", "b", term=3))  # after stop: dropped, no error


async def test_unencodable_message_is_our_error(make_node):
    nodes = await mesh(make_node, "a", "b")
    with pytest.raises(LocalProtocolError):
        nodes["a"].t.send(TimeoutNow(term=-(2**70), src="a", dst="b"))


async def test_stop_right_after_start_and_set_peers():
    before = asyncio.all_tasks()
    t = Transport("a", CLUSTER, peers={"b": ("127.0.0.1", 1)}, settings=FAST)
    try:
        await t.start()
        t.set_peers({"b": ("127.0.0.1", 1), "c": ("127.0.0.1", 2)})
        t.send(vote("a", "c"))
    finally:
        await t.stop()
    assert asyncio.all_tasks() == before
    with pytest.raises(RuntimeError):
        await t.start()
