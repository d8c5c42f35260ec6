"""The cluster's certificate authority: a root CA and one certificate per node.

Theory of operation
-------------------
``up`` on a new directory makes a root CA (EC P-256, self-signed) and issues
every manager a certificate whose subject names it the way `raft.runtime.tls` checks
it: CN = the node name (its Raft id, ``manager1``), OU = its role
(``swarm-manager`` or ``swarm-worker``), O = the cluster id.  A SAN URI
``swarmraft://role/<role>`` repeats the role for tools that read SANs.  The
certificates are valid both as TLS server and client (every manager dials
and accepts), for the cluster's certificate expiry (`cluster.security.expiry`: 90 days
by default), and renewed before they run out; the root itself lives
`VALIDITY` days.

Files (PEM)::

    DIR/ca/ca.crt, DIR/ca/ca.key          the root; ca.key is 0600
    DIR/<node>/keys/ca.crt                 the root certificate, to verify peers
    DIR/<node>/keys/node.crt, node.key     the node's own; node.key is 0600

Joining
-------
Nodes that come later (every worker, and managers added with ``swarm join``)
get their certificate the way Docker's do.  A join token
``SWMTKN-1-<digest>-<secret>`` carries `root_digest` of the root
certificate: the newcomer fetches the root certificate from any manager
(``GET /ca`` on its swarm port, `cluster.api.swarm`), checks that its
digest is the one in the token -- so a man in the middle cannot slip in a
CA of its own -- and from then on trusts only that root.  It makes its own
key and sends a certificate signing request with the token; the leader
checks the token, decides the role *from the token* (a worker token never
yields a manager certificate) and signs with `CertificateAuthority.sign`:
the key never leaves the node, and CN/OU/O are the CA's choice, not the
requester's.

Where the CA key lives: ``up`` keeps a copy in ``DIR/ca`` (it issues the
founding managers' certificates before any process runs), and the first
leader puts it in the replicated store sealed with the swarm's data key,
like a secret (`cluster.manager.duties`), so that whichever manager leads can sign
for newcomers -- a manager that joined later included -- and, with
autolock, it is as locked as the secrets are.  A removed node's
certificate stops working because the dispatcher admits only nodes that are
still in the store.

Renewal
-------
A node renews its own certificate (`cluster.security.expiry` says when) with
``POST /renew`` on the swarm port, authenticated by the certificate it
still holds: a fresh key, a signing request, and the leader signs the same
CN/OU/O again for the current expiry (`CertificateAuthority.renew`).  The
node writes the new files (`write_node_files`) and its TLS contexts pick
them up for every new connection (`raft.runtime.tls.FreshContexts`).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster.security.expiry import expiry_of
from cluster.security.roles import MANAGER_ROLE, WORKER_ROLE
from raft.runtime.tls import TLSFiles, identity_of

__all__ = [
    "MANAGER_ROLE",
    "VALIDITY",
    "WORKER_ROLE",
    "CertificateAuthority",
    "digest_matches",
    "make_csr",
    "new_request",
    "private_key_pem",
    "replace_node_files",
    "root_digest",
    "token_digest",
    "write_node_files",
    "write_trust",
]

#: Days the root certificate is valid (node certificates: `expiry.DEFAULT_EXPIRY`).
VALIDITY = 3650


#: A root's key usage: it signs certificates (and revocation lists), nothing else.
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # O_CREAT's mode does not apply to a file that existed


_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def root_digest(cert: x509.Certificate) -> str:
    """SHA-256 of the root certificate (DER) as 50 base36 digits, Docker's token field."""
    n = int.from_bytes(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest())
    digits = []
    while n:
        n, r = divmod(n, 36)
        digits.append(_ALPHABET[r])
    return "".join(reversed(digits)).rjust(50, "0")


def token_digest(token: str) -> str | None:
    """The root digest a ``SWMTKN-1-<digest>-<secret>`` token carries, or None."""
    parts = token.split("-")
    if len(parts) != 4 or parts[:2] != ["SWMTKN", "1"] or len(parts[2]) != 50:
        return None
    return parts[2]


def digest_matches(token: str, cert: x509.Certificate) -> bool:
    """Is ``cert`` the root the token names?  (What a newcomer checks before trusting it.)"""
    want = token_digest(token)
    return want is not None and hmac.compare_digest(want, root_digest(cert))


def make_csr(node_key: ec.EllipticCurvePrivateKey) -> bytes:
    """A PEM signing request for ``node_key`` (its subject is left to the CA)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarmraft node")]))
        .sign(node_key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (it goes to a 0600 file or, sealed, to the store)."""
    return _key_pem(key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertificateAuthority:
    """A root certificate and its key, able to issue node certificates."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert = cert
        self._key = key

    def __repr__(self) -> str:  # never the key
        return f"CertificateAuthority({self.cert.subject.rfc4514_string()!r})"

    @classmethod
    def create(cls, cluster_id: str) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "swarmraft root CA"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALIDITY))
            # Path length 1: room for one cross-signed root between a node
            # certificate and this root, which a rotation needs (`cross_sign`).
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        """From the root certificate and key as PEM (as the store keeps them)."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the root CA key is not an EC key")
        return cls(cert, key)

    def cross_sign(self, new: CertificateAuthority) -> x509.Certificate:
        """``new``'s root, certified by this (old) root: the bridge of a rotation.

        Same subject and key as ``new.cert``, issuer this root.  A node
        certificate from the new root, presented with this certificate as
        its chain, verifies for a node that still trusts only the old root:
        leaf -> cross-signed new root -> old root.  It is valid no longer
        than the old root.
        """
        now = datetime.datetime.now(datetime.UTC)
        public = new.cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        own_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return (
            x509.CertificateBuilder()
            .subject_name(new.cert.subject)
            .issuer_name(self.cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(min(new.cert.not_valid_after_utc, self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(own_ski),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )

    def key_pem(self) -> bytes:
        """The root key as PEM: only ever to be sealed into the store or a 0600 file."""
        return _key_pem(self._key)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca.key'} is not an EC key")
        return cls(cert, key)

    def save(self, directory: Path) -> None:
        """Write ca.crt and ca.key (0600) into ``directory``."""
        _write(directory / "ca.crt", self.cert_pem())
        _write(directory / "ca.key", _key_pem(self._key), private=True)

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        node_name: str,
        role: str,
        cluster_id: str,
        validity: datetime.timedelta | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A fresh key and a certificate for it: CN = node name, OU = role, O = cluster."""
        key = ec.generate_private_key(ec.SECP256R1())
        return self.sign(key.public_key(), node_name, role, cluster_id, validity=validity), key

    def sign_csr(
        self,
        csr_pem: bytes,
        node_id: str,
        role: str,
        cluster_id: str,
        hostname: str,
        validity: datetime.timedelta | None = None,
    ) -> x509.Certificate:
        """Certify the key of a newcomer's signing request as ``node_id`` in ``role``.

        Only the request's public key is used: the subject is the CA's to
        decide.  A request whose signature does not verify (not made with
        the key it carries) raises ValueError.
        """
        return self.sign(_csr_key(csr_pem), node_id, role, cluster_id, hostname, validity)

    def renew(
        self, csr_pem: bytes, current: x509.Certificate, validity: datetime.timedelta | None
    ) -> x509.Certificate:
        """A renewal: the request's new key, certified with ``current``'s subject again.

        The identity comes from the certificate the node proved it holds,
        never from the request.
        """
        who = identity_of(current)
        names = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = names.get_values_for_type(x509.DNSName)
        hostname = dns[0] if dns else who.node_id
        public = _csr_key(csr_pem)
        return self.sign(public, who.node_id, who.role, who.cluster_id, hostname, validity)

    def sign(
        self,
        public: ec.EllipticCurvePublicKey,
        node_id: str,
        role: str,
        cluster_id: str,
        hostname: str | None = None,
        validity: datetime.timedelta | None = None,
    ) -> x509.Certificate:
        """A certificate for ``public``: CN = node id, OU = role, O = cluster id,
        valid from now (less some clock skew) for ``validity`` (default:
        `expiry.expiry_of` with no cluster spec, i.e. 90 days or the test override)."""
        validity = validity if validity is not None else expiry_of(None)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, node_id),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        # Backdated for clocks a little behind ours -- by a tenth of the lifetime
        # at most, so that a short-lived test certificate's renewal (planned as a
        # fraction of its lifetime, `expiry.renewal_time`) still lies ahead.
        skew = min(datetime.timedelta(minutes=5), validity / 10)
        role_uri = "swarmraft://role/" + role.removeprefix("swarm-")
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - skew)
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(hostname or node_id),
                        x509.UniformResourceIdentifier(role_uri),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )

    def issue_files(
        self,
        keys_dir: Path,
        node_name: str,
        role: str,
        cluster_id: str,
        validity: datetime.timedelta | None = None,
    ) -> TLSFiles:
        """Issue a certificate and write ca.crt, node.crt, node.key (0600) into ``keys_dir``."""
        cert, key = self.issue(node_name, role, cluster_id, validity)
        return write_node_files(keys_dir, self.cert_pem(), cert, key)


def _csr_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The key of a signing request whose signature verifies (ValueError otherwise)."""
    csr = x509.load_pem_x509_csr(csr_pem)
    if not csr.is_signature_valid:
        raise ValueError("the signing request's signature does not verify")
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValueError("the signing request must carry an EC key")
    return public


def write_node_files(
    keys_dir: Path, ca_pem: bytes, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> TLSFiles:
    """Write a node's ca.crt, node.crt and node.key (0600) into ``keys_dir``."""
    files = TLSFiles.in_dir(keys_dir)
    _write(files.ca, ca_pem)
    _write(files.key, _key_pem(key), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    return files


def new_request() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A fresh key and a signing request for it (a renewal's first step)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key, make_csr(key)


def replace_node_files(
    files: TLSFiles, ca_pem: bytes, cert_pem: bytes, key: ec.EllipticCurvePrivateKey
) -> None:
    """Install a renewed certificate in place of the old one, each file atomically.

    The key is written sealed with the current password if the old one was
    (autolock, `cluster.security.node_keys`).  Each file is written to a temp
    file, fsynced and renamed: a crash leaves the old or the new file, never
    half of one.  Between the renames the key may not match the
    certificate for a moment; `raft.runtime.tls.FreshContexts` does not
    adopt such a pair and tries again on the next connection.
    """
    x509.load_pem_x509_certificate(cert_pem)  # refuse garbage before touching anything
    password = files.key_password()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    for path, data, private in (
        (files.key, key_pem, True),
        (files.cert, cert_pem, False),
        (files.ca, ca_pem, False),
    ):
        _replace(path, data, private)


def write_trust(path: Path, roots_pem: bytes) -> None:
    """Replace a node's trust file (one root, or two during a rotation) atomically."""
    x509.load_pem_x509_certificates(roots_pem)  # refuse garbage before touching anything
    _replace(path, roots_pem, private=False)


def _replace(path: Path, data: bytes, private: bool) -> None:
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
