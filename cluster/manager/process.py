"""One Swarm manager: a Raft node replicating the `Store`, serving the HTTP API.

Theory of operation
-------------------

A manager is one OS process (``python -m cluster.manager --config FILE``)
that wires together:

* a `raft.runtime.node.RaftNode` whose state machine is this manager's `Store`
  replica (every manager applies the same commands in the same order;
  `machine.StoreMachine`, plus `bench.BenchEntries` for the benchmark);
* the HTTP API (`cluster.api.server`), which reads the local store and sends writes
  through `Manager.write` -> Raft (`backend.RaftBackend`: client sessions,
  read barriers, leadership transfer), and the swarm port (`cluster.api.swarm`),
  where nodes join and workers talk to the dispatcher over mutual TLS;
* the managers it knows (`peers.Peers`): those of its config, and those that
  joined later, learnt from their node objects so that Raft can dial them and
  the leader can add them to the configuration;
* the keys that seal secrets (`keyring.KeyRing`): a data-encryption key (DEK)
  replicated in the store *wrapped* by the key-encryption key (KEK) that each
  manager keeps in its data directory (or, with autolock, derives from the
  unlock key);
* the leader's duties (`duties.LeaderDuties`), run only while this manager
  leads: bootstrap a new swarm, follow the managers in Raft's configuration,
  keep each manager's ``ManagerStatus`` true in the store, and run the
  orchestrator (`cluster.control.orchestrator.ControlLoop`);
* the node's agent (`tasks.ManagerAgent`): managers run tasks too, as in Swarm;
* what it says about itself (`status`): ``/raft/status`` and ``/info``.

`Manager` owns those pieces and is what the API is given: it implements
`cluster.api.backend.Backend` (and the few extra calls the swarm port and the
admin routes look for) by handing each call to the piece that does that job.
Each piece gets the others it needs when it is made, so a reader can see
from a constructor what a part may touch.

The supervisor (`cluster.local.supervisor`) writes the config file, starts the
process, and changes its network faults by rewriting ``faults.json`` in the
data directory and sending SIGHUP: a paused manager picks the change up when
it resumes, a stopped one when it starts, so a partition survives restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.api.backend import UnavailableError
from cluster.control.dispatcher import Dispatcher
from cluster.control.orchestrator import ControlLoop
from cluster.control.orchestrator import Settings as OrchestratorSettings
from cluster.control.reconciler import Reconciler
from cluster.manager import joins, status
from cluster.manager.backend import RaftBackend
from cluster.manager.bench import BenchEntries, bench_proposals
from cluster.manager.certs import ManagerRenewal
from cluster.manager.duties import LeaderDuties
from cluster.manager.keyring import KeyRing
from cluster.manager.machine import StoreMachine
from cluster.manager.peers import Peer, Peers
from cluster.manager.rotation import RootRotation, trust_bundle
from cluster.manager.settings import ManagerSettings
from cluster.manager.tasks import ManagerAgent
from cluster.security import crypto, expiry
from cluster.security.renewal import Renewer
from cluster.state import commands
from cluster.state.errors import InvalidArgument
from cluster.state.store import Result, Store
from raft.core.session import SessionStateMachine
from raft.runtime import eventloop
from raft.runtime.disk import CorruptLogError
from raft.runtime.node import NodeSettings, RaftNode
from raft.runtime.tls import TLSFiles

if TYPE_CHECKING:  # pki loads ``cryptography`` (~9 MB): only joins and renewals need it
    from cluster.security.pki import CertificateAuthority

__all__ = ["EXIT_STORAGE_FAILED", "Manager", "ManagerSettings", "Peer", "main"]

logger = logging.getLogger("cluster.manager")

#: Exit status of a manager whose Raft storage failed (an fsync error): started
#: again (``up``, ``restart``), it recovers from what its disk really holds.
EXIT_STORAGE_FAILED = 3

#: Seconds a node may be down before its tasks are rescheduled elsewhere.
NODE_DOWN_GRACE = 10.0


class Manager:
    """The manager process's heart; implements `cluster.api.backend.Backend`.

    It builds the Raft node and the pieces that share it, then answers the
    API by delegation: nothing here decides anything on its own.
    """

    def __init__(self, settings: ManagerSettings) -> None:
        self.settings = settings
        self._store = Store()
        self._rng = random.Random()
        s = settings
        self.node = RaftNode(
            NodeSettings(
                id=s.name,
                cluster_id=s.cluster_id,
                peers={name: p.raft for name, p in s.peers.items()},
                voters=None if s.voters is None else tuple(s.voters),
                data_dir=s.data_dir / "raft",
                # 127.0.0.1, or in netns mode our address on the cluster's bridge.
                listen_host=s.api_host,
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
            BenchEntries(
                SessionStateMachine(
                    StoreMachine(self._store, before_new_key=lambda: self.keyring.keep_dek()),
                    window=16,
                )
            ),
        )
        # A node down for this long has its tasks replaced elsewhere: long
        # enough to ride out a restart, short enough to watch it happen.
        # Incremental passes over what changed, a full one now and then (`Reconciler`).
        control = Reconciler(ControlLoop(OrchestratorSettings(node_down_grace=NODE_DOWN_GRACE)))
        #: The worker agents' sessions and heartbeats (`cluster.control.dispatcher`), on the leader.
        self.dispatcher = Dispatcher(time.monotonic)
        #: Every manager we know of (`peers.Peers`), shared by every piece below.
        self._peers = Peers(s.name, s.peers)
        self.keyring = KeyRing(s, self._store, self.node)
        #: Root CA rotation: started by swarm update, followed by every manager.
        self.rotation = RootRotation(s.name, s.tls, self._store)
        self.backend = RaftBackend(
            s, self.node, self._store, self._peers, self.keyring.check_unlocked
        )
        self.duties = LeaderDuties(
            s,
            self._store,
            self.node,
            self._peers,
            self.keyring,
            self.backend,
            control,
            self.dispatcher,
            self._rng,
            self.rotation,
            lambda: self.renewer,
        )
        self.agent = ManagerAgent(s, self._store, self.backend, self.keyring)
        #: Renews our certificate before it expires (`certs`, `cluster.security.renewal`).
        self.certs = ManagerRenewal(s.name, self.node, self._peers, s.request_timeout)
        self.renewer: Renewer | None = None
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

    async def write(self, command: bytes, *, request_id: str | None = None) -> Result:
        return await self.backend.write(command, request_id=request_id)

    async def read_barrier(self, timeout: float) -> None:
        await self.backend.read_barrier(timeout)

    def data_key(self) -> crypto.DataKey:
        return self.keyring.data_key()

    def raft_status(self) -> dict[str, Any]:
        return status.raft_status(self.settings, self.node, self._store, self._peers, self.keyring)

    async def transfer_leadership(self, target: str | None) -> str:
        return await self.backend.transfer_leadership(target)

    def info(self) -> dict[str, Any]:
        return status.info(self.settings, self.node, self._store, self.locked)

    async def bench_proposals(
        self, outstanding: int, size: int, duration: float, max_ops: int
    ) -> dict[str, Any]:
        """Raw Raft proposals from inside the leader (`bench.bench_proposals`)."""
        return await bench_proposals(
            self.node,
            self.request_timeout,
            self._peers.not_leader,
            outstanding,
            size,
            duration,
            max_ops,
        )

    # ------------------------------------------------------------ who we are, who they are

    @property
    def peers(self) -> dict[str, Peer]:
        """Every manager we know of: those of our config, then those that joined."""
        return self._peers.known

    @property
    def api_url(self) -> str:
        return self.settings.api_url

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
        return self.settings.swarm_url

    def require_leader(self) -> None:
        """`NotLeaderError` (the API forwards) unless this manager leads now."""
        self.backend.require_leader()

    # ------------------------------------------------------------ the swarm (admin routes)

    def root_ca_pem(self) -> bytes:
        """The root certificate, PEM (public: newcomers check it against their token)."""
        if not self.settings.tls:
            raise UnavailableError("this swarm has no certificates (made before them)")
        stored = (self._store.cluster() or {}).get("TLSInfo", {}).get("TrustRoot")
        if stored:
            return str(stored).encode()
        return Path(self.settings.tls["ca"]).read_bytes()

    def trust_bundle_pem(self) -> bytes:
        """The roots every node must trust now: two during a rotation (`rotation`)."""
        return (trust_bundle(self._store.cluster()) or self.root_ca_pem().decode()).encode()

    def renewal_ca(self) -> tuple[CertificateAuthority, bytes, str]:
        """What ``POST /renew`` signs with: (CA, chain PEM to append, the CA's digest)."""
        return self.rotation.signing(self.certificate_authority(), self.data_key())

    def certificate_authority(self) -> CertificateAuthority:
        """The root CA, opened from the store with the data key (leader's duty)."""
        stored = (self._store.cluster() or {}).get("TLSInfo", {}).get("TrustRoot")
        if self._ca is not None and stored and self._ca.cert_pem().decode() != stored:
            self._ca = None  # a rotation ended: the new root signs from now on
        if self._ca is None:
            self._ca = joins.open_root_ca(self._store, self.data_key())
        if self._ca is None:
            raise UnavailableError("this swarm has no certificate authority in its store yet")
        return self._ca

    def mounted_secrets(self) -> dict[str, list[str]]:
        """Which task holds which secret files -- names only, never the data."""
        return self.agent.mounted_secrets()

    def files_held(self) -> dict[str, dict[str, list[str]]]:
        """This manager's own agent: the secret and config files its tasks hold (names)."""
        return self.agent.files_held()

    @property
    def locked(self) -> bool:
        """Autolock: locked until ``swarm unlock`` (`keyring.KeyRing`)."""
        return self.keyring.locked

    def open_keys(self, unlock_key: str | None) -> None:
        self.keyring.open_keys(unlock_key)

    def open_node_key(self) -> None:
        self.keyring.open_node_key()

    def tls_files(self) -> TLSFiles | None:
        return self.keyring.tls_files()

    async def unlock(self, unlock_key: str) -> None:
        """``docker swarm unlock``: start the Raft node once the key matches."""
        await self.keyring.unlock(unlock_key)

    def unlock_key(self) -> str:
        """The current unlock key, if this manager (the leader) holds it in memory."""
        self.require_leader()
        return self.keyring.unlock_key()

    async def update_swarm(
        self,
        version: int,
        spec: dict[str, Any],
        rotate_unlock_key: bool,
        rotate_join_tokens: tuple[str, ...] = (),
    ) -> tuple[dict[str, Any], str | None]:
        """``docker swarm update`` (autolock on/off), ``unlock-key --rotate`` and
        ``join-token --rotate`` (``rotate_join_tokens``: "Worker" and/or "Manager").

        The keys' part is `keyring.KeyRing.autolock_change`'s; it replicates
        with the spec in one entry.  Returns the cluster and the new unlock
        key, if one was made.
        """
        self.require_leader()
        cluster = self._store.cluster()
        if cluster is None:
            raise UnavailableError("the swarm is not initialised yet")
        had = cluster["Spec"].get("EncryptionConfig", {}).get("AutoLockManagers", False)
        enc = spec.get("EncryptionConfig")
        want = bool(enc.get("AutoLockManagers", False)) if isinstance(enc, dict) else had
        spec = {**cluster["Spec"], **spec, "EncryptionConfig": {"AutoLockManagers": want}}
        try:
            expiry.check_expiry(spec)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
        now = time.time()
        # A rotated join token is refused from now on; nodes that joined with
        # it stay members (only registration checks a token).
        digest = joins.root_ca_digest(self.settings.tls)
        tokens = {role: commands.new_join_token(self._rng, digest) for role in rotate_join_tokens}
        parts = [commands.update_cluster(version, now, spec=spec, join_tokens=tokens or None)]
        keys = self.keyring.autolock_change(had, want, rotate_unlock_key, now)
        # `swarm ca --rotate` raises CAConfig.ForceRotate, as Docker's does.
        old_ca, new_ca = cluster["Spec"].get("CAConfig") or {}, spec.get("CAConfig") or {}
        if new_ca.get("ForceRotate", 0) != old_ca.get("ForceRotate", 0):
            start = self.rotation.start_command(self.certificate_authority(), self.data_key(), now)
            parts.append(start)
        result = await self.write(commands.batch(*parts, *keys.commands))
        value = result.unwrap()
        self.keyring.adopt(keys)
        return value[0], keys.unlock_key

    # ------------------------------------------------------------ lifecycle

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
        """The leader's control loop (`duties.LeaderDuties`); followers follow the keys."""
        await self.duties.run()

    async def run_renewal(self) -> None:
        """Renew our certificate before it expires, for as long as we run."""
        files = self.tls_files()
        if files is None or not self.settings.swarm_port:
            return
        await self.keyring.wait_unlocked()
        self.renewer = self.certs.renewer(files, self._rng)
        await self.renewer.run()

    async def run_agent(self) -> None:
        """Play the containers of the tasks assigned to this node (`tasks.ManagerAgent`)."""
        await self.agent.run()

    async def wait_unlocked(self) -> None:
        await self.keyring.wait_unlocked()

    async def wait_stopped(self) -> None:
        """Until the Raft node stops (after an unlock, if locked at start)."""
        await self.keyring.wait_unlocked()
        await self.node.wait_stopped()


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
        except (UnavailableError, CorruptLogError) as e:
            # A sealed key we cannot open, a data directory that lost or
            # damaged a file: say why in one line, no traceback.  A restart
            # would fail the same way, so the reason is left for `status`.
            reason = e.message if isinstance(e, UnavailableError) else str(e)
            logger.error("cannot run %s: %s", settings.name, reason)
            leave_exit_reason(settings, reason)
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
    try:
        path.with_suffix(".tmp").write_text(json.dumps(info))
        os.replace(path.with_suffix(".tmp"), path)
    except OSError as e:
        # What we are, for people; no part of Raft.  On a full disk the
        # manager still serves reads and answers writes with 507, as a
        # running one does (docs/architecture.md, "Disks that fill or fail").
        path.with_suffix(".tmp").unlink(missing_ok=True)
        logger.warning("%s: cannot write %s: %s", settings.name, path, e.strerror or e)
    logger.info(
        "%s: serving %s, raft port %d%s, on %s",
        settings.name,
        manager.api_url,
        info["raft_port"],
        " (locked)" if manager.locked else "",
        eventloop.loop_name(asyncio.get_running_loop()),
    )
    status = 0
    swarm_port: list[Any] = []  # its runner, once serving
    async with asyncio.TaskGroup() as tg:
        duties = tg.create_task(manager.run_duties())
        agent_task = tg.create_task(manager.run_agent())
        swarm_task = tg.create_task(_serve_swarm_port(manager, swarm_port))
        renewal = tg.create_task(manager.run_renewal())
        stopped = tg.create_task(manager.wait_stopped())
        waiter = tg.create_task(stop.wait())
        await asyncio.wait({stopped, waiter}, return_when=asyncio.FIRST_COMPLETED)
        for t in (duties, agent_task, swarm_task, renewal, stopped, waiter):
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
    if manager.node.failure is not None:
        # The node logged the one-line reason; `status` shows it too.
        leave_exit_reason(settings, manager.node.failure_cause or "failed")
    if manager.node.storage_failed:
        # The exit status says "storage" (EXIT_STORAGE_FAILED) so that
        # whoever restarts us knows why.
        return EXIT_STORAGE_FAILED
    return 1 if manager.node.failure is not None else status


def leave_exit_reason(settings: ManagerSettings, reason: str) -> None:
    """Write one line saying why we stop where the supervisor looks (`exit_reason_file`).

    Best effort: the disk that failed may refuse this write too, and the
    log line is written anyway.
    """
    path = settings.exit_reason_file
    if path is None:
        return
    line = " ".join(reason.split())[:300] + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(line)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


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
        return eventloop.run(serve(settings, unlock_key))
    except KeyboardInterrupt:
        return 0
    except OSError as e:  # a port in use, a data directory held by another process
        logger.error("cannot run %s: %s", settings.name, e)
        leave_exit_reason(settings, f"cannot run: {e}")
        return 2
