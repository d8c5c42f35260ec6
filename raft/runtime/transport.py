"""TCP transport: moves Raft messages between nodes over asyncio streams.

Theory of operation
-------------------
Connections are one-way.  Each node *dials* every peer it has something to
say to and only ever writes on that connection; what it *accepts* it only
reads.  So for every ordered pair (A, B) there is one connection A -> B,
owned by A's writer task for B, and the reverse traffic uses B's own dial.
This keeps each socket's life simple (one writer, one reader) and lets a
dead or slow peer hurt nobody but itself.

Handshake.  Both ends send a `Hello` (protocol version, cluster id, node
id) as their first frame: the dialer first, the acceptor answers only if it
accepts.  The acceptor refuses a peer from another cluster, an unknown node
id or another protocol version; the dialer refuses an acceptor that is not
the node it meant to reach (a stale address, a port reused by another
cluster).  A refusal closes the connection and logs one line.

Mutual TLS (optional, `raft.runtime.tls`).  With ``tls`` set, every connection runs
inside TLS: the acceptor demands a client certificate, and both ends accept
only certificates signed by the cluster's CA.  The `Hello` exchange then
happens inside the encrypted channel, and each end also checks the other's
certificate against its `Hello`: the certificate's CN must be the node id
it claims, its role a manager's, its organization our cluster.  A mismatch
is a refusal like any other, decided before a single Raft message is read.
Without ``tls`` the transport is plain TCP (tests, and clusters created
before certificates existed).

Both ends connect plain TCP and then run the TLS handshake themselves
(``StreamWriter.start_tls``), inside the same handshake timeout as the
`Hello`: the acceptor first sends one plain byte, ``TLS_GO``, and starts TLS
in the same step, and the dialer starts TLS only once it has read that byte,
so its ClientHello can never arrive before the acceptor listens for TLS
(`Handshake.accept_tls` says why).  Letting ``start_server(ssl=...)`` do it would be shorter, but a
handshake that fails there (no client certificate, a foreign CA, an expired
certificate, plain TCP talking to us) never reaches our code: asyncio drops
it without a word.  Doing it ourselves lets us count it
(``stats.tls_failures``) and log why, in OpenSSL's words
(``PEER_DID_NOT_RETURN_A_CERTIFICATE``).  A handshake that *times out* is
not a TLS failure: the peer is slow or stopped, and is treated like any
peer we cannot reach.  asyncio's TLS hangs up without sending an alert when
it refuses a certificate, so the refused side usually learns only that the
connection closed: during the handshake (counted as a TLS failure), or, with
TLS 1.3, where the server checks the client's certificate after the client
has finished, right after it, before the acceptor's `Hello` (counted as a
refusal; the acceptor's log says which it was).

Handshake warnings are rate-limited.  A peer that redials every 50 ms with
a certificate we refuse would otherwise write twenty lines a second; each
remote and reason gets at most one line per
``TransportSettings.warning_interval``, and the next line says how many
were held back.  The counters in `TransportStats` miss none.

Outbound path, per peer::

    send(msg) -> fault filter -> encode_frame -> [bounded queue] -> writer task -> socket

``send`` never blocks and never waits for the network: it encodes the
message (so an unencodable message fails in the caller, where the bug is)
and appends the frame to the destination's queue.  The queue is bounded in
messages and bytes and **drops the oldest** frame when full.  Raft tolerates
loss anywhere, and newer messages supersede older ones: a newer heartbeat
carries a newer commit index, an older vote response belongs to a term that
is over, and a leader re-sends whatever a follower misses from next_index.
Dropping the newest instead would keep the stale traffic and throw away the
state that matters.  The writer task dials (with exponential backoff and
jitter after a failure), then repeatedly takes *everything* queued and hands
it to one ``writelines()`` + ``drain()``: under load, many messages share one
system call.  When nothing is queued and the socket's buffer is empty,
``send`` writes the frame itself (no wait for the writer task's turn: one
event-loop iteration less on every hop of a commit).  A frame whose write
fails is lost, like a packet.

Inbound path, per accepted connection: read chunks, cut them into frames
with `FrameDecoder`, decode, check that ``src`` is the peer that shook hands
and ``dst`` is us, apply the inbound fault filter, call ``on_message``.  Any
`RemoteProtocolError` (malformed or oversized frame, lying ``src``) closes
that connection only and is logged; the node keeps running.

Dead links.  A real network fails without a word: packets vanish, no RST
comes, the connection stays "established" while the send buffer fills, and
one direction may fail while the other works.  TCP alone would notice after
its retransmissions give up, a quarter of an hour later.  Two deadlines do
better:

* the transport's own (``TransportSettings.silence_timeout``, the node's
  election timeout): Raft is request and response -- every AppendEntries,
  heartbeat or vote request gets an answer, and a follower's answers are
  followed by its leader's next heartbeat -- so a peer we *wrote to* that
  has sent us no byte since, on its own connection, for that long is cut
  off in one direction or the other -- or on a slow, lossy path.  The
  watchdog then dials the peer anew *beside* the silent connection and
  switches to the new one only once it has shaken hands
  (``stats.silences`` counts the silences, ``stats.silent_links`` the
  connections replaced): a lossy link is never made worse by closing it,
  a dial across a dead path simply fails (the kernel's deadline below ends
  the old connection), and the first dial after the path heals gives a
  fresh, empty connection instead of a backlog of stale frames.  We replace
  only what we own; the peer, if it wrote to us in vain, replaces its own.
  A peer we have not written to is never suspected.
* the kernel's, set on every Raft socket by `raft.runtime.links.tune_socket`:
  ``TCP_USER_TIMEOUT`` (data unacknowledged for that long ends the
  connection) and keepalive, for the accepted side, which never writes and
  would otherwise keep a half-open connection from a vanished dialer.

Neither hides anything from Raft: nothing here answers on a peer's behalf or
counts a connection as a sign of life.  A leader's check-quorum (dissertation
§6.2) counts only the answers its core receives, so a peer behind a dead
link stops counting as soon as its answers stop, whatever the sockets say.

A blocked peer blocks only itself.  Each peer has its own queue and its own
writer task; ``send`` never awaits, and a writer stuck in ``drain()`` on a
full socket buffer holds up nothing but its own queue, which drops its
oldest frames (``stats.dropped_queue_full``) until the watchdog closes the
connection.

`FaultFilter` is the network's misbehaviour on demand: per peer and per
direction it can cut the link, lose a fraction of messages or delay them.
Rules apply on both send (outbound) and receive (inbound), so when both
sides of a partition carry rules the cut holds in both directions even for
messages already in flight.  It is plain data with `to_dict`/`from_dict` so
a node can persist it and keep its partition across a restart.

Ownership.  Every task (one writer per peer, one reader per accepted
connection) is a child of one `asyncio.TaskGroup` run by a supervisor task;
delayed deliveries are tracked timer handles.  ``stop()`` closes the
listening socket, cancels the supervisor (which cancels and awaits every
child; each closes its own socket on the way out) and cancels the timers.

Where the parts live: the handshake (dial, greet, certificate checks,
rate-limited warnings) in `raft.runtime.handshake`; settings, counters and
the per-peer queue in `raft.runtime.links`; `FaultFilter` in
`raft.runtime.faults` (re-exported here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from raft.core.messages import Message, NodeId
from raft.runtime.codec import FrameDecoder, RemoteProtocolError, decode_message, encode_frame
from raft.runtime.faults import FaultFilter, LinkFault
from raft.runtime.handshake import Handshake, HandshakeError, read_hello
from raft.runtime.links import Outbox, Peer, TransportSettings, TransportStats, tune_socket
from raft.runtime.tls import TLSFiles

__all__ = [
    "FaultFilter",
    "LinkFault",
    "Transport",
    "TransportSettings",
    "TransportStats",
]

Address = tuple[str, int]


# --------------------------------------------------------------------------
# The transport


class Transport:
    """Sends and receives Raft messages for one node over TCP.

    ``on_message`` is called from the event loop for every message that
    arrives and passes the inbound fault filter; it must not block.
    """

    def __init__(
        self,
        node_id: NodeId,
        cluster_id: str,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        peers: Mapping[NodeId, Address] | None = None,
        on_message: Callable[[Message], None] | None = None,
        fault_filter: FaultFilter | None = None,
        logger: logging.Logger | None = None,
        *,
        settings: TransportSettings | None = None,
        rng: random.Random | None = None,
        tls: TLSFiles | None = None,
    ) -> None:
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.listen_host = listen_host
        self.fault_filter = fault_filter if fault_filter is not None else FaultFilter()
        self.settings = settings or TransportSettings()
        self.stats = TransportStats()
        self._listen_port = listen_port
        self._on_message = on_message or (lambda msg: None)
        self._log = logger or logging.getLogger("raft.runtime.transport")
        # Only used for jitter and fault loss; pass a seeded one for reproducible runs.
        self._rng = rng or random.Random()
        self._peers: dict[NodeId, Peer] = {}
        self._initial_peers = dict(peers or {})
        #: Handshaken inbound connections by peer, and every accepted one.
        self._inbound: dict[NodeId, asyncio.StreamWriter] = {}
        self._accepted: set[asyncio.StreamWriter] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._server: asyncio.Server | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._stopping = False
        self.port: int = 0
        self.tls = tls
        self._handshake = Handshake(node_id, cluster_id, self.settings, self.stats, self._log, tls)

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Start the writer tasks and listen; ``self.port`` is then the bound port.

        A transport runs once: after `stop`, make a new one.
        """
        if self._supervisor is not None:
            raise RuntimeError("transport already started")
        ready = asyncio.Event()
        self._supervisor = asyncio.create_task(
            self._supervise(ready), name=f"transport-{self.node_id}"
        )
        await ready.wait()
        try:
            # Plain TCP even with TLS: `_serve` runs the TLS handshake itself.
            self._server = await asyncio.start_server(
                self._on_accept, self.listen_host, self._listen_port
            )
        except BaseException:
            await self.stop()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        self._log.debug("%s: listening on %s:%d", self.node_id, self.listen_host, self.port)

    async def stop(self, timeout: float = 5.0) -> None:
        """Close every socket and cancel every task; idempotent.

        Order: stop accepting, cancel pending delayed deliveries, then cancel
        the task group (each task closes its own connection while unwinding).
        """
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._supervisor is not None:
            self._supervisor.cancel()
            # asyncio.wait, unlike awaiting the task, does not mistake the
            # supervisor's cancellation for our own (stop() itself being cancelled).
            _, pending = await asyncio.wait({self._supervisor}, timeout=timeout)
            if pending:
                self._log.error("%s: transport tasks did not stop in %ss", self.node_id, timeout)
        for writer in self._accepted:  # accepted, but its task never got to run
            writer.transport.abort()
        self._accepted.clear()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._server.wait_closed()
        self._server = None
        self._group = None
        self._peers.clear()
        self._inbound.clear()

    async def _supervise(self, ready: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            self.set_peers(self._initial_peers)
            if self.settings.silence_timeout is not None:
                self._spawn("silence-watchdog", self._watch_silence, self.settings.silence_timeout)
            ready.set()
            await asyncio.Future()  # run until cancelled by stop()

    def _spawn(self, name: str, fn: Callable[..., Any], *args: Any) -> asyncio.Task[None]:
        """Start ``fn(*args)`` as a child of the task group; unexpected errors are logged.

        Without the guard, one buggy connection handler would make the task
        group cancel every other task of the transport.  The coroutine is only
        created once the task runs, so a task cancelled before its first step
        leaves no never-awaited coroutine behind.
        """
        assert self._group is not None, "transport not started"

        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception:
                self._log.exception("%s: task %s failed", self.node_id, name)

        return self._group.create_task(guarded(), name=name)

    # -- peers -------------------------------------------------------------

    def set_peers(self, peers: Mapping[NodeId, Address]) -> None:
        """Replace the address table (membership change).  Our own id is ignored.

        New peers get a writer; removed peers lose theirs, their queue and
        their inbound connection; a peer whose address changed is redialled.
        """
        wanted = {p: (str(a[0]), int(a[1])) for p, a in peers.items() if p != self.node_id}
        if self._group is None or self._stopping:  # not running: remembered for start()
            self._initial_peers = dict(wanted)
            return
        for peer_id in list(self._peers):
            if peer_id not in wanted:
                peer = self._peers.pop(peer_id)
                if peer.task is not None:
                    peer.task.cancel()
                peer.outbox.clear()
                inbound = self._inbound.pop(peer_id, None)
                if inbound is not None:
                    inbound.transport.abort()
        for peer_id, address in wanted.items():
            peer = self._peers.get(peer_id)
            if peer is None:
                peer = Peer(
                    peer_id,
                    address,
                    Outbox(self.settings.queue_max_messages, self.settings.queue_max_bytes),
                )
                self._peers[peer_id] = peer
                peer.task = self._spawn(f"writer-{peer_id}", self._run_writer, peer)
            elif peer.address != address:
                peer.address = address
                if peer.writer is not None:  # the writer notices and redials
                    peer.writer.transport.abort()
        self._initial_peers = dict(wanted)

    @property
    def peers(self) -> dict[NodeId, Address]:
        """The current address table."""
        if self._group is None:
            return dict(self._initial_peers)
        return {p: peer.address for p, peer in self._peers.items()}

    def is_connected(self, peer_id: NodeId) -> bool:
        """Whether we hold a handshaken outbound connection to ``peer_id``."""
        peer = self._peers.get(peer_id)
        return peer is not None and peer.connection_alive()

    def queued(self, peer_id: NodeId) -> int:
        """Frames waiting in ``peer_id``'s outbound queue."""
        peer = self._peers.get(peer_id)
        return len(peer.outbox) if peer is not None else 0

    def unsent_bytes(self, peer_id: NodeId) -> int:
        """Bytes waiting for ``peer_id`` in its queue and its connection's buffer.

        Not counting what the kernel holds: more than zero in the connection's
        buffer means the kernel's send buffer is full, a blocked link.
        """
        peer = self._peers.get(peer_id)
        if peer is None:
            return 0
        writer = peer.writer
        in_socket = writer.transport.get_write_buffer_size() if writer is not None else 0
        return peer.outbox.bytes + in_socket

    # -- sending -----------------------------------------------------------

    def send(self, msg: Message) -> None:
        """Queue ``msg`` for ``msg.dst``; returns at once, never blocks.

        Raises `raft.runtime.codec.LocalProtocolError` if the message cannot be encoded
        (a bug here, not a network condition).  Everything else that can go
        wrong, an unknown destination included, is a silent loss counted in
        `stats`: Raft retries.
        """
        peer = self._peers.get(msg.dst)
        if peer is None:
            self.stats.dropped_unknown_peer += 1
            self._log.debug("%s: no address for %s, dropped %s", self.node_id, msg.dst, msg)
            return
        delay = self.fault_filter.decide("outbound", msg.dst, self._rng)
        if delay is None:
            self.stats.dropped_fault += 1
            return
        data = encode_frame(msg, self.settings.max_frame_size)
        if delay > 0:
            self._later(delay, self._enqueue, msg.dst, data)
        else:
            self._enqueue(msg.dst, data)

    def _enqueue(self, peer_id: NodeId, data: bytes) -> None:
        peer = self._peers.get(peer_id)
        if peer is None:  # removed while the frame was delayed
            self.stats.dropped_unknown_peer += 1
            return
        writer = peer.writer
        if (
            not peer.outbox
            and writer is not None
            and peer.connection_alive()
            and not writer.transport.get_write_buffer_size()
        ):
            # Nothing queued and the socket keeps up: write now.  Waking the
            # writer task would cost a trip round the event loop on every
            # message of the commit path (leader -> follower -> leader).  The
            # order holds: frames in the queue are never overtaken, and what
            # the writer task took is already in the socket's buffer.
            try:
                writer.write(data)
            except (OSError, RuntimeError) as exc:  # RuntimeError: write after close
                self._log.info("%s: lost connection to %s: %s", self.node_id, peer.node_id, exc)
                self._drop_connection(peer)  # the writer task redials for the queue
            else:
                self.stats.sent += 1
                self.stats.batches += 1
                if peer.unanswered_since is None:
                    peer.unanswered_since = asyncio.get_running_loop().time()
                return
        self.stats.dropped_queue_full += peer.outbox.put(data)

    def _later(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback`` after ``delay`` seconds, tracked so `stop` can cancel it."""
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            callback(*args)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def _run_writer(self, peer: Peer) -> None:
        """The one task that writes to ``peer``: dial, then flush the queue in batches."""
        try:
            while True:
                await peer.outbox.ready.wait()
                if peer.connection_alive():
                    writer = peer.writer
                    assert writer is not None
                else:
                    self._drop_connection(peer)
                    writer = await self._connect_with_backoff(peer)
                batch = peer.outbox.take_all()
                if peer.unanswered_since is None:
                    peer.unanswered_since = asyncio.get_running_loop().time()
                try:
                    writer.writelines(batch)
                    await writer.drain()
                except (OSError, RuntimeError) as exc:  # RuntimeError: write after close
                    self.stats.dropped_write_failed += len(batch)
                    self._log.info("%s: lost connection to %s: %s", self.node_id, peer.node_id, exc)
                    self._drop_connection(peer)
                else:
                    self.stats.sent += len(batch)
                    self.stats.batches += 1
        finally:
            self._drop_connection(peer)

    def _drop_connection(self, peer: Peer) -> None:
        if peer.writer is not None:
            peer.writer.transport.abort()
        peer.reader = peer.writer = None
        peer.unanswered_since = None

    async def _watch_silence(self, timeout: float) -> None:
        """Redial peers that stopped answering ("Dead links"), one probe each at a time."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(timeout / 4)  # a period: the check below is the condition
            now = loop.time()
            for peer in self._peers.values():
                since = peer.unanswered_since
                if since is None or now - since <= timeout or peer.writer is None:
                    continue
                if peer.noticed != since:  # once per silence, however many probes it takes
                    peer.noticed = since
                    self.stats.silences += 1
                    self._log.info(
                        "%s: no word from %s for %.1fs after writing to it: dialling it anew",
                        self.node_id, peer.node_id, now - since,
                    )  # fmt: skip
                if peer.probe is None or peer.probe.done():
                    peer.probe = self._spawn(f"probe-{peer.node_id}", self._probe, peer)

    async def _probe(self, peer: Peer) -> None:
        """Dial ``peer`` anew beside the silent connection; swap only if it works.

        A link that is merely slow or lossy (TCP resending, late) must not be
        made worse: closing it first would throw away what it carries and
        leave the peer unreachable while a new connection's handshake fights
        the same loss.  So the old connection stays until a new one has shaken
        hands; across a dead path the dial fails and the old one is left to
        the kernel's ``TCP_USER_TIMEOUT``, and the next probe, once the path
        is back, gives a clean connection.
        """
        old = peer.writer
        try:
            reader, writer = await self._handshake.dial(peer.node_id, peer.address)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, HandshakeError,
                RemoteProtocolError) as exc:  # fmt: skip
            self._log.debug("%s: probe of silent %s failed: %r", self.node_id, peer.node_id, exc)
            return
        if peer.writer is not old or self._peers.get(peer.node_id) is not peer:
            writer.transport.abort()  # the writer task redialled meanwhile, or the peer left
            return
        self.stats.silent_links += 1
        self._log.info("%s: switched to a new connection to %s", self.node_id, peer.node_id)
        self._drop_connection(peer)  # the writer task's drain, if blocked, returns now
        peer.reader, peer.writer = reader, writer

    async def _connect_with_backoff(self, peer: Peer) -> asyncio.StreamWriter:
        """Dial until a handshake succeeds, backing off exponentially with jitter."""
        delay = self.settings.backoff_initial
        failures = 0
        while True:
            host, port = peer.address  # set_peers may move it between tries
            remote = f"{host}:{port}"
            try:
                reader, writer = await self._handshake.dial(peer.node_id, peer.address)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                failures += 1
                self._drop_stale(peer)
                log = self._log.info if failures == 1 else self._log.debug
                log("%s: cannot reach %s at %s: %s", self.node_id, peer.node_id, remote,
                    exc or type(exc).__name__)  # fmt: skip
            except HandshakeError as exc:
                failures += 1
                self.stats.tls_failures += 1
                self._drop_stale(peer)
                self._handshake.warn(
                    remote, exc.reason, "%s: TLS handshake with %s at %s failed: %s",
                    self.node_id, peer.node_id, remote, exc.reason,
                )  # fmt: skip
            except RemoteProtocolError as exc:
                failures += 1
                self.stats.refused += 1
                self._handshake.warn(
                    remote, str(exc), "%s: handshake with %s at %s refused: %s",
                    self.node_id, peer.node_id, remote, exc,
                )  # fmt: skip
            else:
                self.stats.connects += 1
                self._log.info("%s: connected to %s", self.node_id, peer.node_id)
                peer.reader, peer.writer = reader, writer
                return writer
            await asyncio.sleep(self._rng.uniform(delay / 2, delay))  # backoff, not a condition
            delay = min(delay * 2, self.settings.backoff_max)

    def _drop_stale(self, peer: Peer) -> None:
        """Forget what waits for a peer we cannot talk to.

        It is stale by the time the peer answers (old votes, appends the
        leader will resend): let the peer be greeted by what Raft sends next.
        """
        self.stats.dropped_write_failed += len(peer.outbox)
        peer.outbox.clear()

    # -- receiving ---------------------------------------------------------

    def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, so asyncio starts no task of its own: ours is owned by the group.
        if self._group is None or self._stopping:
            writer.transport.abort()
            return
        tune_socket(writer.get_extra_info("socket"), self.settings)
        if self._handshake.server_ssl is not None:
            # Read nothing until `_serve` starts TLS: bytes read now would land
            # in the plain stream's buffer, out of TLS's reach.  (We run inside
            # connection_made, before asyncio first reads; uvloop starts
            # reading anyway, which is why a well-behaved dialer waits for
            # `Handshake.accept_tls`'s byte before its ClientHello.)
            writer.transport.pause_reading()
        # Tracked apart from the task, which may be cancelled before it first runs.
        self._accepted.add(writer)
        self._spawn("inbound", self._serve, reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Handshake with one dialer, then deliver its messages until it goes away."""
        host, port = (writer.get_extra_info("peername") or ("?", "?"))[:2]
        where = f"{host}:{port}"
        peer_id: NodeId | None = None
        shake = self._handshake
        try:
            async with asyncio.timeout(self.settings.handshake_timeout):
                if shake.server_ssl is not None:
                    await shake.accept_tls(writer)
                hello = await read_hello(reader)
            refusal = shake.refusal(hello, self._peers) or shake.certificate_refusal(
                writer, hello.node_id
            )
            if refusal:
                self.stats.refused += 1
                self._handshake.warn(host, refusal, "%s: refused %s from %s: %s", self.node_id,
                                     hello.node_id, where, refusal)  # fmt: skip
                return
            peer_id = hello.node_id
            writer.write(shake.hello_frame)
            await writer.drain()
            # A peer that redials leaves its old connection to end by itself
            # (EOF or error): aborting it could lose messages still in flight
            # on it, and a stale address table elsewhere may make two dialers
            # present the same id.
            self._inbound[peer_id] = writer
            self.stats.accepts += 1
            await self._read_messages(reader, peer_id)
        except HandshakeError as exc:
            self.stats.tls_failures += 1
            self._handshake.warn(host, exc.reason, "%s: TLS handshake from %s failed: %s",
                                 self.node_id, where, exc.reason)  # fmt: skip
        except RemoteProtocolError as exc:
            self.stats.protocol_errors += 1
            if peer_id is None:  # a bad handshake, perhaps one of many: rate-limited
                self._handshake.warn(host, str(exc), "%s: closing connection from %s (%s): %s",
                                     self.node_id, "unidentified peer", where, exc)  # fmt: skip
            else:
                self._log.warning("%s: closing connection from %s (%s): %s", self.node_id,
                                  peer_id, where, exc)  # fmt: skip
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self._log.debug("%s: inbound connection from %s ended: %r", self.node_id, where, exc)
        finally:
            writer.transport.abort()
            self._accepted.discard(writer)
            if peer_id is not None and self._inbound.get(peer_id) is writer:
                del self._inbound[peer_id]

    async def _read_messages(self, reader: asyncio.StreamReader, peer_id: NodeId) -> None:
        decoder = FrameDecoder(self.settings.max_frame_size)
        chunk = self.settings.read_chunk
        while True:
            data = await reader.read(chunk)
            if not data:
                return
            peer = self._peers.get(peer_id)
            if peer is not None:
                peer.unanswered_since = None  # any byte from it: the path works both ways
            for payload in decoder.feed(data):
                msg = decode_message(payload)
                if msg.src != peer_id or msg.dst != self.node_id:
                    raise RemoteProtocolError(
                        f"{type(msg).__name__} from {msg.src!r} to {msg.dst!r} "
                        f"on {peer_id!r}'s connection to {self.node_id!r}"
                    )
                self._receive(msg)
            if decoder.error is not None:  # good frames came first, then a bad header
                raise decoder.error

    def _receive(self, msg: Message) -> None:
        delay = self.fault_filter.decide("inbound", msg.src, self._rng)
        if delay is None:
            self.stats.dropped_fault += 1
        elif delay > 0:
            self._later(delay, self._deliver, msg)
        else:
            self._deliver(msg)

    def _deliver(self, msg: Message) -> None:
        self.stats.received += 1
        try:
            self._on_message(msg)
        except Exception:  # the consumer's bug must not cost the peer its connection
            self._log.exception("%s: on_message failed for %s", self.node_id, msg)
