"""The keys that seal secrets, and autolock: lock, unlock, follow the keyring.

Theory of operation
-------------------
Secrets are sealed in the store by a data-encryption key (DEK).  The DEK is
replicated too, *wrapped* by a key-encryption key (KEK) that each manager
keeps in its data directory -- or, with autolock, derives from the unlock
key and never stores (`cluster.security.crypto`).  So the files in
``DATA/keys`` say which case a manager is in:

* ``kek``: no autolock; the KEK is read from it when first needed;
* ``kek.fingerprint``: autolock; only the KEK's public ID, to check an
  unlock key against.  A manager that starts with it is *locked*: its Raft
  node does not start (no vote, no log, no quorum share) and the API answers
  503 but for a few routes, until ``swarm unlock`` gives the key;
* ``dek.wrapped``: with autolock and TLS, our copy of the wrapped DEK, so a
  restart can open the sealed ``node.key`` (`cluster.security.node_keys`)
  before the log is back.

`KeyRing.follow_keys` keeps those files in step with the replicated keyring
(autolock turned on or off, the unlock key rotated) on every manager, on
every duty tick.  A separate module because these are the only files the
manager writes besides Raft's own, and the only plaintext keys it holds: a
reader checking that no key reaches a disk or a log reads this file alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from cluster.api.backend import UnavailableError
from cluster.manager.settings import ManagerSettings
from cluster.security import crypto, node_keys
from cluster.state import commands
from cluster.state import errors as store_errors
from cluster.state.errors import FailedPrecondition, StoreError
from cluster.state.store import Store
from raft.runtime.node import RaftNode
from raft.runtime.tls import TLSFiles

__all__ = ["LOCKED_MESSAGE", "KeyChange", "KeyRing"]

logger = logging.getLogger("cluster.manager")

LOCKED_MESSAGE = (
    "swarm is locked: this manager restarted with autolock on and needs the unlock key "
    "(python -m cluster swarm unlock --node {name})"
)


class KeyRing:
    """This manager's KEK and DEK, its key files, and whether it is locked."""

    def __init__(self, settings: ManagerSettings, store: Store, node: RaftNode) -> None:
        self.settings = settings
        self.store = store
        self.node = node
        self._kek: crypto.KeyEncryptionKey | None = None
        self._dek: crypto.DataKey | None = None
        #: Autolock: while locked the Raft node is not started (no vote, no
        #: log, no quorum share) and the API answers 503 but for a few routes.
        self.locked = False
        self._unlocked = asyncio.Event()
        self._unlocked.set()
        self._unlock_lock = asyncio.Lock()
        #: The unlock key, in memory only, when this manager was given it.
        self._unlock_key: str | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    # ------------------------------------------------------------ the lock

    def check_unlocked(self) -> None:
        """`UnavailableError` while locked: every Raft-backed call starts here."""
        if self.locked:
            raise UnavailableError(LOCKED_MESSAGE.format(name=self.name))

    async def wait_unlocked(self) -> None:
        await self._unlocked.wait()

    @property
    def kek_file(self) -> Path:
        return self.settings.data_dir / "keys" / "kek"

    @property
    def fingerprint_file(self) -> Path:
        """With autolock: the KEK's public ID (a hash), to check an unlock key against."""
        return self.settings.data_dir / "keys" / "kek.fingerprint"

    def unlock_key_id(self) -> str | None:
        """The public ID of the KEK a restart would ask the unlock key for (None
        without autolock): what ``kek.fingerprint`` holds."""
        try:
            return self.fingerprint_file.read_text().strip() or None
        except OSError:
            return None

    @property
    def autolock_in_force(self) -> bool:
        """Whether a restart would come back locked (no KEK file here)."""
        return not self.kek_file.exists()

    def open_keys(self, unlock_key: str | None) -> None:
        """At start: a KEK file means no autolock; a fingerprint file means locked
        unless ``unlock_key`` (from the supervisor, on stdin) matches it."""
        if self.kek_file.exists() or not self.fingerprint_file.exists():
            return  # the KEK is read from its file when first needed
        if unlock_key is not None:
            try:
                self.accept_unlock_key(unlock_key)
                return
            except StoreError as e:
                logger.error("%s: the unlock key given at start was refused: %s", self.name, e)
        self.locked = True
        self._unlocked.clear()
        logger.warning("%s: swarm is locked; waiting for the unlock key", self.name)
        # The trace says so at once (the node, not started, flushes nothing yet):
        # figures show the manager locked -- out of Raft -- until its ``start`` line.
        self.node.trace.emit("locked", reason="autolock")
        self.node.trace.flush_now()

    def accept_unlock_key(self, unlock_key: str) -> None:
        """Check a key against the stored fingerprint (never the key) and keep it."""
        try:
            kek = crypto.kek_from_unlock_key(unlock_key)
        except ValueError as e:
            raise store_errors.InvalidArgument(str(e)) from None
        try:
            want = self.fingerprint_file.read_text().strip()
        except FileNotFoundError:
            raise FailedPrecondition("this manager has no unlock key fingerprint") from None
        if kek.key_id != want:
            raise store_errors.InvalidArgument(
                "invalid key: this is not the unlock key of this manager"
            )
        self._kek, self._unlock_key = kek, unlock_key

    async def unlock(self, unlock_key: str) -> None:
        """``docker swarm unlock``: start the Raft node once the key matches."""
        async with self._unlock_lock:  # two unlocks at once start one node
            if not self.locked:
                raise FailedPrecondition("swarm is not locked")
            self.accept_unlock_key(unlock_key)
            self.open_node_key()
            await self.node.start()
            self.locked = False
            self.follow_keys()  # unwrap the DEK from our own log before it moves on
            self._unlocked.set()
        logger.info("%s: unlocked", self.name)

    # ------------------------------------------------------------ the keys

    def data_key(self) -> crypto.DataKey:
        """The DEK new secrets are sealed with (unwrapped once, kept in memory)."""
        self.check_unlocked()
        if self._dek is None:
            self._dek = self._unwrap_dek()
        return self._dek

    def founding_dek(self) -> crypto.DataKey | None:
        """The data key ``up --autolock`` gave a founding manager (``dek.wrapped``),
        opened with the KEK; None without one (the first leader makes it)."""
        if self._dek is not None:
            return self._dek
        if self._kek is None or not self._dek_copy_file.exists():
            return None
        try:
            self._dek = crypto.unwrap_dek(self._dek_copy_file.read_bytes(), self._kek)
        except (OSError, crypto.DecryptionError):
            return None
        return self._dek

    def wrap_new_dek(self, dek: crypto.DataKey) -> bytes:
        """A brand-new swarm's DEK, wrapped by our KEK (``swarm init``)."""
        if self._kek is None:
            self._kek = self._load_kek()
        return crypto.wrap_dek(dek, self._kek)

    def _load_kek(self) -> crypto.KeyEncryptionKey:
        path = self.settings.data_dir / "keys" / "kek"
        try:
            return crypto.load_kek(path.read_bytes())
        except FileNotFoundError:
            raise UnavailableError("this manager has no key-encryption key") from None

    def _unwrap_dek(self) -> crypto.DataKey:
        if self._kek is None:
            self._kek = self._load_kek()
        entry = self.store.active_data_key()
        if entry is None:
            raise UnavailableError("the swarm is not initialised yet (no data key)")
        try:
            return crypto.unwrap_dek(entry["Wrapped"], self._kek)
        except crypto.DecryptionError:
            raise UnavailableError(
                "this manager cannot unwrap the data key (its key-encryption key is not "
                "the current one); restart and unlock it with the current unlock key"
            ) from None

    def _holds_current_kek(self) -> bool:
        entry = self.store.active_data_key()
        current = crypto.wrapped_key_ids(entry["Wrapped"])[1] if entry else None
        return self._kek is not None and self._kek.key_id == current

    def unlock_key(self) -> str:
        """The current unlock key, if this manager holds it in memory."""
        if self._unlock_key is None or not self._holds_current_kek():
            raise FailedPrecondition(
                f"the leader ({self.name}) does not hold the current unlock key in memory; "
                "make a new one with: swarm unlock-key --rotate"
            )
        return self._unlock_key

    def autolock_change(self, had: bool, want: bool, rotate: bool, now: float) -> KeyChange:
        """What ``swarm update`` must replicate for autolock going ``had`` -> ``want``
        (and ``rotate``: a new unlock key), checked before anything is written.

        Turning autolock on or rotating the key only rewraps the DEK under
        the KEK derived from a new unlock key (`crypto.rewrap_dek`'s job,
        done from the DEK in memory); the new wrapping, which names the new
        KEK's fingerprint, replicates with the spec in one entry.  Turning it
        off keeps the wrapping: each manager that holds the KEK writes it to
        its disk again (`follow_keys`).
        """
        change = KeyChange()
        if rotate and not want:
            raise FailedPrecondition("autolock is not enabled: there is no unlock key to rotate")
        if want and (rotate or not had):
            change.unlock_key = crypto.generate_unlock_key()
            change.kek = crypto.kek_from_unlock_key(change.unlock_key)
            wrapped = crypto.wrap_dek(self.data_key(), change.kek)
            change.commands.append(commands.put_data_key(wrapped, now))
        elif had and not want and not self._holds_current_kek():
            raise FailedPrecondition(
                f"the leader ({self.name}) does not hold the current unlock key; "
                "rotate it first (swarm unlock-key --rotate), then turn autolock off"
            )
        return change

    def adopt(self, change: KeyChange) -> None:
        """Once ``change`` committed: hold its new key in memory (never on a disk)."""
        if change.unlock_key is not None:
            self._kek, self._unlock_key = change.kek, change.unlock_key

    # ------------------------------------------------------------ following the store

    def follow_keys(self) -> None:
        """Keep this manager's key files in step with the replicated keyring.

        The wrapped DEK names the KEK that wrapped it (its public ID), and the
        cluster spec says whether autolock is on.  Every manager: unwraps the
        DEK into memory as soon as it can; with autolock it keeps only the
        KEK's fingerprint on disk (so a rotated key is what it asks for after
        a restart); without autolock it keeps the KEK itself, when it has it.
        """
        entry = self.store.active_data_key()
        cluster = self.store.cluster()
        if entry is None or cluster is None:
            return
        _, kek_id = crypto.wrapped_key_ids(entry["Wrapped"])
        self.keep_dek()
        autolock = cluster["Spec"].get("EncryptionConfig", {}).get("AutoLockManagers", False)
        try:
            if autolock:
                node_keys.write_private(self.fingerprint_file, kek_id.encode())
                self.kek_file.unlink(missing_ok=True)
            elif self._kek is not None and self._kek.key_id == kek_id:
                node_keys.write_private(self.kek_file, self._kek.secret_bytes())
                self.fingerprint_file.unlink(missing_ok=True)
            self._follow_node_key(autolock, entry["Wrapped"])
        except OSError as e:
            logger.error("%s: cannot update the key files: %s", self.name, e)

    def keep_dek(self) -> None:
        """Unwrap the DEK into memory now if the KEK we hold opens the current wrapping.

        Called on every duty tick and, through `StoreMachine`'s hook, just before
        a new wrapping is applied: once autolock (or a rotation) rewraps the DEK
        under a KEK from an unlock key, the KEK file opens nothing any more, and
        a follower that had not unwrapped the DEK before could not seal, deliver
        or rotate anything when it leads ("cannot unwrap the data key").
        """
        if self._dek is not None:
            return
        entry = self.store.active_data_key()
        if entry is None:
            return
        if self._kek is None and self.kek_file.exists():
            with contextlib.suppress(OSError, ValueError, UnavailableError):
                self._kek = self._load_kek()
        _, kek_id = crypto.wrapped_key_ids(entry["Wrapped"])
        if self._kek is not None and self._kek.key_id == kek_id:
            with contextlib.suppress(crypto.DecryptionError):
                self._dek = crypto.unwrap_dek(entry["Wrapped"], self._kek)

    # ------------------------------------------------------------ the node's TLS key

    @property
    def _dek_copy_file(self) -> Path:
        """With autolock: the DEK wrapped by the KEK, to open ``node.key`` at a restart."""
        return self.settings.data_dir / "keys" / "dek.wrapped"

    def _follow_node_key(self, autolock: bool, wrapped: bytes) -> None:
        """Autolock seals ``node.key`` (`cluster.security.node_keys`); without it, clear."""
        if not self.settings.tls or self._dek is None:
            return
        key = Path(self.settings.tls["key"])
        if autolock:
            node_keys.write_private(self._dek_copy_file, wrapped)
            if not node_keys.is_sealed(key):
                node_keys.seal_key(key, node_keys.key_password(self._dek))
                logger.info("%s: TLS key sealed (autolock)", self.name)
        elif node_keys.is_sealed(key):
            node_keys.open_key(key, node_keys.key_password(self._dek))
            self._dek_copy_file.unlink(missing_ok=True)
            logger.info("%s: TLS key stored in clear (autolock off)", self.name)

    def open_node_key(self) -> None:
        """Before the node starts: the password of a sealed ``node.key``, from the KEK.

        unlock key -> KEK -> our copy of the wrapped DEK -> DEK -> password.
        The node is then given files whose password is asked each time they
        are loaded: autolock may seal the key, or a renewal replace it, later.
        """
        tls = self.settings.tls
        if not tls:
            return
        if node_keys.is_sealed(Path(tls["key"])) and self._dek is None:
            if self._kek is None:
                self._kek = self._load_kek()
            try:
                self._dek = crypto.unwrap_dek(self._dek_copy_file.read_bytes(), self._kek)
            except (OSError, crypto.DecryptionError) as e:
                raise UnavailableError(
                    f"{self.name} cannot open its sealed TLS key ({type(e).__name__}): "
                    "unlock it with the key it was locked with"
                ) from None
        files = self.tls_files()
        assert files is not None
        self.node.use_tls(files)

    def tls_files(self) -> TLSFiles | None:
        """Our certificate's files; their password is asked when they are loaded."""
        tls = self.settings.tls
        if not tls:
            return None
        files = TLSFiles.from_config(tls)
        return dataclasses.replace(files, password_source=self._key_password)

    def _key_password(self) -> bytes | None:
        """The password of ``node.key`` now: derived from the DEK while it is sealed."""
        tls = self.settings.tls
        if tls and node_keys.is_sealed(Path(tls["key"])) and self._dek is not None:
            return node_keys.key_password(self._dek)
        return None


@dataclass(slots=True)
class KeyChange:
    """What a ``swarm update`` adds to its entry for the keys, and the key it made.

    The key and the KEK are left out of ``repr``: not even a traceback shows them.
    """

    commands: list[bytes] = field(default_factory=list)
    #: The new unlock key (shown once to the user), and the KEK it derives.
    unlock_key: str | None = field(default=None, repr=False)
    kek: crypto.KeyEncryptionKey | None = field(default=None, repr=False)
