"""Mutual TLS for the Raft transport: ssl contexts and the peer-identity check.

Theory of operation
-------------------
Every server of a cluster holds a certificate signed by the cluster's own
root CA.  Its subject says who it is:

* CN (common name): the Raft node id, e.g. ``manager1``;
* OU (organizational unit): its role, e.g. ``swarm-manager``;
* O (organization): the cluster id.

TLS proves that the peer holds the private key of a certificate our CA
signed.  That is not yet enough: any holder of *a* certificate could claim
any node id in the protocol handshake (`raft.runtime.codec.Hello`).  So, once the
handshake frames are exchanged and before any Raft message is read or sent,
`peer_refusal` compares the certificate's subject with what the peer claims:
the CN must be the claimed node id, the OU the role we accept as a peer
(only managers take part in Raft) and the O our cluster id.  Host names
mean nothing here (every node is on 127.0.0.1), so ``check_hostname`` is
off and the CN check replaces it.

Certificates are renewed while the node runs (they expire, as Swarm's do,
and the root CA can be rotated), so the files change under a running node.
`FreshContexts` rebuilds a context when its files changed, so every *new*
connection shows the newest certificate and trusts the newest roots, while
connections already open carry on.  A half-written set of files (a key that
does not match its certificate for a moment) is not adopted: the previous
context stays until the files load together.

This module knows only file paths and subject fields; who issues the
certificates (the cluster supervisor, `cluster.security.pki`) is not its business.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the package costs ~9 MB of RSS: loaded only by `identity_of`
    from cryptography import x509

__all__ = [
    "MANAGER_ROLE",
    "FreshContexts",
    "PeerIdentity",
    "TLSFiles",
    "identity_of",
    "peer_identity",
    "peer_refusal",
]

#: The OU of a certificate that may take part in Raft.
MANAGER_ROLE = "swarm-manager"


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """Where one node's PEM files are; ``peer_role`` is the OU a peer must carry.

    ``password`` opens an encrypted key file (a manager's under autolock);
    it is held in memory only and never shown by ``repr``.  ``password_source``,
    when given, is asked instead each time a context is built: autolock may
    seal the key file while the node runs.
    """

    ca: Path
    cert: Path
    key: Path
    peer_role: str = MANAGER_ROLE
    password: bytes | None = field(default=None, repr=False)
    password_source: Callable[[], bytes | None] | None = field(
        default=None, repr=False, compare=False
    )

    def key_password(self) -> bytes | None:
        """The password of the key file now (None: it is in clear)."""
        return self.password_source() if self.password_source is not None else self.password

    @classmethod
    def in_dir(cls, keys: Path) -> TLSFiles:
        """The files of a node's ``keys`` directory: ca.crt, node.crt, node.key."""
        return cls(keys / "ca.crt", keys / "node.crt", keys / "node.key")

    @classmethod
    def from_config(cls, paths: Mapping[str, Any], password: bytes | None = None) -> TLSFiles:
        """From a config file's ``{"ca", "cert", "key"[, "peer_role"]}``; other keys ignored."""
        extra = {"peer_role": str(paths["peer_role"])} if "peer_role" in paths else {}
        ca, cert, key = (Path(paths[k]) for k in ("ca", "cert", "key"))
        return cls(ca, cert, key, password=password, **extra)

    def config(self) -> dict[str, str]:
        """The paths for a config file (never the password)."""
        return {"ca": str(self.ca), "cert": str(self.cert), "key": str(self.key)}

    def server_context(self) -> ssl.SSLContext:
        """For accepting: our certificate out, a client certificate required and checked."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(str(self.cert), str(self.key), password=self.key_password())
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """For dialling: the server's certificate checked against our CA only."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca))
        ctx.check_hostname = False  # peers are identified by CN after the handshake
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(str(self.cert), str(self.key), password=self.key_password())
        return ctx

    def signature(self) -> tuple[tuple[int, int], ...]:
        """What changes when any of the three files is replaced (mtime, size)."""
        out = []
        for path in (self.ca, self.cert, self.key):
            try:
                st = path.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((0, 0))
        return tuple(out)


_log = logging.getLogger("raft.runtime.tls")


class FreshContexts:
    """A context that follows its files: rebuilt when they change, kept when they don't.

    ``build`` makes a context from the files (`TLSFiles.server_context`, say).
    Each `get` stats the three files -- three system calls per new
    connection, far from the hot path of messages on open ones.  If the new
    files do not load (caught mid-replacement), the previous context is kept
    and the next `get` tries again.
    """

    def __init__(self, files: TLSFiles, build: Callable[[TLSFiles], ssl.SSLContext]) -> None:
        self.files = files
        self._build = build
        self._signature = files.signature()
        self._context = build(files)
        #: How many times a changed set of files was adopted (tests read it).
        self.reloads = 0

    def get(self) -> ssl.SSLContext:
        """The context for a new connection, from the newest files that load."""
        signature = self.files.signature()
        if signature != self._signature:
            try:
                context = self._build(self.files)
            except (OSError, ValueError, ssl.SSLError) as e:
                _log.debug("certificate files changed but do not load yet: %s", e)
            else:
                self._context, self._signature = context, signature
                self.reloads += 1
                _log.info("certificate files reloaded: %s", self.files.cert)
        return self._context


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """The subject fields of a verified peer certificate that we act on."""

    node_id: str  # CN
    role: str  # OU
    cluster_id: str  # O


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> PeerIdentity | None:
    """The identity in the peer's (already verified) certificate; None without one.

    Read from ``ssl``'s own decoding of the verified certificate
    (``getpeercert()``), so that a manager never needs the ``cryptography``
    package just to know who dialled it (the package costs about 9 MB of
    every manager's memory).  `identity_of` reads the same three fields from a
    parsed certificate; a test checks that both agree.
    """
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    found: dict[str, list[str]] = {}
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            found.setdefault(name, []).append(value)

    def attribute(name: str) -> str:
        values = found.get(name, [])
        return values[0] if len(values) == 1 else ""

    return PeerIdentity(
        node_id=attribute("commonName"),
        role=attribute("organizationalUnitName"),
        cluster_id=attribute("organizationName"),
    )


def identity_of(cert: x509.Certificate) -> PeerIdentity:
    """The node id, role and cluster id a certificate's subject states (CN, OU, O)."""
    from cryptography.x509.oid import NameOID

    subject = cert.subject

    def attribute(oid: x509.ObjectIdentifier) -> str:
        values = subject.get_attributes_for_oid(oid)
        return str(values[0].value) if len(values) == 1 else ""

    return PeerIdentity(
        node_id=attribute(NameOID.COMMON_NAME),
        role=attribute(NameOID.ORGANIZATIONAL_UNIT_NAME),
        cluster_id=attribute(NameOID.ORGANIZATION_NAME),
    )


def peer_refusal(
    identity: PeerIdentity | None, claimed_id: str, cluster_id: str, role: str
) -> str | None:
    """Why a peer that claims ``claimed_id`` must be refused, or None if it may talk."""
    if identity is None:
        return "no verified certificate"
    if identity.node_id != claimed_id:
        return f"certificate is for {identity.node_id!r}, not {claimed_id!r}"
    if identity.role != role:
        return f"certificate role {identity.role!r} is not {role!r}"
    if identity.cluster_id != cluster_id:
        return f"certificate is for cluster {identity.cluster_id!r}"
    return None
