"""The handshake that opens every connection between two nodes.

See `raft.runtime.transport`'s docstring for the protocol: both ends send a
`Hello` (protocol version, cluster id, node id), inside mutual TLS when the
cluster has certificates, and either end may refuse the other.  This module
holds one node's side of it (`Handshake`): dialing a peer, greeting a
dialer, checking certificates against claims, and the rate-limited warnings
a refusal earns.  The transport owns the connections; a `Handshake` only
opens them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Container, Hashable
from typing import Any

from raft.core.messages import NodeId
from raft.runtime.codec import (
    PROTOCOL_VERSION,
    Hello,
    RemoteProtocolError,
    decode_hello,
    encode_hello,
    frame,
)
from raft.runtime.links import TransportSettings, TransportStats, tune_socket
from raft.runtime.tls import FreshContexts, TLSFiles, peer_identity, peer_refusal

__all__ = ["TLS_GO", "Handshake", "HandshakeError", "WarningThrottle", "read_hello"]

Address = tuple[str, int]

#: A handshake is a few dozen bytes; anything much larger is not one.
_MAX_HELLO_SIZE = 4096

#: With TLS, the acceptor's first byte, sent in plain just before it starts TLS:
#: the dialer sends its ClientHello only after reading it (see `Handshake.accept_tls`).
TLS_GO = b"\x01"


class HandshakeError(Exception):
    """A TLS handshake that did not complete; ``reason`` says why, briefly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _tls_failure_reason(exc: BaseException) -> str:
    """Why a TLS handshake failed, in OpenSSL's words when it gave any.

    OpenSSL's short code is stable, so it names the cause in the log and
    keys the rate limit: ``PEER_DID_NOT_RETURN_A_CERTIFICATE``,
    ``WRONG_VERSION_NUMBER`` (plain TCP talking to TLS), an alert the peer
    sent (``TLSV1_ALERT_UNKNOWN_CA``).  For a certificate we refuse, OpenSSL's
    verdict on it follows (``certificate has expired``).
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{exc.reason} ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError)):
        # asyncio's TLS refuses a certificate by hanging up, alert-less.
        return "closed by the peer during the TLS handshake"
    return str(exc) or type(exc).__name__


class WarningThrottle:
    """At most one warning per key per ``interval`` seconds; counts those held back.

    A key is a remote and a reason: a second peer, or a new reason from the
    same one, still gets its own line at once.
    """

    #: Beyond this many keys, the ones quiet for an interval are forgotten,
    #: so a port scan from many addresses cannot grow the table for ever.
    MAX_KEYS = 1024

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        #: key -> (when its last line was written, lines held back since)
        self._keys: dict[Hashable, tuple[float, int]] = {}

    def admit(self, key: Hashable) -> int | None:
        """``None``: stay quiet.  Else write the line, saying this many were held back."""
        now = self._clock()
        last = self._keys.get(key)
        if last is not None and now - last[0] < self._interval:
            self._keys[key] = (last[0], last[1] + 1)
            return None
        if last is None and len(self._keys) >= self.MAX_KEYS:
            self._keys = {k: v for k, v in self._keys.items() if now - v[0] < self._interval}
        self._keys[key] = (now, 0)
        return last[1] if last is not None else 0


class Handshake:
    """One node's side of every handshake: dial, greet, check, warn."""

    def __init__(
        self,
        node_id: NodeId,
        cluster_id: str,
        settings: TransportSettings,
        stats: TransportStats,
        log: logging.Logger,
        tls: TLSFiles | None,
    ) -> None:
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.settings = settings
        self.stats = stats
        self.log = log
        self.tls = tls
        self.hello_frame = frame(encode_hello(Hello(PROTOCOL_VERSION, cluster_id, node_id)))
        # Built once, and again only when the files change (a renewed certificate,
        # a rotated root): new connections then use the new ones.
        self._server_ssl = FreshContexts(tls, TLSFiles.server_context) if tls else None
        self._client_ssl = FreshContexts(tls, TLSFiles.client_context) if tls else None
        self.warnings = WarningThrottle(settings.warning_interval)

    @property
    def server_ssl(self) -> ssl.SSLContext | None:
        """The context for the next accepted connection (None: plain TCP)."""
        return self._server_ssl.get() if self._server_ssl is not None else None

    async def start_tls(self, writer: asyncio.StreamWriter, ctx: ssl.SSLContext) -> None:
        """Run the TLS handshake on a connected stream (either side, as ``writer`` was made).

        Raises `HandshakeError` if it fails.  The caller bounds it with
        its handshake timeout, and a timeout stays a TimeoutError: a slow or
        stopped peer is not a TLS failure.  asyncio's own handshake timer is
        set longer than ours, as a backstop that never decides.
        """
        try:
            await writer.start_tls(ctx, ssl_handshake_timeout=2 * self.settings.handshake_timeout)
        except TimeoutError:
            raise
        except (OSError, asyncio.IncompleteReadError) as exc:  # ssl.SSLError is an OSError
            raise HandshakeError(_tls_failure_reason(exc)) from exc

    async def accept_tls(self, writer: asyncio.StreamWriter) -> None:
        """The acceptor's side of TLS: say "go" in plain, then start TLS at once.

        Why the byte: a ClientHello that arrives before ``start_tls`` lands in
        the plain stream's buffer, where TLS never sees it, and the handshake
        hangs until it times out (asyncio and uvloop alike).  Pausing reading
        until then is not enough everywhere: uvloop starts reading right after
        ``connection_made``, whatever the protocol asked.  So the dialer waits
        for this byte, and the acceptor writes it and installs TLS in one step
        of the event loop (nothing is awaited in between), so the ClientHello
        can only arrive once TLS is listening for it.
        """
        ctx = self.server_ssl  # the newest certificate files (`FreshContexts`)
        assert ctx is not None
        writer.write(TLS_GO)
        await self.start_tls(writer, ctx)

    def warn(self, remote: str, reason: str, msg: str, *args: Any) -> None:
        """Log a handshake warning about ``remote``, rate-limited by remote and reason."""
        held = self.warnings.admit((remote, reason))
        if held is None:
            return
        if held:
            msg += " (and %d more like it since the last report)"
            args += (held,)
        self.log.warning(msg, *args, stacklevel=2)  # the line names the caller

    def certificate_refusal(self, writer: asyncio.StreamWriter, claimed: NodeId) -> str | None:
        """With TLS: why the peer's certificate does not back its claim to be ``claimed``."""
        if self.tls is None:
            return None
        identity = peer_identity(writer.get_extra_info("ssl_object"))
        return peer_refusal(identity, claimed, self.cluster_id, self.tls.peer_role)

    async def dial(
        self, peer_id: NodeId, address: Address
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to ``peer_id`` at ``address`` and shake hands: TLS (if configured), then `Hello`.

        Raises OSError or TimeoutError if it cannot be reached in time,
        `HandshakeError` if TLS fails, `RemoteProtocolError` if either
        side refuses the other's `Hello` or certificate.
        """
        host, port = address
        async with asyncio.timeout(self.settings.connect_timeout):
            reader, writer = await asyncio.open_connection(host, port)
        tune_socket(writer.get_extra_info("socket"), self.settings)
        try:
            async with asyncio.timeout(self.settings.handshake_timeout):
                if self._client_ssl is not None:
                    # The acceptor is listening for TLS once it said so (`accept_tls`).
                    if await reader.readexactly(1) != TLS_GO:
                        raise RemoteProtocolError("it does not speak TLS first")
                    await self.start_tls(writer, self._client_ssl.get())
                writer.write(self.hello_frame)
                try:
                    await writer.drain()
                    hello = await read_hello(reader)
                except ssl.SSLError as exc:  # an alert: its TLS refused our certificate
                    raise HandshakeError(_tls_failure_reason(exc)) from exc
                except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
                    # It answered, then hung up without a word: it refused our
                    # Hello or (TLS 1.3 checks the client last) our certificate.
                    raise RemoteProtocolError(
                        "it closed the connection before its Hello; its log says why"
                    ) from exc
            if hello.cluster_id != self.cluster_id:
                raise RemoteProtocolError(f"it is in cluster {hello.cluster_id!r}")
            if hello.node_id != peer_id:
                raise RemoteProtocolError(f"it says it is {hello.node_id!r}")
            refusal = self.certificate_refusal(writer, peer_id)
            if refusal:
                raise RemoteProtocolError(refusal)
        except BaseException:
            writer.transport.abort()
            raise
        return reader, writer

    def refusal(self, hello: Hello, known: Container[NodeId]) -> str | None:
        """Why a dialer's `Hello` is refused (None: accepted)."""
        if hello.cluster_id != self.cluster_id:
            return f"cluster id {hello.cluster_id!r} is not ours ({self.cluster_id!r})"
        if hello.node_id not in known:
            return "not a known member of this cluster"
        return None


async def read_hello(reader: asyncio.StreamReader) -> Hello:
    """Read the first frame of a connection; it must be a `Hello`."""
    header = await reader.readexactly(4)
    size = int.from_bytes(header, "big")
    if not 0 < size <= _MAX_HELLO_SIZE:
        raise RemoteProtocolError(f"handshake frame of {size} bytes")
    return decode_hello(await reader.readexactly(size))
