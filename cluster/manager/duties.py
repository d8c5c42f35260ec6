"""The leader's duties: the loop that turns the replicated state into work.

Theory of operation
-------------------
Every `DUTY_INTERVAL` seconds, on every manager, `LeaderDuties.run` first
does what any manager must (follow the replicated keyring into its key
files, learn the managers that joined), then -- only while this manager
leads -- the leader's work, in this order:

1. **bootstrap** a new swarm (``docker swarm init``): the cluster object,
   join tokens carrying the root CA's digest, the DEK wrapped by our KEK,
   the root CA sealed by the DEK, one node object per founding manager --
   one entry, so a swarm is initialised whole or not at all;
2. **reconcile the members**: make Raft's voters follow the managers in the
   store (dissertation §4), one configuration change at a time;
3. **report the managers**: keep each manager's ``ManagerStatus`` (Leader /
   Reachable / Unreachable) true in the store, the way ``docker node ls``
   shows it;
4. **watch the workers**: mark worker agents down when their heartbeats stop
   (`cluster.control.dispatcher`), and undo manager joins that nobody
   claimed (`joins.abandoned_joins`);
5. **orchestrate**: services -> tasks -> nodes
   (`cluster.control.orchestrator.ControlLoop`, run on what changed by
   `cluster.control.reconciler.Reconciler`).

Each duty writes through Raft like any client (`backend.RaftBackend.write`),
so a leader that lost its quorum just fails to write and tries again next
tick.  A separate module because these are the only decisions a manager
takes on its own; everything else answers a request.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from cluster.api.backend import NoQuorumError, NotLeaderError, UnavailableError
from cluster.control.dispatcher import Dispatcher, is_worker_node
from cluster.control.reconciler import Reconciler
from cluster.manager import joins
from cluster.manager.backend import RaftBackend
from cluster.manager.keyring import KeyRing
from cluster.manager.peers import Peers
from cluster.manager.rotation import RootRotation
from cluster.manager.settings import ManagerSettings
from cluster.security import crypto
from cluster.security.renewal import Renewer
from cluster.state import commands
from cluster.state.errors import NotFound, StoreError
from cluster.state.store import Store
from raft.core.protocol import ConfChange, ConfChangeError, ConfChangeOp, NotLeader, ProposalDropped
from raft.runtime.node import ProposalLost, ProposalTimeout, RaftNode

__all__ = ["DUTY_INTERVAL", "UNREACHABLE_AFTER", "LeaderDuties"]

logger = logging.getLogger("cluster.manager")

#: How often the leader's duties loop looks at the world.
DUTY_INTERVAL = 0.25
#: A manager not heard from for this many election timeouts is "Unreachable".
UNREACHABLE_AFTER = 2.0


class LeaderDuties:
    """The duties loop of one manager; the leader's work runs only while it leads."""

    def __init__(
        self,
        settings: ManagerSettings,
        store: Store,
        node: RaftNode,
        peers: Peers,
        keyring: KeyRing,
        backend: RaftBackend,
        control: Reconciler,
        dispatcher: Dispatcher,
        rng: random.Random,
        rotation: RootRotation,
        renewer: Callable[[], Renewer | None],
    ) -> None:
        self.settings = settings
        self.store = store
        self.node = node
        self.peers = peers
        self.keyring = keyring
        self.backend = backend
        self.control = control
        self.dispatcher = dispatcher
        self.rng = rng
        self.rotation = rotation
        self._renewer = renewer
        self._leading = False
        #: `time.monotonic()` when this manager last became leader.
        self._leading_since = 0.0

    @property
    def name(self) -> str:
        return self.settings.name

    async def run(self) -> None:
        """The leader's control loop; on followers only the keys are followed."""
        await self.keyring.wait_unlocked()
        while True:
            await asyncio.sleep(DUTY_INTERVAL)
            self.keyring.follow_keys()
            self.rotation.follow(self._renewer())
            self._learn_peers()
            if not self.node.is_leader:
                self.backend.drop_session()  # a new leadership opens a new session
                self._leading = False
                continue
            if not self._leading:
                self._leading = True
                self._leading_since = time.monotonic()
                self.dispatcher.reset()  # workers register again with the new leader
                self.control.reset()  # and the control loop starts with a full pass
            try:
                await self._bootstrap()
                await self._reconcile_members()
                await self._report_managers()
                await self._watch_workers()
                await self._undo_abandoned_joins()
                await self._finish_rotation()
                await self._orchestrate()
            except (NotLeaderError, NoQuorumError, UnavailableError) as e:
                logger.debug("%s: leader duty deferred: %s", self.name, e)

    def _learn_peers(self) -> None:
        """Managers that joined after us: their addresses, from their node objects."""
        changed = self.peers.learn(self.store)
        if not changed:
            return
        self.node.set_peer_addresses(self.peers.raft_addresses())
        logger.info("%s: learnt the address of %s", self.name, ", ".join(changed))

    # ------------------------------------------------------------ swarm init

    async def _bootstrap(self) -> None:
        """``docker swarm init`` on the first leader: the cluster, its keys, its managers."""
        if self.store.cluster() is not None:
            await self._replicate_root_ca()
            return
        now = time.time()
        # With autolock, `up` made the data key already (our sealed TLS key opens
        # with it): adopt it rather than make another.
        dek = self.keyring.founding_dek() or crypto.generate_dek()
        wrapped = self.keyring.wrap_new_dek(dek)
        digest = joins.root_ca_digest(self.settings.tls)
        parts = [
            commands.init_cluster(
                self.settings.cluster_id,
                now,
                worker_token=commands.new_join_token(self.rng, digest),
                manager_token=commands.new_join_token(self.rng, digest),
                spec={
                    "Raft": self._raft_spec(),
                    "EncryptionConfig": {"AutoLockManagers": self.settings.autolock},
                },
            ),
            commands.put_data_key(wrapped, now),
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
        result = await self.backend.write(commands.batch(*parts))
        if result.ok:
            logger.info("%s: swarm initialised with %d managers", self.name, len(self.peers.known))

    async def _replicate_root_ca(self) -> None:
        """A swarm initialised before its CA was replicated gets it now, once."""
        cluster = self.store.cluster()
        if cluster is None or cluster.get("TLSInfo", {}).get("TrustRoot"):
            return
        command = joins.seal_root_ca(self.settings.tls, self.keyring.data_key(), time.time())
        if command is not None:
            await self.backend.write(command)

    def _raft_spec(self) -> dict[str, Any]:
        s = self.settings
        return {
            "SnapshotInterval": s.snapshot_entries,
            "KeepOldSnapshots": 0,
            "LogEntriesForSlowFollowers": 500,
            "ElectionTick": s.election_ticks,
            "HeartbeatTick": s.heartbeat_ticks,
        }

    # ------------------------------------------------------------ membership

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
        for node in self.store.list("node"):
            name = node.get("Description", {}).get("Hostname")
            if name not in self.peers.known:
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
                await self.node.propose_conf_change(change, timeout=self.backend.request_timeout)
                logger.info("%s: membership: %s %s", self.name, change.op.value, name)
            except ConfChangeError as e:
                # Refused, so nothing changed (a learner still catching up, or
                # down): try the next manager rather than let one that cannot be
                # promoted hold every other one back.  The core still allows
                # one pending change at a time (dissertation §4.1).
                logger.debug("%s: membership change deferred: %s", self.name, e)
                continue
            except ProposalDropped as e:
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
            chosen = await self.backend.transfer_leadership(None)
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
            names = {n.get("Description", {}).get("Hostname") for n in self.store.list("node")}
            return sorted(learners - names)

        if not learners or not gone():
            return
        await self.backend.read_barrier(self.backend.request_timeout)
        for name in gone()[:1]:  # one change at a time
            change = ConfChange(ConfChangeOp.REMOVE, name)
            try:
                await self.node.propose_conf_change(change, timeout=self.backend.request_timeout)
                logger.info("%s: membership: remove %s (its node was removed)", self.name, name)
            except (ConfChangeError, ProposalDropped) as e:
                logger.debug("%s: membership change deferred: %s", self.name, e)
            except (ProposalTimeout, ProposalLost, NotLeader):
                pass

    # ------------------------------------------------------------ nodes' status

    async def _report_managers(self) -> None:
        """Keep each manager's Leader / Reachability in the store up to date."""
        now = time.monotonic()
        limit = self.settings.election_timeout * UNREACHABLE_AFTER
        updates = []
        for name, peer in self.peers.known.items():
            try:
                node = self.store.get("node", peer.node_id)
            except NotFound:
                continue
            heard = self.node.last_heard(name)
            if name == self.name:
                reach, state = "reachable", "ready"
            elif heard is None and node["Status"]["State"] == "unknown":
                continue  # joined, never seen: "unknown" until it shows up (or is undone)
            else:
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
            await self.backend.write(commands.batch(*updates))

    async def _watch_workers(self) -> None:
        """Mark worker agents down when their heartbeats stop, ready when they resume."""
        workers = [n for n in self.store.list("node") if is_worker_node(n, self.peers.known)]
        changes = self.dispatcher.node_updates(workers)
        if changes:
            now = time.time()
            await self.backend.write(
                commands.batch(*(commands.set_node_status(n, now, state=s) for n, s in changes))
            )
            logger.info("%s: workers %s", self.name, ", ".join(f"{n} {s}" for n, s in changes))

    async def _undo_abandoned_joins(self) -> None:
        """Remove the node objects of manager joins nobody claimed (`joins.abandoned_joins`);
        `_remove_gone_learners` then takes their learners out of the configuration."""
        leading_for = time.monotonic() - self._leading_since
        for node in joins.abandoned_joins(
            self.store, time.time(), self.node.last_heard, leading_for
        ):
            name = node["Description"].get("Hostname")
            # A manager node must be demoted before it is removed: both in one
            # entry, at the version we looked at (it showed up meanwhile: refused).
            demote = {**node["Spec"], "Role": "worker"}
            result = await self.backend.write(
                commands.batch(
                    commands.update_node(node["ID"], node["Version"]["Index"], demote, time.time()),
                    commands.remove_node(node["ID"], force=True),
                )
            )
            if result.ok:
                logger.warning(
                    "%s: %s joined as a manager %gs ago but never showed up: join undone",
                    self.name,
                    name,
                    joins.ABANDONED_JOIN_AFTER,
                )

    async def _finish_rotation(self) -> None:
        """A root rotation whose every node is on the new root: drop the old one."""
        if not (self.store.cluster() or {}).get("RootRotation"):
            return
        command = self.rotation.finish_command(self.keyring.data_key(), self.rng)
        if command is None:
            return
        result = await self.backend.write(command)
        if result.ok:
            logger.info(
                "%s: root CA rotation complete: the old root is no longer trusted", self.name
            )

    # ------------------------------------------------------------ orchestration

    async def _orchestrate(self) -> None:
        """Services -> tasks -> nodes (`cluster.control.orchestrator`); one entry per command."""
        for cmd in self.control.step(self.store, time.time()):
            result = await self.backend.write(cmd)
            if not result.ok:
                logger.debug("%s: orchestrator command refused: %s", self.name, result.error)
