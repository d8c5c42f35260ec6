"""The transport's plain parts: its settings and counters, and what it keeps per peer.

`Outbox` is the bounded queue of frames waiting for one peer (it drops the
oldest when full: see `raft.runtime.transport` for why) and `Peer` the
outbound connection to it, owned by that peer's writer task.

`tune_socket` sets the kernel's own deadlines on every Raft socket (see
"Dead links" in `raft.runtime.transport`): TCP keepalive, so that an idle
connection to a vanished host is found dead, and ``TCP_USER_TIMEOUT``, so
that data the peer never acknowledges makes the kernel give up on the
connection instead of retransmitting for the default quarter of an hour.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from dataclasses import dataclass
from typing import Any

from raft.core.messages import NodeId
from raft.runtime.codec import DEFAULT_MAX_FRAME_SIZE

__all__ = ["Outbox", "Peer", "TransportSettings", "TransportStats", "tune_socket"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """Limits and timings; the defaults suit a cluster on one machine."""

    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    #: Per-peer outbound queue bounds; beyond either, the oldest frame is dropped.
    queue_max_messages: int = 4096
    queue_max_bytes: int = 64 * 1024 * 1024
    connect_timeout: float = 1.0
    handshake_timeout: float = 2.0
    #: Reconnect delay doubles from `backoff_initial` up to `backoff_max`;
    #: the actual wait is drawn uniformly from [delay/2, delay] (jitter).
    backoff_initial: float = 0.05
    #: Short, because peers are on one machine and a restarted manager must
    #: hear its leader again well within an election timeout.
    backoff_max: float = 0.25
    read_chunk: int = 256 * 1024
    #: At most one handshake warning (TLS failure, refusal) per remote and
    #: reason per this many seconds; a peer retrying every 50 ms must not
    #: flood the log.  The counters see every one.
    warning_interval: float = 10.0
    #: A peer we wrote to but have heard nothing from for this long has its
    #: outbound connection closed and redialled (None: never, the default, as
    #: only a request-and-response protocol may expect answers).  A Raft node
    #: sets its election timeout ("Dead links" in `raft.runtime.transport`).
    silence_timeout: float | None = None
    #: Kernel deadlines on every Raft socket (`tune_socket`): keepalive probes
    #: after this much idle time, this far apart, this many unanswered...
    keepalive_idle: float = 1.0
    keepalive_interval: float = 1.0
    keepalive_count: int = 3
    #: ...and at most this long for the peer to acknowledge data we sent
    #: (``TCP_USER_TIMEOUT``; probes included).  None leaves the kernel's own.
    user_timeout: float | None = 3.0


@dataclass(slots=True)
class TransportStats:
    """Counters for status pages and tests; never reset."""

    sent: int = 0  # frames written to a socket
    batches: int = 0  # writelines()+drain() calls that wrote them (coalescing: << sent)
    received: int = 0  # messages handed to on_message
    dropped_queue_full: int = 0
    dropped_fault: int = 0
    dropped_unknown_peer: int = 0
    dropped_write_failed: int = 0
    connects: int = 0  # successful outbound handshakes
    accepts: int = 0  # successful inbound handshakes
    refused: int = 0  # handshakes refused, either side
    tls_failures: int = 0  # TLS handshakes that failed (not timed out), either side
    protocol_errors: int = 0  # inbound connections closed for bad frames
    silences: int = 0  # peers found silent after we wrote to them (the watchdog dials anew)
    silent_links: int = 0  # silent connections replaced by a new one that shook hands


class Outbox:
    """A bounded FIFO of encoded frames that drops the oldest when full."""

    __slots__ = ("_frames", "_max_bytes", "_max_messages", "bytes", "ready")

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self._frames: collections.deque[bytes] = collections.deque()
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self.bytes = 0
        #: Set while frames are waiting: what the writer task sleeps on.
        self.ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, data: bytes) -> int:
        """Append one frame; return how many old frames were dropped to make room."""
        frames = self._frames
        frames.append(data)
        self.bytes += len(data)
        dropped = 0
        while len(frames) > 1 and (
            len(frames) > self._max_messages or self.bytes > self._max_bytes
        ):
            self.bytes -= len(frames.popleft())
            dropped += 1
        self.ready.set()
        return dropped

    def take_all(self) -> list[bytes]:
        """Everything queued, oldest first; leaves the outbox empty."""
        batch = list(self._frames)
        self._frames.clear()
        self.bytes = 0
        self.ready.clear()
        return batch

    def clear(self) -> None:
        self.take_all()


@dataclass(slots=True)
class Peer:
    node_id: NodeId
    address: Address
    outbox: Outbox
    task: asyncio.Task[None] | None = None
    #: The handshaken connection, if any.  We only write to it; the reader is
    #: kept to notice the acceptor hanging up (it never sends after its Hello).
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    #: Loop time of the first frame written since we last heard from the
    #: peer (None: nothing written since): how long our words go unanswered.
    unanswered_since: float | None = None
    #: The watchdog's dial beside a silent connection, while it runs.
    probe: asyncio.Task[None] | None = None
    #: The ``unanswered_since`` of the silence the watchdog last reported.
    noticed: float | None = None

    def connection_alive(self) -> bool:
        return (
            self.writer is not None
            and self.reader is not None
            and not self.writer.is_closing()
            and not self.reader.at_eof()
        )


def tune_socket(sock: Any, settings: TransportSettings) -> None:
    """Set TCP keepalive and ``TCP_USER_TIMEOUT`` on one Raft socket (module docstring).

    ``sock`` is what ``get_extra_info("socket")`` gives (None for a transport
    without one, a test's pipe say: nothing to do).  Options a platform lacks
    are skipped: they are a backstop, the transport's own deadline is the rule.
    """
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    options = [
        ("TCP_KEEPIDLE", max(1, round(settings.keepalive_idle))),
        ("TCP_KEEPINTVL", max(1, round(settings.keepalive_interval))),
        ("TCP_KEEPCNT", max(1, settings.keepalive_count)),
    ]
    if settings.user_timeout is not None:
        options.append(("TCP_USER_TIMEOUT", max(1, round(settings.user_timeout * 1000))))
    for name, value in options:
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
