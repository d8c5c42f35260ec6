"""A manager's TLS key under autolock: sealed on disk, opened with the unlock key.

Theory of operation
-------------------
Docker's autolock protects two keys of a manager: the one that encrypts the
Raft data and the one of its TLS certificate.  Here the first is the data
key (DEK) that seals secrets (`cluster.security.crypto`); this module does the second.
With autolock on, ``keys/node.key`` is an encrypted PKCS#8 file whose
password is derived from the DEK (HKDF), and beside it ``keys/dek.wrapped``
holds the DEK wrapped by the key-encryption key, as the replicated keyring
has it.  A restarted manager thus needs the unlock key before it can even
prove who it is to its peers:

    unlock key -> KEK -> unwrap dek.wrapped -> DEK -> password -> node.key

Why the DEK and not the KEK: rotating the unlock key rewraps the DEK but
never changes it.  A manager that was down during a rotation still opens
its key with the *old* unlock key, and once it has caught up it copies the
new wrapping (which it can do without knowing the new key) -- so the next
restart takes the new unlock key, and its key file never had to be
rewritten.

The file is sealed as soon as the manager knows the DEK: a founding
manager of ``up --autolock`` from the start (``up`` makes the DEK and hands
each founding manager its wrapped copy, `cluster.local.provision`), any
other when the DEK reaches it through the log (autolock turned on later, a
manager that joined).  It is opened again when autolock is turned off.  Encryption
is `cryptography`'s best available PKCS#8 scheme; OpenSSL reads it with the
password (`raft.runtime.tls.TLSFiles.password`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cluster.security.crypto import DataKey

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

# ``cryptography`` is imported by the functions that need it: a manager
# without autolock looks at its key files on every tick but never opens one.

__all__ = ["is_sealed", "key_password", "open_key", "seal_key", "write_private"]

_SEALED_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_INFO = b"swarmraft node TLS key"


def key_password(dek: DataKey) -> bytes:
    """The password of a sealed node key: HKDF-SHA256 of the DEK, hex (OpenSSL wants text)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        dek.secret_bytes()
    )
    return derived.hex().encode()


def is_sealed(path: Path) -> bool:
    """Is the key file encrypted?  (Its PEM header says so.)"""
    try:
        with path.open("rb") as f:
            return f.read(len(_SEALED_HEADER)) == _SEALED_HEADER
    except FileNotFoundError:
        return False


def write_private(path: Path, data: bytes) -> None:
    """Replace a small key file atomically (temp, fsync, rename), readable by its owner only.

    Unchanged content is not rewritten: the manager calls this on every
    look at its keys.
    """
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load(path: Path, password: bytes | None) -> PrivateKeyTypes:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password)


def seal_key(path: Path, password: bytes) -> None:
    """Encrypt a clear key file in place (a sealed one is left as it is)."""
    if is_sealed(path):
        return
    from cryptography.hazmat.primitives import serialization

    key = _load(path, None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    write_private(path, pem)


def open_key(path: Path, password: bytes) -> None:
    """Decrypt a sealed key file in place (autolock turned off)."""
    if not is_sealed(path):
        return
    from cryptography.hazmat.primitives import serialization

    key = _load(path, password)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(path, pem)
