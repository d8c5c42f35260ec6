"""TCP relays between nodes: a link a test can black-hole, one direction at a time, or
make slow and lossy, with no root and no kernel help.

The transport's connections are one-way (the dialer writes, the acceptor only
reads), so one `Relay` is one direction of one pair: node A reaches B through
the relay A->B, and B's messages to A travel through B->A.  `RelayMesh` puts
one relay on every ordered pair of a cluster.

A black hole is what a real network does when packets vanish: no RST, no FIN.
The relay stops reading (``pause_reading``), so the bytes pile up in the
kernel's buffers until the sender's send buffer is full and its writes
block; the connection stays half-open.  Connections made meanwhile are
accepted and held unread (a SYN that vanished, as near as a user-level relay
can get: the dialer's handshake times out instead of its connect).
`Relay.restore` lets everything flow again, backlog included.

A slow, lossy link emulates what TCP makes of lost packets: it loses no
byte, but a chunk it "loses" arrives one retransmission timeout later
(Linux's minimum, 200 ms, doubling if lost again), and everything behind it
waits (head-of-line blocking).  Every chunk is ``delay`` late.  Seeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket

Address = tuple[str, int]

#: Linux's minimum retransmission timeout: what one lost packet costs a TCP stream.
RTO = 0.2


class Relay:
    """One direction of one link (module docstring)."""

    def __init__(
        self, target: Address, *, delay: float = 0.0, loss: float = 0.0, seed: int = 0
    ) -> None:
        self.target = target
        self.delay = delay
        self.loss = loss
        self._rng = random.Random(seed)
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.address: Address = ("127.0.0.1", 0)

    @property
    def black_holed(self) -> bool:
        return not self._open.is_set()

    async def start(self) -> Address:
        # A small receive buffer (inherited by accepted sockets): a black hole
        # fills the sender's buffers sooner.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._accept, sock=sock)
        self.address = ("127.0.0.1", self._server.sockets[0].getsockname()[1])
        return self.address

    def black_hole(self) -> None:
        """From now on nothing crosses, in either direction of its connections."""
        self._open.clear()
        for t in list(self._transports):
            with contextlib.suppress(RuntimeError):
                t.pause_reading()  # type: ignore[attr-defined]

    def restore(self) -> None:
        """The path is back: held bytes and connections go on."""
        self._open.set()
        for t in list(self._transports):
            with contextlib.suppress(RuntimeError):
                t.resume_reading()  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for t in list(self._transports):
            t.abort()  # type: ignore[attr-defined]
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._track(writer.transport)
        ends: list[asyncio.StreamWriter] = [writer]
        try:
            await self._connect_and_pipe(reader, writer, ends)
        except asyncio.CancelledError:  # by stop(), which owns this task: end quietly
            pass  # (asyncio's server callback would log a cancelled handler as an error)
        finally:
            for w in ends:
                self._transports.discard(w.transport)
                w.transport.abort()
            self._tasks.discard(task)

    async def _connect_and_pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ends: list[asyncio.StreamWriter],
    ) -> None:
        try:
            await self._open.wait()  # a connection made inside a black hole is held
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            ends.append(up_writer)
            self._track(up_writer.transport)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pipe(reader, up_writer))
                tg.create_task(self._pipe(up_reader, writer))
        except* (OSError, EOFError):
            pass

    def _track(self, transport: asyncio.BaseTransport) -> None:
        self._transports.add(transport)
        if self.black_holed:
            transport.pause_reading()  # type: ignore[attr-defined]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction; a hole holds what was read, delay and loss make it late."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))  # the link's latency
                await self._open.wait()
                if not data:
                    raise EOFError
                writer.write(data)
                await writer.drain()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(deliver())
            last = 0.0
            while True:
                data = await reader.read(64 * 1024)
                await self._open.wait()
                due = loop.time() + self.delay
                rto = RTO
                while self.loss and self._rng.random() < self.loss:
                    due += rto  # lost: the sender retransmits after its timeout
                    rto *= 2
                last = max(last, due)  # TCP delivers in order: the rest waits
                queue.put_nowait((last, data))
                if not data:
                    return


class RelayMesh:
    """A relay on every ordered pair of nodes; each node gets its own address book."""

    def __init__(self, real: dict[str, Address], **relay_options: float) -> None:
        self.real = dict(real)
        self.relays = {
            (src, dst): Relay(real[dst], seed=i, **relay_options)  # type: ignore[arg-type]
            for i, (src, dst) in enumerate((s, d) for s in real for d in real if s != d)
        }

    async def start(self) -> None:
        for relay in self.relays.values():
            await relay.start()

    async def stop(self) -> None:
        for relay in self.relays.values():
            await relay.stop()

    def peers_of(self, node: str) -> dict[str, Address]:
        """``node``'s address book: its own real address, every other through a relay."""
        return {
            other: self.real[node] if other == node else self.relays[(node, other)].address
            for other in self.real
        }

    def cut(self, src: str, dst: str) -> None:
        """``dst`` stops hearing ``src`` (one direction only)."""
        self.relays[(src, dst)].black_hole()

    def heal(self) -> None:
        for relay in self.relays.values():
            relay.restore()
