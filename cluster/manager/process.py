"""One Swarm manager: a Raft node replicating the `Store`, serving the HTTP API.

Theory of operation
-------------------

A manager is one OS process (``python -m cluster.manager --config FILE``)
that wires together:

* a `raft.runtime.node.RaftNode` whose state machine is this manager's `Store`
  replica (every manager applies the same commands in the same order);
* the HTTP API (`cluster.api.server`), which reads the local store and sends writes
  through `Manager.write` -> Raft, and the swarm port (`cluster.api.swarm`),
  where nodes join and workers talk to the dispatcher over mutual TLS;
* the managers it knows: those of its config, and those that joined later,
  learnt from their node objects (`cluster.manager.joins.learn_peers`) so that Raft
  can dial them and the leader can add them to the configuration;
* the keys that seal secrets: a data-encryption key (DEK) replicated in the
  store *wrapped* by the key-encryption key (KEK) that each manager keeps in
  its data directory (or, with autolock, derives from the unlock key);
* the leader's duties, run only while this manager leads: bootstrap a new
  swarm (cluster object, join tokens carrying the root CA's digest, DEK,
  the root CA sealed by the DEK, one node object per manager),
  keep each manager's ``ManagerStatus`` (Leader / Reachable / Unreachable)
  true in the store, the way ``docker node ls`` shows it, and run the
  orchestrator (`cluster.control.orchestrator.ControlLoop`) that turns services into
  tasks on nodes;
* the node's agent (`cluster.control.agent`): managers run tasks too, as in Swarm.

Writes are exactly-once: every command travels in a client session
(`raft.core.session`, dissertation §6.3) owned by this manager, so a proposal
retried after a timeout -- or an HTTP request retried with the same
``X-Request-ID`` -- is applied once and answered with the first result.

The supervisor (`cluster.local.supervisor`) writes the config file, starts the
process, and changes its network faults by rewriting ``faults.json`` in the
data directory and sending SIGHUP: a paused manager picks the change up when
it resumes, a stopped one when it starts, so a partition survives restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import logging
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.api.backend import NoQuorumError, NotLeaderError, UnavailableError
from cluster.control import agent
from cluster.control.dispatcher import Dispatcher, is_worker_node
from cluster.control.orchestrator import ControlLoop
from cluster.control.orchestrator import Settings as OrchestratorSettings
from cluster.manager import joins
from cluster.security import crypto, node_keys
from cluster.security.pki import CertificateAuthority
from cluster.state import commands
from cluster.state import errors as store_errors
from cluster.state.errors import FailedPrecondition, NotFound, StoreError
from cluster.state.store import Result, Store, decode_command
from raft.core.protocol import ConfChange, ConfChangeError, ConfChangeOp, NotLeader, ProposalDropped
from raft.core.session import (
    CommandFailed,
    SessionError,
    SessionStateMachine,
    encode_command,
    encode_register,
)
from raft.runtime.node import NodeSettings, NodeStopped, ProposalLost, ProposalTimeout, RaftNode
from raft.runtime.tls import TLSFiles

__all__ = ["Manager", "ManagerSettings", "main"]

logger = logging.getLogger("cluster.manager")

#: How often the leader's duties loop looks at the world.
DUTY_INTERVAL = 0.25
#: Seconds a node may be down before its tasks are rescheduled elsewhere.
NODE_DOWN_GRACE = 10.0
#: A manager not heard from for this many election timeouts is "Unreachable".
UNREACHABLE_AFTER = 2.0


@dataclass(frozen=True, slots=True)
class Peer:
    """Another manager as this one knows it."""

    node_id: str
    raft: tuple[str, int]
    api_url: str
    #: Its swarm port (`cluster.api.swarm`), where nodes talk over mutual TLS.
    swarm_url: str | None = None


@dataclass(frozen=True, slots=True)
class ManagerSettings:
    """The contents of a manager's ``config.json`` (written by the supervisor)."""

    name: str
    node_id: str
    cluster_id: str
    data_dir: Path
    api_port: int
    #: Every manager of the initial configuration, this one included.
    peers: dict[str, Peer]
    api_host: str = "127.0.0.1"
    tick_interval: float = 0.05
    heartbeat_ticks: int = 1
    election_ticks: int = 10
    snapshot_entries: int = 10_000
    #: Writes and linearizable reads give up after this many seconds (503).
    request_timeout: float = 3.0
    fsync: bool = True
    log_level: str = "INFO"
    #: The voters of a brand-new cluster (None: every peer); [] for a manager
    #: that joins an existing one as a learner.
    voters: list[str] | None = None
    #: Founding setting: the swarm starts with autolock on (`cluster.security.crypto`).
    autolock: bool = False
    #: Mutual TLS between managers: paths of "ca", "cert" and "key" (PEM),
    #: and for a founding manager "ca_key", the root key the first leader
    #: seals into the store; None (a cluster made before certificates): plain TCP.
    tls: dict[str, str] | None = None
    #: The swarm port (HTTPS, mutual TLS) where workers and newcomers talk to
    #: us (`cluster.api.swarm`); None: not served.
    swarm_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ManagerSettings:
        raw = json.loads(path.read_text())
        peers = {
            name: Peer(
                p["node_id"], (p["raft"][0], int(p["raft"][1])), p["api_url"], p.get("swarm_url")
            )
            for name, p in raw.pop("peers").items()
        }
        raw["data_dir"] = Path(raw["data_dir"])
        known = set(cls.__dataclass_fields__) - {"peers", "extra"}
        extra = {k: raw.pop(k) for k in list(raw) if k not in known}
        return cls(peers=peers, extra=extra, **raw)

    @property
    def election_timeout(self) -> float:
        return self.tick_interval * self.election_ticks


class StoreMachine:
    """The `Store` as Raft's state machine, with readable trace names.

    Answers are plain lists, not `Result` objects: the session layer keeps
    recent answers in the snapshot, so they must be msgpack-serialisable.
    `decode_answer` turns them back into a `Result`.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def apply(self, index: int, data: bytes) -> list[Any]:
        r = self.store.apply(index, data)
        if r.error is None:
            return ["ok", r.index, r.op, r.value]
        return ["error", r.index, r.op, type(r.error).__name__, r.error.desc]

    def snapshot(self) -> bytes:
        return self.store.snapshot()

    def restore(self, data: bytes) -> None:
        self.store.restore(data)

    def op_kind(self, data: bytes) -> str:
        return decode_command(data)[0]


#: First byte of a benchmark entry (`Manager.bench_proposals`): 0xC1 is the one
#: byte msgpack never uses, so no session command can start with it.
BENCH_MARK = b"\xc1"
#: Bounds of one `Manager.bench_proposals` call.
BENCH_MAX_SECONDS = 60.0
BENCH_MAX_OUTSTANDING = 1024
BENCH_MAX_SIZE = 64 * 1024


class BenchEntries:
    """The replicated state machine, plus entries that change nothing.

    `Manager.bench_proposals` measures Raft alone (no HTTP, no session, no
    store): its entries go through the whole log -- replication, fsync on a
    majority, commit, apply on every manager -- and are then ignored.
    """

    def __init__(self, inner: SessionStateMachine) -> None:
        self.inner = inner

    def apply(self, index: int, data: bytes) -> Any:
        if data[:1] == BENCH_MARK:
            return None
        return self.inner.apply(index, data)

    def snapshot(self) -> bytes:
        return self.inner.snapshot()

    def restore(self, data: bytes) -> None:
        self.inner.restore(data)

    def op_kind(self, data: bytes) -> str:
        return "bench" if data[:1] == BENCH_MARK else self.inner.op_kind(data)


def decode_answer(answer: Any) -> Result:
    """The `Result` an answer of `StoreMachine.apply` stands for."""
    if answer[0] == "ok":
        return Result(answer[1], answer[2], answer[3])
    cls = getattr(store_errors, answer[3], None)
    if not (isinstance(cls, type) and issubclass(cls, StoreError)):
        cls = StoreError
    return Result(answer[1], answer[2], error=cls(answer[4]))


#: Remembered X-Request-IDs (each maps to the session sequence number it used).
REQUEST_ID_MEMORY = 4096

LOCKED_MESSAGE = (
    "swarm is locked: this manager restarted with autolock on and needs the unlock key "
    "(python -m cluster swarm unlock --node {name})"
)


class Manager:
    """The manager process's heart; implements `cluster.api.backend.Backend`."""

    def __init__(self, settings: ManagerSettings) -> None:
        self.settings = settings
        self._store = Store()
        self._kek: crypto.KeyEncryptionKey | None = None
        self._dek: crypto.DataKey | None = None
        self._rng = random.Random()
        s = settings
        self.node = RaftNode(
            NodeSettings(
                id=s.name,
                cluster_id=s.cluster_id,
                peers={name: p.raft for name, p in s.peers.items()},
                voters=None if s.voters is None else tuple(s.voters),
                data_dir=s.data_dir / "raft",
                tick_interval=s.tick_interval,
                heartbeat_ticks=s.heartbeat_ticks,
                election_ticks=s.election_ticks,
                fsync=s.fsync,
                trace_path=s.data_dir / "trace.jsonl",
                propose_timeout=s.request_timeout,
                snapshot_entries=s.snapshot_entries,
                trailing_entries=min(500, s.snapshot_entries // 2),
                tls=None if s.tls is None else TLSFiles.from_config(s.tls),
            ),
            BenchEntries(SessionStateMachine(StoreMachine(self._store), window=16)),
        )
        # A node down for this long has its tasks replaced elsewhere: long
        # enough to ride out a restart, short enough to watch it happen.
        self._control = ControlLoop(OrchestratorSettings(node_down_grace=NODE_DOWN_GRACE))
        # Our client session (§6.3): the id is the log index of its register
        # entry; it belongs to the term in which it was registered.
        self._client_id: int | None = None
        self._seq = itertools.count(1)
        self._in_flight: set[int] = set()
        self._session_lock = asyncio.Lock()
        self._by_request: collections.OrderedDict[str, int] = collections.OrderedDict()
        #: Secrets of running tasks, decrypted into memory only (never a disk).
        self._mounted: dict[str, dict[str, bytes]] = {}
        #: The worker agents' sessions and heartbeats (`cluster.control.dispatcher`), on the leader.
        self.dispatcher = Dispatcher(time.monotonic)
        self._leading = False
        #: Autolock: while locked the Raft node is not started (no vote, no
        #: log, no quorum share) and the API answers 503 but for a few routes.
        self.locked = False
        self._unlocked = asyncio.Event()
        self._unlocked.set()
        self._unlock_lock = asyncio.Lock()
        #: The unlock key, in memory only, when this manager was given it.
        self._unlock_key: str | None = None
        #: Every manager we know of: those of our config, then those that
        #: joined later, learnt from their node objects (`_learn_peers`).
        self.peers: dict[str, Peer] = dict(settings.peers)
        self._ca: CertificateAuthority | None = None

    # ------------------------------------------------------------ Backend

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def store(self) -> Store:
        return self._store

    @property
    def request_timeout(self) -> float:
        return self.settings.request_timeout

    def _check_unlocked(self) -> None:
        if self.locked:
            raise UnavailableError(LOCKED_MESSAGE.format(name=self.name))

    async def write(self, command: bytes, *, request_id: str | None = None) -> Result:
        self._check_unlocked()
        for attempt in range(2):
            client = await self._session()
            if request_id is not None and request_id in self._by_request:
                seq = self._by_request[request_id]
            else:
                seq = next(self._seq)
                if request_id is not None:
                    self._by_request[request_id] = seq
                    while len(self._by_request) > REQUEST_ID_MEMORY:
                        self._by_request.popitem(last=False)
            ack = min(self._in_flight, default=seq)
            self._in_flight.add(seq)
            try:
                answer = await self._propose(encode_command(client, seq, command, ack=ack))
            finally:
                self._in_flight.discard(seq)
            if isinstance(answer, SessionError):
                if answer.kind == "expired" and attempt == 0:
                    # Our session was dropped (or never reached this log): the
                    # command was not applied; open a new session and retry.
                    self._client_id = None
                    self._by_request.pop(request_id or "", None)
                    continue
                raise UnavailableError(f"the outcome of this write is unknown: {answer.detail}")
            if isinstance(answer, CommandFailed):
                raise UnavailableError(f"the state machine failed: {answer.message}")
            return decode_answer(answer)
        raise UnavailableError("could not open a client session")

    async def _session(self) -> int:
        if self._client_id is not None:
            return self._client_id  # the usual case: no lock to take on every write
        async with self._session_lock:  # one registration, however many writers wait
            return await self._open_session()

    async def _open_session(self) -> int:
        if self._client_id is None:
            client = await self._propose(encode_register())
            if not isinstance(client, int):
                raise UnavailableError(f"could not open a client session: {client}")
            self._client_id = client
            self._seq = itertools.count(1)
            self._in_flight.clear()
            self._by_request.clear()
        return self._client_id

    async def _propose(self, data: bytes) -> Any:
        try:
            return await self.node.propose(data, timeout=self.request_timeout)
        except NotLeader as e:
            raise self._not_leader(e.leader) from None
        except ProposalDropped as e:
            raise UnavailableError(str(e)) from None
        except ProposalTimeout:
            raise NoQuorumError(
                f"the write did not commit within {self.request_timeout:g}s: the leader "
                "cannot reach a majority of managers (it may still commit later)"
            ) from None
        except ProposalLost:
            raise UnavailableError(
                "leadership changed while the write was in flight and it was not kept; "
                "retry the request"
            ) from None
        except NodeStopped as e:
            raise UnavailableError(f"this manager is stopping: {e}") from None

    async def read_barrier(self, timeout: float) -> None:
        self._check_unlocked()
        try:
            await self.node.read_index(timeout=timeout)
        except NotLeader as e:
            # No leader to ask, or it stepped down mid-read: the API answers
            # 503 (or forwards the read to the leader named).
            if e.leader is None:
                raise NoQuorumError() from None
            raise self._not_leader(e.leader) from None
        except ProposalTimeout:
            raise NoQuorumError(
                f"no leader confirmed a read within {timeout:g}s: there is no quorum"
            ) from None
        except NodeStopped as e:
            raise UnavailableError(f"this manager is stopping: {e}") from None

    def data_key(self) -> crypto.DataKey:
        self._check_unlocked()
        if self._dek is None:
            self._dek = self._unwrap_dek()
        return self._dek

    def raft_status(self) -> dict[str, Any]:
        if self.locked:
            return {
                "name": self.name,
                "node_id": self.settings.node_id,
                "role": "locked",
                "locked": True,
                "term": 0,
                "leader": None,
                "commit_index": 0,
                "applied_index": 0,
                "last_log_index": 0,
                "api_url": self.api_url,
                "pid": os.getpid(),
                "initialised": False,
            }
        st = self.node.status()
        st["name"] = self.name
        st["node_id"] = self.settings.node_id
        leader = st.get("leader")
        st["leader_api_url"] = self.peers[leader].api_url if leader in self.peers else None
        st["api_url"] = self.api_url
        st["pid"] = os.getpid()
        st["initialised"] = self._store.cluster() is not None
        # Autolock in force here: a restart would come back locked.
        st["autolock"] = not self._kek_file.exists()
        return st

    async def transfer_leadership(self, target: str | None) -> str:
        self._check_unlocked()
        if target is not None and target not in self.peers:
            if self._store.find_by_name("node", target) is not None:
                raise FailedPrecondition(f"{target} is not a manager: only a manager can lead")
            raise NotFound(f"node {target} not found")
        try:
            chosen = self.node.transfer_leadership(target)
        except NotLeader as e:
            raise self._not_leader(e.leader) from None
        except ConfChangeError as e:
            raise FailedPrecondition(str(e)) from None
        # Wait (bounded) for the outcome so the caller learns whether it worked.
        deadline = time.monotonic() + self.settings.election_timeout * 2
        while time.monotonic() < deadline:
            leader = self.node.status().get("leader")
            if leader == chosen:
                return chosen
            await asyncio.sleep(self.settings.tick_interval)
        raise FailedPrecondition(f"leadership transfer to {chosen} did not complete")

    async def bench_proposals(
        self, outstanding: int, size: int, duration: float, max_ops: int
    ) -> dict[str, Any]:
        """Propose no-op entries (`BenchEntries`) from inside the leader, keeping
        ``outstanding`` in flight for ``duration`` seconds or ``max_ops`` entries;
        returns each one's latency (propose -> applied here) in milliseconds."""
        if not self.node.is_leader:
            raise self._not_leader(self.node.status().get("leader"))
        outstanding = max(1, min(outstanding, BENCH_MAX_OUTSTANDING))
        data = BENCH_MARK + bytes(max(0, min(size, BENCH_MAX_SIZE) - 1))
        latencies: list[float] = []
        errors = 0
        issued = 0
        clock = time.perf_counter
        start = clock()
        end = start + max(0.0, min(duration, BENCH_MAX_SECONDS))

        async def proposer() -> None:
            nonlocal issued, errors
            while issued < max_ops and clock() < end:
                issued += 1
                t0 = clock()
                try:
                    await self.node.propose(data, timeout=self.request_timeout)
                except (NotLeader, ProposalDropped, ProposalTimeout, ProposalLost):
                    errors += 1
                    await asyncio.sleep(0.01)
                    continue
                latencies.append((clock() - t0) * 1000)

        async with asyncio.TaskGroup() as tg:
            for _ in range(outstanding):
                tg.create_task(proposer())
        return {"latencies_ms": latencies, "elapsed_s": clock() - start, "errors": errors}

    def info(self) -> dict[str, Any]:
        s = self.settings
        st = self.node.status()
        return {
            "Managers": len(st.get("voters", s.peers)),
            "Nodes": self._store.count("node"),
            "LocalNodeState": "locked" if self.locked else "active",
            "Raft": {
                "HeartbeatTick": s.heartbeat_ticks,
                "ElectionTick": s.election_ticks,
                "SnapshotInterval": s.snapshot_entries,
                "TickInterval": s.tick_interval,
            },
        }

    # ------------------------------------------------------------ lifecycle

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def manager_urls(self) -> dict[str, str]:
        """Every manager's API URL by name."""
        return {name: p.api_url for name, p in self.peers.items()}

    @property
    def swarm_urls(self) -> dict[str, str]:
        """Every manager's swarm URL by name (workers learn them on registration)."""
        return {name: p.swarm_url for name, p in self.peers.items() if p.swarm_url}

    @property
    def cluster_id(self) -> str:
        return self.settings.cluster_id

    @property
    def swarm_url(self) -> str | None:
        port = self.settings.swarm_port
        return f"https://{self.settings.api_host}:{port}" if port else None

    def require_leader(self) -> None:
        """`NotLeaderError` (the API forwards) unless this manager leads now."""
        self._check_unlocked()
        if not self.node.is_leader:
            raise self._not_leader(self.node.status().get("leader"))

    def _not_leader(self, leader: str | None) -> NotLeaderError:
        peer = self.peers.get(leader) if leader else None
        return NotLeaderError(leader, peer.api_url if peer else None)

    # ------------------------------------------------------------ autolock

    @property
    def _kek_file(self) -> Path:
        return self.settings.data_dir / "keys" / "kek"

    @property
    def _fingerprint_file(self) -> Path:
        """With autolock: the KEK's public ID (a hash), to check an unlock key against."""
        return self.settings.data_dir / "keys" / "kek.fingerprint"

    def open_keys(self, unlock_key: str | None) -> None:
        """At start: a KEK file means no autolock; a fingerprint file means locked
        unless ``unlock_key`` (from the supervisor, on stdin) matches it."""
        if self._kek_file.exists() or not self._fingerprint_file.exists():
            return  # the KEK is read from its file when first needed
        if unlock_key is not None:
            try:
                self._accept_unlock_key(unlock_key)
                return
            except StoreError as e:
                logger.error("%s: the unlock key given at start was refused: %s", self.name, e)
        self.locked = True
        self._unlocked.clear()
        logger.warning("%s: swarm is locked; waiting for the unlock key", self.name)

    def _accept_unlock_key(self, unlock_key: str) -> None:
        """Check a key against the stored fingerprint (never the key) and keep it."""
        try:
            kek = crypto.kek_from_unlock_key(unlock_key)
        except ValueError as e:
            raise store_errors.InvalidArgument(str(e)) from None
        try:
            want = self._fingerprint_file.read_text().strip()
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
            self._accept_unlock_key(unlock_key)
            self.open_node_key()
            await self.node.start()
            self.locked = False
            self._follow_keys()  # unwrap the DEK from our own log before it moves on
            self._unlocked.set()
        logger.info("%s: unlocked", self.name)

    def _follow_keys(self) -> None:
        """Keep this manager's key files in step with the replicated keyring.

        The wrapped DEK names the KEK that wrapped it (its public ID), and the
        cluster spec says whether autolock is on.  Every manager: unwraps the
        DEK into memory as soon as it can; with autolock it keeps only the
        KEK's fingerprint on disk (so a rotated key is what it asks for after
        a restart); without autolock it keeps the KEK itself, when it has it.
        """
        entry = self._store.active_data_key()
        cluster = self._store.cluster()
        if entry is None or cluster is None:
            return
        _, kek_id = crypto.wrapped_key_ids(entry["Wrapped"])
        if self._dek is None and self._kek is not None and self._kek.key_id == kek_id:
            with contextlib.suppress(crypto.DecryptionError):
                self._dek = crypto.unwrap_dek(entry["Wrapped"], self._kek)
        autolock = cluster["Spec"].get("EncryptionConfig", {}).get("AutoLockManagers", False)
        try:
            if autolock:
                if self._kek is None and self._kek_file.exists():
                    self._kek = self._load_kek()
                node_keys.write_private(self._fingerprint_file, kek_id.encode())
                self._kek_file.unlink(missing_ok=True)
            elif self._kek is not None and self._kek.key_id == kek_id:
                node_keys.write_private(self._kek_file, self._kek.secret_bytes())
                self._fingerprint_file.unlink(missing_ok=True)
            self._follow_node_key(autolock, entry["Wrapped"])
        except OSError as e:
            logger.error("%s: cannot update the key files: %s", self.name, e)

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
        """
        tls = self.settings.tls
        if not tls or not node_keys.is_sealed(Path(tls["key"])):
            return
        if self._dek is None:
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
        """Our certificate's files, with the password if ``node.key`` is sealed."""
        tls = self.settings.tls
        if not tls:
            return None
        password = None
        if node_keys.is_sealed(Path(tls["key"])) and self._dek is not None:
            password = node_keys.key_password(self._dek)
        return TLSFiles.from_config(tls, password)

    def unlock_key(self) -> str:
        """The current unlock key, if this manager holds it in memory."""
        self.require_leader()
        entry = self._store.active_data_key()
        current = crypto.wrapped_key_ids(entry["Wrapped"])[1] if entry else None
        if self._unlock_key is None or self._kek is None or self._kek.key_id != current:
            raise FailedPrecondition(
                f"the leader ({self.name}) does not hold the current unlock key in memory; "
                "make a new one with: swarm unlock-key --rotate"
            )
        return self._unlock_key

    async def update_swarm(
        self,
        version: int,
        spec: dict[str, Any],
        rotate_unlock_key: bool,
        rotate_join_tokens: tuple[str, ...] = (),
    ) -> tuple[dict[str, Any], str | None]:
        """``docker swarm update`` (autolock on/off), ``unlock-key --rotate`` and
        ``join-token --rotate`` (``rotate_join_tokens``: "Worker" and/or "Manager").

        Turning autolock on or rotating the key only rewraps the DEK under
        the KEK derived from a new unlock key (`crypto.rewrap_dek`'s job,
        done from the DEK in memory); the new wrapping, which names the new
        KEK's fingerprint, replicates with the spec in one entry.  Turning it
        off keeps the wrapping: each manager that holds the KEK writes it to
        its disk again.  Returns the cluster and the new key, if one was made.
        """
        self.require_leader()
        cluster = self._store.cluster()
        if cluster is None:
            raise UnavailableError("the swarm is not initialised yet")
        had = cluster["Spec"].get("EncryptionConfig", {}).get("AutoLockManagers", False)
        enc = spec.get("EncryptionConfig")
        want = bool(enc.get("AutoLockManagers", False)) if isinstance(enc, dict) else had
        spec = {**cluster["Spec"], **spec, "EncryptionConfig": {"AutoLockManagers": want}}
        now = time.time()
        # A rotated join token is refused from now on; nodes that joined with
        # it stay members (only registration checks a token).
        digest = joins.root_ca_digest(self.settings.tls)
        tokens = {role: commands.new_join_token(self._rng, digest) for role in rotate_join_tokens}
        parts = [commands.update_cluster(version, now, spec=spec, join_tokens=tokens or None)]
        new_key = kek = None
        if rotate_unlock_key and not want:
            raise FailedPrecondition("autolock is not enabled: there is no unlock key to rotate")
        if want and (rotate_unlock_key or not had):
            new_key = crypto.generate_unlock_key()
            kek = crypto.kek_from_unlock_key(new_key)
            parts.append(commands.put_data_key(crypto.wrap_dek(self.data_key(), kek), now))
        elif had and not want:
            entry = self._store.active_data_key()
            current = crypto.wrapped_key_ids(entry["Wrapped"])[1] if entry else None
            if self._kek is None or self._kek.key_id != current:
                raise FailedPrecondition(
                    f"the leader ({self.name}) does not hold the current unlock key; "
                    "rotate it first (swarm unlock-key --rotate), then turn autolock off"
                )
        result = await self.write(commands.batch(*parts))
        value = result.unwrap()
        if new_key is not None:
            self._kek, self._unlock_key = kek, new_key
        return value[0], new_key

    def _load_kek(self) -> crypto.KeyEncryptionKey:
        path = self.settings.data_dir / "keys" / "kek"
        try:
            return crypto.load_kek(path.read_bytes())
        except FileNotFoundError:
            raise UnavailableError("this manager has no key-encryption key") from None

    def _unwrap_dek(self) -> crypto.DataKey:
        if self._kek is None:
            self._kek = self._load_kek()
        entry = self._store.active_data_key()
        if entry is None:
            raise UnavailableError("the swarm is not initialised yet (no data key)")
        try:
            return crypto.unwrap_dek(entry["Wrapped"], self._kek)
        except crypto.DecryptionError:
            raise UnavailableError(
                "this manager cannot unwrap the data key (its key-encryption key is not "
                "the current one); restart and unlock it with the current unlock key"
            ) from None

    def reload_faults(self) -> None:
        """SIGHUP: the supervisor rewrote ``faults.json`` (partition / heal)."""
        path = self.node.fault_filter.path
        try:
            rules = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as e:
            logger.error("%s: cannot read %s: %s", self.name, path, e)
            return
        self.node.fault_filter.replace(rules)
        logger.info("%s: network fault rules reloaded", self.name)

    async def run_duties(self) -> None:
        """The leader's control loop; on followers only the keys are followed."""
        await self._unlocked.wait()
        while True:
            await asyncio.sleep(DUTY_INTERVAL)
            self._follow_keys()
            self._learn_peers()
            if not self.node.is_leader:
                self._client_id = None  # a new leadership opens a new session
                self._leading = False
                continue
            if not self._leading:
                self._leading = True
                self.dispatcher.reset()  # workers register again with the new leader
            try:
                await self._bootstrap()
                await self._reconcile_members()
                await self._report_managers()
                await self._watch_workers()
                await self._orchestrate()
            except (NotLeaderError, NoQuorumError, UnavailableError) as e:
                logger.debug("%s: leader duty deferred: %s", self.name, e)

    async def wait_unlocked(self) -> None:
        await self._unlocked.wait()

    async def wait_stopped(self) -> None:
        """Until the Raft node stops (after an unlock, if locked at start)."""
        await self._unlocked.wait()
        await self.node.wait_stopped()

    async def _reconcile_members(self) -> None:
        """Make Raft's voters follow the managers in the store (dissertation §4).

        ``node promote`` / ``node demote`` change a node's role in the store;
        this loop then changes the Raft configuration, one server at a time:
        a new manager first joins as a learner and becomes a voter only once
        it has caught up (the core refuses earlier), a demoted one becomes a
        learner.  Each step waits for the previous one to commit.
        """
        st = self.node.status()
        voters, learners = set(st.get("voters", [])), set(st.get("learners", []))
        for node in self._store.list("node"):
            name = node.get("Description", {}).get("Hostname")
            if name not in self.peers:
                continue  # no Raft address known for it: not a manager process of ours
            want_voter = node["Spec"].get("Role") == "manager"
            change = None
            if want_voter and name in learners:
                change = ConfChange(ConfChangeOp.PROMOTE, name)
            elif want_voter and name not in voters:
                change = ConfChange(ConfChangeOp.ADD_LEARNER, name)
            elif not want_voter and name in voters and len(voters) > 1:
                if name == self.name and await self._hand_over():
                    return  # the next leader demotes us
                change = ConfChange(ConfChangeOp.DEMOTE, name)
            if change is None:
                continue
            try:
                await self.node.propose_conf_change(change, timeout=self.request_timeout)
                logger.info("%s: membership: %s %s", self.name, change.op.value, name)
            except (ConfChangeError, ProposalDropped) as e:
                logger.debug("%s: membership change deferred: %s", self.name, e)
            except (ProposalTimeout, ProposalLost, NotLeader):
                pass
            return  # one change at a time
        await self._remove_gone_learners(learners)

    async def _hand_over(self) -> bool:
        """Demoting the leader itself: hand leadership over first (§3.10).

        Demoting ourselves directly works too -- a leader removed from the
        voters steps down once the change commits -- but then the cluster
        waits an election timeout with no leader and writes fail meanwhile;
        a transfer takes a round trip, and the next leader does the demotion.
        Swarm's managers do the same.  False if no transfer happened (then we
        demote ourselves after all).
        """
        try:
            chosen = await self.transfer_leadership(None)
        except (StoreError, NotLeaderError, UnavailableError) as e:
            logger.info("%s: no hand-over before demotion (%s); demoting itself", self.name, e)
            return False
        logger.info("%s: demoted: leadership handed to %s first", self.name, chosen)
        return True

    async def _remove_gone_learners(self, learners: set[str]) -> None:
        """A learner whose node was removed from the store (``node rm`` after a
        demotion) leaves the Raft configuration too, so the leader stops
        replicating to it.

        A configuration entry takes effect when appended (§4.1) but a node
        object only once applied, so a new leader may know a learner before
        it has applied the node that explains it: a read barrier first makes
        the store at least as new as every committed entry.
        """

        def gone() -> list[str]:
            names = {n.get("Description", {}).get("Hostname") for n in self._store.list("node")}
            return sorted(learners - names)

        if not learners or not gone():
            return
        await self.read_barrier(self.request_timeout)
        for name in gone()[:1]:  # one change at a time
            change = ConfChange(ConfChangeOp.REMOVE, name)
            try:
                await self.node.propose_conf_change(change, timeout=self.request_timeout)
                logger.info("%s: membership: remove %s (its node was removed)", self.name, name)
            except (ConfChangeError, ProposalDropped) as e:
                logger.debug("%s: membership change deferred: %s", self.name, e)
            except (ProposalTimeout, ProposalLost, NotLeader):
                pass

    async def _watch_workers(self) -> None:
        """Mark worker agents down when their heartbeats stop, ready when they resume."""
        workers = [n for n in self._store.list("node") if is_worker_node(n, self.peers)]
        changes = self.dispatcher.node_updates(workers)
        if changes:
            now = time.time()
            await self.write(
                commands.batch(*(commands.set_node_status(n, now, state=s) for n, s in changes))
            )
            logger.info("%s: workers %s", self.name, ", ".join(f"{n} {s}" for n, s in changes))

    async def _orchestrate(self) -> None:
        """Services -> tasks -> nodes (`cluster.control.orchestrator`); one entry per command."""
        for cmd in self._control.step(self._store, time.time()):
            result = await self.write(cmd)
            if not result.ok:
                logger.debug("%s: orchestrator command refused: %s", self.name, result.error)

    async def run_agent(self) -> None:
        """Play the containers of the tasks assigned to this node (`cluster.control.agent`)."""
        import aiohttp

        await self._unlocked.wait()
        async with aiohttp.ClientSession() as http:
            while True:
                await asyncio.sleep(DUTY_INTERVAL)
                if self._store.cluster() is None:
                    continue
                tasks = self._store.tasks()
                self._mount_secrets(tasks)
                for report in agent.next_reports(self.settings.node_id, tasks):
                    try:
                        await self._send_report(http, report)
                    except (NotLeaderError, NoQuorumError, UnavailableError) as e:
                        logger.debug("%s: task report deferred: %s", self.name, e)
                        break

    async def _send_report(self, http: Any, r: agent.Report) -> None:
        cmd = commands.update_task(
            r.task_id, time.time(), state=r.state, message=r.message, err=r.err or None
        )
        try:
            await self.write(cmd)
            return
        except NotLeaderError as e:
            if e.leader_api_url is None:
                raise
            url = e.leader_api_url
        body = {"State": r.state, "Message": r.message}
        if r.err:
            body["Err"] = r.err
        import aiohttp

        try:
            async with asyncio.timeout(self.request_timeout):
                async with http.post(f"{url}/tasks/{r.task_id}/status", json=body):
                    pass
        except (aiohttp.ClientError, TimeoutError) as e:
            # The leader we knew of just died or moved: try again next round.
            raise UnavailableError(f"the leader did not take the report: {e}") from None

    def _mount_secrets(self, tasks: list[dict[str, Any]]) -> None:
        """Decrypt the secrets of this node's running tasks into memory; drop the rest."""
        mine = {
            t["ID"]: t
            for t in tasks
            if t.get("NodeID") == self.settings.node_id
            and t.get("Status", {}).get("State") == "running"
        }
        for task_id in list(self._mounted):
            if task_id not in mine:
                del self._mounted[task_id]  # the task ended: its secrets go
        for task_id, t in mine.items():
            if task_id in self._mounted:
                continue
            files: dict[str, bytes] = {}
            for secret_id, target in agent.wants_secrets(t):
                with contextlib.suppress(Exception):
                    sealed = self._store.sealed_secret(secret_id)
                    files[target] = crypto.decrypt_secret(self.data_key(), secret_id, sealed)
            self._mounted[task_id] = files

    def mounted_secrets(self) -> dict[str, list[str]]:
        """Which task holds which secret files -- names only, never the data."""
        return {task: sorted(files) for task, files in self._mounted.items()}

    async def _bootstrap(self) -> None:
        """``docker swarm init`` on the first leader: the cluster, its keys, its managers."""
        if self._store.cluster() is not None:
            await self._replicate_root_ca()
            return
        now = time.time()
        if self._kek is None:
            self._kek = self._load_kek()
        dek = crypto.generate_dek()
        digest = joins.root_ca_digest(self.settings.tls)
        parts = [
            commands.init_cluster(
                self.settings.cluster_id,
                now,
                worker_token=commands.new_join_token(self._rng, digest),
                manager_token=commands.new_join_token(self._rng, digest),
                spec={
                    "Raft": self._raft_spec(),
                    "EncryptionConfig": {"AutoLockManagers": self.settings.autolock},
                },
            ),
            commands.put_data_key(crypto.wrap_dek(dek, self._kek), now),
        ]
        root_ca = joins.seal_root_ca(self.settings.tls, dek, now)
        if root_ca is not None:
            parts.append(root_ca)
        for name, peer in sorted(self.settings.peers.items()):
            parts.append(
                commands.create_node(
                    peer.node_id,
                    now,
                    hostname=name,
                    role="manager",
                    manager_addr=f"{peer.raft[0]}:{peer.raft[1]}",
                    description=joins.endpoints_description(peer),
                )
            )
        result = await self.write(commands.batch(*parts))
        if result.ok:
            logger.info("%s: swarm initialised with %d managers", self.name, len(self.peers))

    async def _replicate_root_ca(self) -> None:
        """A swarm initialised before its CA was replicated gets it now, once."""
        cluster = self._store.cluster()
        if cluster is None or cluster.get("TLSInfo", {}).get("TrustRoot"):
            return
        command = joins.seal_root_ca(self.settings.tls, self.data_key(), time.time())
        if command is not None:
            await self.write(command)

    def root_ca_pem(self) -> bytes:
        """The root certificate, PEM (public: newcomers check it against their token)."""
        if not self.settings.tls:
            raise UnavailableError("this swarm has no certificates (made before them)")
        return Path(self.settings.tls["ca"]).read_bytes()

    def certificate_authority(self) -> CertificateAuthority:
        """The root CA, opened from the store with the data key (leader's duty)."""
        if self._ca is None:
            self._ca = joins.open_root_ca(self._store, self.data_key())
        if self._ca is None:
            raise UnavailableError("this swarm has no certificate authority in its store yet")
        return self._ca

    def _learn_peers(self) -> None:
        """Managers that joined after us: their addresses, from their node objects."""
        learnt = joins.learn_peers(self._store, self.peers, Peer, self.name)
        if learnt is None:
            return
        changed = sorted(n for n in learnt if self.peers.get(n) != learnt[n])
        self.peers = learnt  # type: ignore[assignment]
        self.node.set_peer_addresses({name: p.raft for name, p in self.peers.items()})
        logger.info("%s: learnt the address of %s", self.name, ", ".join(changed))

    def _raft_spec(self) -> dict[str, Any]:
        s = self.settings
        return {
            "SnapshotInterval": s.snapshot_entries,
            "KeepOldSnapshots": 0,
            "LogEntriesForSlowFollowers": 500,
            "ElectionTick": s.election_ticks,
            "HeartbeatTick": s.heartbeat_ticks,
        }

    async def _report_managers(self) -> None:
        """Keep each manager's Leader / Reachability in the store up to date."""
        now = time.monotonic()
        limit = self.settings.election_timeout * UNREACHABLE_AFTER
        updates = []
        for name, peer in self.peers.items():
            try:
                node = self._store.get("node", peer.node_id)
            except NotFound:
                continue
            if name == self.name:
                reach, state = "reachable", "ready"
            else:
                heard = self.node.last_heard(name)
                alive = heard is not None and now - heard < limit
                reach, state = ("reachable", "ready") if alive else ("unreachable", "down")
            ms = node.get("ManagerStatus")
            want: dict[str, Any] | None = {
                "Leader": name == self.name,
                "Reachability": reach,
                "Addr": f"{peer.raft[0]}:{peer.raft[1]}",
            }
            if node["Spec"].get("Role") != "manager":
                want = None  # a worker shows no MANAGER STATUS
                same = ms is None
            else:
                same = ms is not None and {k: ms.get(k) for k in want} == want
            if not same or node["Status"]["State"] != state:
                updates.append(
                    commands.set_node_status(peer.node_id, time.time(), state=state, manager=want)
                )
        if updates:
            await self.write(commands.batch(*updates))


async def serve(settings: ManagerSettings, unlock_key: str | None = None) -> int:
    """Run one manager until SIGTERM/SIGINT; returns the exit status.

    ``unlock_key``: given by the supervisor on our stdin at a cluster's first
    start with autolock; without it an autolocked manager starts locked.
    """
    from cluster.api.server import run_api  # aiohttp is only needed by a serving manager

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    manager = Manager(settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, manager.reload_faults)
    manager.open_keys(unlock_key)
    # The API first: while the node loads its log and restores its snapshot
    # (seconds, for a big store) clients get a clear 503, not a refused connection.
    runner = await run_api(manager, settings.api_host, settings.api_port)
    if not manager.locked:
        try:
            manager.open_node_key()
            await manager.node.start()
        except UnavailableError as e:  # a sealed key we cannot open: say why, no traceback
            logger.error("cannot run %s: %s", settings.name, e.message)
            await runner.cleanup()
            return 2
        except BaseException:
            await runner.cleanup()
            raise
    info = {
        "pid": os.getpid(),
        "name": settings.name,
        "locked": manager.locked,
        "raft_port": manager.node.raft_port,
        "api_url": manager.api_url,
        "swarm_url": manager.swarm_url,
        "started": time.time(),
    }
    path = settings.data_dir / "manager.json"
    path.with_suffix(".tmp").write_text(json.dumps(info))
    os.replace(path.with_suffix(".tmp"), path)
    logger.info(
        "%s: serving %s, raft port %d%s",
        settings.name,
        manager.api_url,
        info["raft_port"],
        " (locked)" if manager.locked else "",
    )
    status = 0
    swarm_port: list[Any] = []  # its runner, once serving
    async with asyncio.TaskGroup() as tg:
        duties = tg.create_task(manager.run_duties())
        agent_task = tg.create_task(manager.run_agent())
        swarm_task = tg.create_task(_serve_swarm_port(manager, swarm_port))
        stopped = tg.create_task(manager.wait_stopped())
        waiter = tg.create_task(stop.wait())
        await asyncio.wait({stopped, waiter}, return_when=asyncio.FIRST_COMPLETED)
        for t in (duties, agent_task, swarm_task, stopped, waiter):
            t.cancel()
    logger.info("%s: stopping", settings.name)
    try:
        async with asyncio.timeout(10):
            await runner.cleanup()
            for swarm_runner in swarm_port:
                await swarm_runner.cleanup()
            await manager.node.stop()
    except TimeoutError:
        logger.error("%s: graceful stop timed out", settings.name)
        status = 1
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return 1 if manager.node.failure is not None else status


async def _serve_swarm_port(manager: Manager, runners: list[Any]) -> None:
    """The swarm port (`cluster.api.swarm`), once unlocked: it shows our certificate,
    whose key a locked manager cannot open."""
    s = manager.settings
    if not s.tls or not s.swarm_port:
        return
    from cluster.api.swarm import run_swarm_api

    await manager.wait_unlocked()
    files = manager.tls_files()
    assert files is not None
    runners.append(await run_swarm_api(manager, files, s.api_host, s.swarm_port))


def main(argv: list[str] | None = None) -> int:
    """``python -m cluster.manager --config DIR/managerN/config.json``."""
    # The supervisor signals SIGHUP when it rewrites our fault rules; until
    # the handler is installed an early one must not kill us (we read the
    # rules at start anyway).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    parser = argparse.ArgumentParser(prog="python -m cluster.manager", description=main.__doc__)
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        settings = ManagerSettings.load(args.config)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"cluster.manager.process: cannot read {args.config}: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format=f"%(asctime)s {settings.name} %(levelname)s %(message)s",
    )
    unlock_key = None
    if settings.autolock or (settings.data_dir / "keys" / "kek.fingerprint").exists():
        # The supervisor writes the unlock key on our stdin and closes it (or
        # gives us /dev/null); the key never touches a disk.
        with contextlib.suppress(OSError, ValueError):
            if not sys.stdin.isatty():
                unlock_key = sys.stdin.readline().strip() or None
    try:
        return asyncio.run(serve(settings, unlock_key))
    except KeyboardInterrupt:
        return 0
    except OSError as e:  # a port in use, a data directory held by another process
        logger.error("cannot run %s: %s", settings.name, e)
        return 2
