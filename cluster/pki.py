"""The cluster's certificate authority: a root CA and one certificate per node.

Theory of operation
-------------------
``up`` on a new directory makes a root CA (EC P-256, self-signed) and issues
every manager a certificate whose subject names it the way `raft.tls` checks
it: CN = the node name (its Raft id, ``manager1``), OU = its role
(``swarm-manager`` or ``swarm-worker``), O = the cluster id.  A SAN URI
``swarmraft://role/<role>`` repeats the role for tools that read SANs.  The
certificates are valid both as TLS server and client (every manager dials
and accepts), for `VALIDITY` days.

Files (PEM)::

    DIR/ca/ca.crt, DIR/ca/ca.key          the root; ca.key is 0600
    DIR/<node>/keys/ca.crt                 the root certificate, to verify peers
    DIR/<node>/keys/node.crt, node.key     the node's own; node.key is 0600

Here the CA key stays in ``DIR/ca`` beside the cluster, because one local
user runs every process.  In a real swarm it would live in the managers'
replicated state (encrypted like the other keys), so that whichever manager
leads can issue certificates to nodes that join, and no single disk outside
the swarm holds it.  This module does not rotate or revoke certificates.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from raft.tls import MANAGER_ROLE, TLSFiles

__all__ = [
    "MANAGER_ROLE",
    "VALIDITY",
    "WORKER_ROLE",
    "CertificateAuthority",
]

WORKER_ROLE = "swarm-worker"
#: Days a certificate is valid; long, because nothing here renews them.
VALIDITY = 3650


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # O_CREAT's mode does not apply to a file that existed


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
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

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
        self, node_name: str, role: str, cluster_id: str
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A fresh key and a certificate for it: CN = node name, OU = role, O = cluster."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, node_name),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        role_uri = "swarmraft://role/" + role.removeprefix("swarm-")
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALIDITY))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(node_name), x509.UniformResourceIdentifier(role_uri)]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return cert, key

    def issue_files(self, keys_dir: Path, node_name: str, role: str, cluster_id: str) -> TLSFiles:
        """Issue a certificate and write ca.crt, node.crt, node.key (0600) into ``keys_dir``."""
        cert, key = self.issue(node_name, role, cluster_id)
        files = TLSFiles.in_dir(keys_dir)
        _write(files.ca, self.cert_pem())
        _write(files.key, _key_pem(key), private=True)
        _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
        return files
