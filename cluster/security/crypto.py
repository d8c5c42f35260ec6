"""Secrets at rest: AES-256-GCM under a data key, the data key under a key-encryption key.

Theory of operation
-------------------
Docker promises that a secret is encrypted at rest on the managers.  Here the
promise is kept *before* the secret reaches Raft: the manager that receives
``docker secret create`` (the proposer) encrypts the data with the cluster's
data-encryption key (DEK) and proposes only the ciphertext.  So the log, its
copies on every follower, every snapshot and the state machine in memory hold
ciphertext; the plaintext exists only in the proposer's request handler and,
later, in whatever hands the secret to a task.

Two layers of keys, as in swarmkit:

* The **DEK** (256 random bits) encrypts secret data.  It is replicated, but
  only *wrapped*: encrypted under the KEK.  The store keeps the wrapped bytes.
* The **KEK** wraps the DEK.  Without autolock it is a random key each manager
  keeps on its own disk.  With autolock it is derived from the unlock key the
  user types (``SWMKEY-1-...``) with HKDF-SHA256, so a manager that restarts
  cannot read any secret until someone unlocks it.  Turning autolock on or
  rotating the unlock key only *rewraps* the DEK (`rewrap_dek`); no secret is
  re-encrypted.

HKDF rather than scrypt: the unlock key is 256 random bits, not a password,
so a slow password hash would add delay and no strength.

Each ciphertext is bound to its secret's ID and key ID through GCM's
associated data: copying one secret's ciphertext onto another secret makes
decryption fail instead of silently handing out the wrong secret.

Key objects never show their bytes in ``repr``; errors never quote data.
Everything here comes from the ``cryptography`` package; nothing is hand-rolled.
The package is imported by the functions that encrypt, decrypt or derive
(`_aead`, `kek_from_unlock_key`), not by this module: it costs about 9 MB
of a process's memory, and an idle manager without autolock never needs it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

import msgpack

ALGORITHM = "AES-256-GCM"
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
UNLOCK_KEY_PREFIX = "SWMKEY-1-"

_SECRET_AAD = b"swarmraft/secret/v1\x00"
_DEK_AAD = b"swarmraft/dek/v1\x00"
_KEK_INFO = b"swarmraft/autolock-kek/v1"

TokenBytes = Callable[[int], bytes]


def _aead() -> tuple[Any, type[Exception]]:
    """AES-GCM and the error of a failed tag check, imported on first use (see the module doc)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM, InvalidTag


class DecryptionError(Exception):
    """Wrong key, wrong secret ID or tampered bytes; never says which bytes."""


class _Key:
    """32 key bytes with a public ID; the bytes stay out of repr and str."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key_id: str, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise ValueError(f"a key is {KEY_SIZE} bytes")
        self.key_id = key_id
        self._key = key

    def secret_bytes(self) -> bytes:
        """The raw key, for whoever must store it (e.g. a KEK file, mode 0600)."""
        return self._key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key_id={self.key_id!r}, key=<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self.key_id == other.key_id  # type: ignore[attr-defined]
            and secrets.compare_digest(self._key, other._key)  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.key_id))


class DataKey(_Key):
    """The data-encryption key that secret data is sealed with."""


class KeyEncryptionKey(_Key):
    """The key that wraps the DEK; from a local file or from the unlock key."""


def _fingerprint(key: bytes) -> str:
    """A short public name for a key: a hash of it, so it reveals nothing."""
    return hashlib.sha256(b"swarmraft/key-id\x00" + key).hexdigest()[:16]


def generate_dek(token_bytes: TokenBytes = secrets.token_bytes) -> DataKey:
    """A fresh random DEK (done once, at `swarm init`)."""
    key = token_bytes(KEY_SIZE)
    return DataKey(_fingerprint(key), key)


def generate_kek(token_bytes: TokenBytes = secrets.token_bytes) -> KeyEncryptionKey:
    """A random KEK for a cluster without autolock."""
    key = token_bytes(KEY_SIZE)
    return KeyEncryptionKey(_fingerprint(key), key)


def load_kek(key: bytes) -> KeyEncryptionKey:
    """Rebuild a KEK from the bytes `KeyEncryptionKey.secret_bytes` gave out."""
    return KeyEncryptionKey(_fingerprint(key), key)


def generate_unlock_key(token_bytes: TokenBytes = secrets.token_bytes) -> str:
    """A Docker-style unlock key: ``SWMKEY-1-`` and 32 random bytes in base64."""
    raw = token_bytes(KEY_SIZE)
    return UNLOCK_KEY_PREFIX + base64.b64encode(raw).decode("ascii").rstrip("=")


def parse_unlock_key(unlock_key: str) -> bytes:
    """The 32 bytes inside an unlock key; `ValueError` (quoting nothing) if malformed."""
    if not isinstance(unlock_key, str) or not unlock_key.startswith(UNLOCK_KEY_PREFIX):
        raise ValueError("invalid unlock key: expected SWMKEY-1-...")
    body = unlock_key[len(UNLOCK_KEY_PREFIX) :]
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid unlock key: not base64") from None
    if len(raw) != KEY_SIZE:
        raise ValueError("invalid unlock key: wrong length")
    return raw


def kek_from_unlock_key(unlock_key: str) -> KeyEncryptionKey:
    """Derive the autolock KEK: HKDF-SHA256 over the unlock key's 32 bytes.

    Deterministic, so every manager unlocked with the same key derives the
    same KEK and can unwrap the same replicated DEK.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=_KEK_INFO)
    key = hkdf.derive(parse_unlock_key(unlock_key))
    return KeyEncryptionKey(_fingerprint(key), key)


# -- wrapping the DEK ----------------------------------------------------------


def wrap_dek(
    dek: DataKey, kek: KeyEncryptionKey, token_bytes: TokenBytes = secrets.token_bytes
) -> bytes:
    """The DEK encrypted under the KEK, as bytes the store may replicate.

    The blob names both key IDs in clear so that a failed unwrap can say
    "wrong KEK" without trying keys blindly; the IDs are hashes, not keys.
    """
    nonce = token_bytes(NONCE_SIZE)
    aad = _DEK_AAD + dek.key_id.encode()
    aesgcm, _ = _aead()
    sealed = aesgcm(kek.secret_bytes()).encrypt(nonce, dek.secret_bytes(), aad)
    blob = {"Alg": ALGORITHM, "KeyID": dek.key_id, "KEKID": kek.key_id, "Nonce": nonce}
    blob["Ciphertext"] = sealed
    return msgpack.packb(blob, use_bin_type=True)


def wrapped_key_ids(wrapped: bytes) -> tuple[str, str]:
    """(DEK ID, KEK ID) named in a wrapped DEK, without decrypting anything."""
    blob = _unpack_map(wrapped)
    return blob["KeyID"], blob["KEKID"]


def unwrap_dek(wrapped: bytes, kek: KeyEncryptionKey) -> DataKey:
    """Recover the DEK; `DecryptionError` if this is not the KEK that wrapped it."""
    blob = _unpack_map(wrapped)
    aad = _DEK_AAD + blob["KeyID"].encode()
    aesgcm, invalid_tag = _aead()
    try:
        key = aesgcm(kek.secret_bytes()).decrypt(blob["Nonce"], blob["Ciphertext"], aad)
    except invalid_tag:
        raise DecryptionError("cannot unwrap the data key: wrong key-encryption key") from None
    return DataKey(blob["KeyID"], key)


def rewrap_dek(
    wrapped: bytes,
    old: KeyEncryptionKey,
    new: KeyEncryptionKey,
    token_bytes: TokenBytes = secrets.token_bytes,
) -> bytes:
    """Move the DEK under a new KEK (autolock on/off, unlock-key rotation)."""
    return wrap_dek(unwrap_dek(wrapped, old), new, token_bytes)


def _unpack_map(data: bytes) -> dict[str, Any]:
    try:
        blob = msgpack.unpackb(data, raw=False)
    except Exception:
        raise DecryptionError("malformed wrapped key") from None
    ok = isinstance(blob, dict) and blob.get("Alg") == ALGORITHM
    if not ok or not all(isinstance(blob.get(k), str) for k in ("KeyID", "KEKID")):
        raise DecryptionError("malformed wrapped key")
    if not all(isinstance(blob.get(k), bytes) for k in ("Nonce", "Ciphertext")):
        raise DecryptionError("malformed wrapped key")
    return blob


# -- sealing secret data ---------------------------------------------------------


def _secret_aad(secret_id: str, key_id: str) -> bytes:
    return _SECRET_AAD + secret_id.encode() + b"\x00" + key_id.encode()


def encrypt_secret(
    dek: DataKey,
    secret_id: str,
    plaintext: bytes,
    token_bytes: TokenBytes = secrets.token_bytes,
) -> dict[str, Any]:
    """Seal a secret's data for the log: ``{Alg, KeyID, Nonce, Ciphertext}``.

    A fresh random 96-bit nonce per call; the ciphertext carries GCM's 16-byte
    tag, so its length is the plaintext's plus `TAG_SIZE`.
    """
    if not isinstance(plaintext, bytes):
        raise TypeError("secret data must be bytes")
    nonce = token_bytes(NONCE_SIZE)
    aesgcm, _ = _aead()
    ct = aesgcm(dek.secret_bytes()).encrypt(nonce, plaintext, _secret_aad(secret_id, dek.key_id))
    return {"Alg": ALGORITHM, "KeyID": dek.key_id, "Nonce": nonce, "Ciphertext": ct}


def decrypt_secret(dek: DataKey, secret_id: str, sealed: dict[str, Any]) -> bytes:
    """Open sealed data; fails unless the DEK *and* the secret ID are the right ones."""
    check_sealed(sealed)
    if sealed["KeyID"] != dek.key_id:
        raise DecryptionError("secret was sealed with another data key")
    aad = _secret_aad(secret_id, dek.key_id)
    aesgcm, invalid_tag = _aead()
    try:
        return aesgcm(dek.secret_bytes()).decrypt(sealed["Nonce"], sealed["Ciphertext"], aad)
    except invalid_tag:
        raise DecryptionError("cannot decrypt secret: wrong key, wrong ID or tampered") from None


def check_sealed(sealed: Any) -> int:
    """Check the shape of sealed data and return the plaintext's length.

    The store calls this: it cannot decrypt, yet it must enforce Docker's
    size limit, and GCM's ciphertext length gives the plaintext length exactly.
    """
    if not isinstance(sealed, dict) or sealed.get("Alg") != ALGORITHM:
        raise ValueError(f"sealed data must be {ALGORITHM}")
    if not isinstance(sealed.get("KeyID"), str):
        raise ValueError("sealed data must name its key")
    nonce, ct = sealed.get("Nonce"), sealed.get("Ciphertext")
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
        raise ValueError("sealed data has a bad nonce")
    if not isinstance(ct, bytes) or len(ct) < TAG_SIZE:
        raise ValueError("sealed data has a bad ciphertext")
    return len(ct) - TAG_SIZE
