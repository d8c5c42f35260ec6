"""Links that fail as real networks do, at the transport level (raft/runtime/transport.py,
"Dead links"): packets that vanish with no RST, a send buffer that fills.

The faults come from `relays.Relay`, a user-level TCP relay that stops reading
and forwarding on demand (no root needed).  Every wait is bounded, every
transport and relay stopped.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from relays import Relay
from transport_harness import Node, eventually, transport_factory, vote

from raft.core.messages import AppendEntries, Entry, Message, RequestVoteResponse
from raft.runtime.transport import TransportSettings

#: The watchdog's deadline in these tests (a node uses its election timeout).
SILENCE = 0.3
WATCHED = TransportSettings(
    backoff_initial=0.01, backoff_max=0.1, handshake_timeout=0.5, silence_timeout=SILENCE
)


@pytest.fixture
async def make_node() -> AsyncIterator[Callable[..., Any]]:
    async for make in transport_factory():
        yield make


@pytest.fixture
async def relays() -> AsyncIterator[list[Relay]]:
    """Relays the test starts; all stopped when it ends."""
    started: list[Relay] = []
    yield started
    for relay in started:
        await relay.stop()


async def relay_to(node: Node, started: list[Relay]) -> Relay:
    relay = Relay(node.address)
    await relay.start()
    started.append(relay)
    return relay


def answering(node_id: str, peer: Callable[[], Node]) -> Callable[[Message], None]:
    """An on_message that answers every request, as Raft does (votes here)."""

    def on_message(msg: Message) -> None:
        peer().inbox(msg)  # keep the inbox for the test
        if not isinstance(msg, RequestVoteResponse):
            me = peer()
            me.t.send(RequestVoteResponse(msg.term, node_id, msg.src, True))

    return on_message


async def test_a_silent_peer_is_noticed_and_redialled_when_the_path_is_back(make_node, relays):
    b_box: list[Node] = []
    a = await make_node("a", settings=WATCHED)
    b = await make_node("b", on_message=answering("b", lambda: b_box[0]))
    b_box.append(b)
    to_b = await relay_to(b, relays)
    a.t.set_peers({"b": to_b.address})
    b.t.set_peers({"a": a.address})
    term = 0

    async def heartbeat_until(cond: Callable[[], bool], timeout: float) -> None:
        """Send a request every 20 ms (as a leader does) until ``cond``, bounded."""
        nonlocal term
        async with asyncio.timeout(timeout):
            while not cond():
                term += 1
                a.t.send(vote("a", "b", term))
                await asyncio.sleep(0.02)

    await heartbeat_until(lambda: len(a.inbox.messages) >= 5, 5.0)  # answers come back
    assert a.t.stats.silent_links == 0  # a peer that answers is never suspected

    to_b.black_hole()
    cut_at = time.monotonic()
    await heartbeat_until(lambda: a.t.stats.silences >= 1, 5.0)
    noticed = time.monotonic() - cut_at
    # The deadline, plus at most one watchdog period (a quarter of it) and some slack.
    assert SILENCE < noticed < 2 * SILENCE + 0.2, noticed
    # Its probes cannot get through the hole (their handshakes time out), so
    # the silent connection is kept: on a merely lossy path it would recover.
    await heartbeat_until(lambda: time.monotonic() - cut_at > 3 * WATCHED.handshake_timeout, 5.0)
    assert a.t.stats.silent_links == 0 and a.t.stats.silences == 1

    to_b.restore()
    answered = len(a.inbox.messages)
    await heartbeat_until(lambda: a.t.stats.silent_links >= 1, 5.0)  # a probe got through
    await heartbeat_until(lambda: len(a.inbox.messages) > answered + 5, 5.0)
    assert a.t.is_connected("b")


async def test_every_raft_socket_has_kernel_deadlines(make_node):
    a = await make_node("a", settings=WATCHED)
    b = await make_node("b", settings=WATCHED)
    a.t.set_peers({"b": b.address})
    b.t.set_peers({"a": a.address})
    a.t.send(vote("a", "b"))
    await b.inbox.wait_for(lambda msgs: len(msgs) == 1)
    dialed = a.t._peers["b"].writer.get_extra_info("socket")
    accepted = b.t._inbound["a"].get_extra_info("socket")
    for sock in (dialed, accepted):
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 3000


async def test_a_blocked_peer_delays_nobody_else(make_node, relays):
    """b's link is a black hole and a's writer to it is stuck on a full socket
    buffer; every message to c still arrives at once."""
    settings = TransportSettings(queue_max_messages=64)  # no watchdog: b stays stuck
    a = await make_node("a", settings=settings)
    b = await make_node("b")
    c = await make_node("c")
    to_b = await relay_to(b, relays)
    a.t.set_peers({"b": to_b.address, "c": c.address})
    b.t.set_peers({"a": a.address})
    c.t.set_peers({"a": a.address})
    a.t.send(vote("a", "b"))
    await b.inbox.wait_for(lambda msgs: len(msgs) == 1)
    to_b.black_hole()
    big = tuple(Entry(1, i, b"x" * 60_000) for i in range(1, 5))
    for _ in range(200):  # ~48 MB offered; the queue keeps the newest 64 frames
        a.t.send(AppendEntries(1, "a", "b", 0, 0, big))
        await asyncio.sleep(0)
        if a.t._peers["b"].writer.transport.get_write_buffer_size():
            break
    await eventually(lambda: a.t._peers["b"].writer.transport.get_write_buffer_size() > 0)
    assert a.t.unsent_bytes("b") > 0

    latencies: list[float] = []
    for i in range(50):
        sent = time.monotonic()
        a.t.send(vote("a", "c", term=i))
        await c.inbox.wait_for(lambda msgs, n=i + 1: len(msgs) == n, timeout=1.0)
        latencies.append(time.monotonic() - sent)
        for _ in range(3):  # b's queue keeps filling: 150 frames for 64 places
            a.t.send(AppendEntries(1, "a", "b", 0, 0, big))
    assert [m.term for m in c.inbox.messages] == list(range(50))
    assert statistics.median(latencies) < 0.02, latencies
    assert a.t.unsent_bytes("b") > 0  # still stuck: the test measured what it meant to
    assert a.t.queued("b") == 64  # b's queue stayed bounded: it dropped, never blocked
    assert a.t.stats.dropped_queue_full > 0
