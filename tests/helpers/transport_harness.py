"""Shared harness for the transport tests (plain TCP and TLS): real sockets on
127.0.0.1, port 0, an inbox to wait on, and a factory whose transports are
all stopped when the test ends, pass or fail.  Every wait has a bound."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable

from raft.core.messages import Message, RequestVote
from raft.runtime.transport import Transport, TransportSettings

TIMEOUT = 5.0
CLUSTER = "test-cluster"
FAST = TransportSettings(backoff_initial=0.01, backoff_max=0.1, handshake_timeout=1.0)


class Inbox:
    """Collects what a transport delivers and lets a test wait for a condition on it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._changed = asyncio.Event()

    def __call__(self, msg: Message) -> None:
        self.messages.append(msg)
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[list[Message]], bool], timeout: float = TIMEOUT
    ) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.messages):
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_message(self, msg: Message, timeout: float = TIMEOUT) -> None:
        await self.wait_for(lambda msgs: msg in msgs, timeout)


async def eventually(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll a condition that has no event of its own (counters, socket state), bounded."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def vote(src: str, dst: str, term: int = 1) -> RequestVote:
    return RequestVote(term=term, src=src, dst=dst, last_log_index=0, last_log_term=0)


class Node:
    """A transport plus the inbox it delivers to."""

    def __init__(self, transport: Transport, inbox: Inbox) -> None:
        self.t = transport
        self.inbox = inbox

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.t.port)


async def transport_factory() -> AsyncIterator[Callable[..., asyncio.Future[Node]]]:
    """Start transports on port 0; every one is stopped when the test ends, pass or fail."""
    started: list[Transport] = []

    async def make(node_id: str, cluster: str = CLUSTER, **kwargs) -> Node:
        inbox = Inbox()
        kwargs.setdefault("settings", FAST)
        kwargs.setdefault("rng", random.Random(7))
        t = Transport(
            node_id,
            cluster,
            "127.0.0.1",
            kwargs.pop("port", 0),
            on_message=kwargs.pop("on_message", inbox),
            logger=logging.getLogger(f"test.transport.{node_id}"),
            **kwargs,
        )
        started.append(t)
        await t.start()
        return Node(t, inbox)

    try:
        yield make
    finally:
        for t in reversed(started):
            await t.stop()
