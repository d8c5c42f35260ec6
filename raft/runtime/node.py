"""The asyncio node driver: one Raft server as a real process.

`RaftCore` decides; this module moves its decisions to the world.  A
`RaftNode` owns its storage (by default the durable `DiskStorage`), its
transport (by default TCP, `Transport`), the core, the user's `StateMachine`
and the trace, and runs four tasks in one `asyncio.TaskGroup`:

* the **ticker** turns wall-clock time into ``core.tick()`` every
  ``tick_interval`` seconds (the core itself has no clock); while the Ready
  loop waits for an fsync, it also sends the leader's heartbeats and
  appends made meanwhile, so a slow disk does not silence a leader
  (`raft.core.persist`, "While the fsync runs": an AppendEntries of a
  durable term promises nothing, §10.2.1);
* the **inbox consumer** steps messages from peers into the core as they
  arrive (the transport only enqueues them);
* the **Ready loop** handles the core's batches one at a time, walking the
  steps of `raft.core.persist.plan` -- the one persistence order, which the
  simulator follows too: write; send the leader's own AppendEntries early
  (dissertation §10.2.1); fsync (in a worker thread, so the loop keeps
  receiving); send everything else (persist before send); apply committed
  entries and answer the clients waiting on them; ``core.advance(rd)``; then
  take a snapshot if the core asks for one (§7);
* the **trace flusher** writes the trace file off the event loop.

Group commit falls out of this shape: while one batch's fsync runs, new
proposals and messages pile up in the core, and the next ``ready()`` carries
all of them, so many proposals share one AppendEntries and one fsync.

Storage and transport are given as factories (`raft.runtime.backends`), so
a test can run a node on an in-memory twin or on a disk whose power it can
cut (`raft.runtime.powercut`).  With ``fsync`` off (a demo mode) the node
says loudly that it is not durable: in its log, its trace and ``status()``.

Clients (`raft.runtime.clients`): `RaftNode.propose` appends a command on
the leader and resolves with the state machine's result once the entry at
that (index, term) is applied (§8).  If another leader's entry takes the
index, the proposal fails with `ProposalLost`; a non-leader raises
`NotLeader` at once with its best guess of the leader.  Every wait has a
timeout.

A disk that fills up.  `DiskStorage.sync` raises `DiskFullError` when a
write finds no space, having cut back what part of it landed, so the same
sync can be retried (`raft.runtime.disk`).  The node then holds the batch at
its ``SYNC`` step and retries that sync every ``disk_retry_interval`` until
it succeeds (`_wait_for_space`).  Why that is safe, and enough:

* Persist before send stays absolute.  Nothing of the batch that waits for
  the fsync leaves -- no vote (§5.2), no append acknowledgement (§5.3), no
  snapshot answer (§7) -- and no later batch is handled either, because
  batches are handled one at a time.  The core is still stepped (messages
  and ticks go in, as during any slow fsync), but whatever it answers waits
  in its next batch, behind the write it depends on.  So a node that could
  not append neither votes nor acknowledges meanwhile.
* A leader that cannot write stops sending, heartbeats included: the
  followers elect a leader whose disk works (§5.2), and check-quorum steps
  the stuck one down (dissertation §6.2).  Its AppendEntries sent before its
  own fsync (§10.2.1) promised nothing: the core counts the leader's own
  copy of an entry only once `advance` says it is durable, so nothing is
  committed on the strength of a copy that did not reach the disk (§5.4.2).
* New proposals and linearizable reads are sent to the leader (`NotLeader`)
  or, on a leader or a node that knows none, refused at once with `DiskFull`:
  their answers would wait behind the stuck batch.  Proposals already in
  flight keep waiting within their timeout, as their outcome is unknown.
  ``status()`` says ``disk: "full"`` and why, in ``disk_error``.
* Once the write fits, the batch goes on where it stopped; its messages are
  late, which Raft tolerates (RPCs may be delayed or repeated, §5.5), and
  the node catches up from the leader like any slow follower.

A failed fsync is different (`FsyncFailedError`): it is never retried, as
the kernel may have dropped the pages it could not write.  The node fails
with a one-line `failure_reason`; a restart reads what the disk really holds
(cutting a torn tail) and goes on from there.  That is safe because nothing
that waited for the failed fsync had left.

Run a node as a process with ``python -m raft.kv --config FILE.json`` (see
`raft.kv.main`); it serves the built-in key-value store (`raft.kv`) with a small
control endpoint for tests, the benchmark and the cluster supervisor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from raft.core import persist
from raft.core.membership import ConfChange
from raft.core.messages import (
    Message,
    NodeId,
)
from raft.core.persist import Step
from raft.core.protocol import NotLeader, RaftCore, Ready, Role, TraceEvent
from raft.core.statemachine import StateMachine
from raft.runtime.applier import Applier
from raft.runtime.backends import (
    NodeTransport,
    StorageFactory,
    TransportFactory,
    TransportWiring,
    disk_storage,
    tcp_transport,
)
from raft.runtime.clients import (
    ClientWaits,
    DiskFull,
    NodeStopped,
    ProposalError,
    ProposalLost,
    ProposalTimeout,
)
from raft.runtime.disk import StorageError
from raft.runtime.faults import PersistentFaultFilter
from raft.runtime.persister import Persister
from raft.runtime.settings import Address, NodeSettings
from raft.runtime.tls import TLSFiles
from raft.runtime.trace import TraceWriter

__all__ = [
    "DiskFull",
    "NodeSettings",
    "NodeStopped",
    "NotLeader",
    "PersistentFaultFilter",
    "ProposalError",
    "ProposalLost",
    "ProposalTimeout",
    "RaftNode",
]

logger = logging.getLogger("raft.runtime.node")

#: A batch with at most this many entries is fsynced on the event loop (`_sync`).
_INLINE_SYNC_ENTRIES = 2


class RaftNode:
    """One Raft server: storage, transport, core and state machine, driven by asyncio."""

    def __init__(
        self,
        settings: NodeSettings,
        state_machine: StateMachine,
        *,
        storage: StorageFactory = disk_storage,
        transport: TransportFactory = tcp_transport,
    ) -> None:
        self.settings = settings
        self.state_machine = state_machine
        self.id = settings.id
        self._storage_factory = storage
        self._transport_factory = transport
        self.faults = PersistentFaultFilter(Path(settings.data_dir) / "faults.json")
        self.trace = TraceWriter(settings.trace_path, settings.id, settings.trace)
        self._core: RaftCore | None = None
        self._transport: NodeTransport | None = None
        self._persister = Persister(
            settings.id, self.trace, settings.disk_retry_interval, lambda: self._stopping
        )
        self._executor = self._persister.executor  # storage calls run on the sync thread
        self._inbox: asyncio.Queue[Message] | None = None
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._ready_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._done = asyncio.Event()  # stopped, or failed
        self.failure: BaseException | None = None
        #: One line saying why the node failed (None: it has not).
        self.failure_reason: str | None = None
        #: Just what failed, in one line (a storage error's own message, say).
        self.failure_cause: str | None = None
        self._leader: NodeId | None = None
        self._clients = ClientWaits()
        self._applier = Applier(settings.id, state_machine, self.trace, self._clients)
        self.inbox_dropped = 0
        self._last_heard: dict[NodeId, float] = {}
        #: While a batch's fsync runs: the durable term, whose appends may leave
        #: meanwhile (`_sends_during_sync`), and when the fsync began; else None.
        self._syncing: tuple[int, float] | None = None

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Open storage, restore the state machine, start the transport and the tasks."""
        if self._runner is not None:
            raise RuntimeError("node already started")
        s = self.settings
        Path(s.data_dir).mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        storage = await loop.run_in_executor(self._executor, self._storage_factory, s)
        state = await loop.run_in_executor(self._executor, storage.load)
        self._persister.opened(storage, state.hard_state)
        self._applier.start_from(state.snapshot)
        rng = random.Random(s.seed)
        self._core = RaftCore(s.core_config(), rng, state)
        self._inbox = asyncio.Queue(maxsize=s.inbox_limit)
        wiring = TransportWiring(
            port=s.listen_port if s.listen_port is not None else s.peers[s.id][1],
            peers={p: a for p, a in s.peers.items() if p != s.id},
            on_message=self._on_message,
            fault_filter=self.faults.filter,
            rng=random.Random(rng.getrandbits(64)),
        )
        self._transport = self._transport_factory(s, wiring)
        try:
            await self._transport.start()
        except BaseException:
            await loop.run_in_executor(self._executor, storage.close)
            raise
        st = self.status()
        info = {k: st[k] for k in ("term", "commit_index", "last_log_index", "snapshot_index")}
        # The configuration it starts with: a figure then knows the founding
        # voters (and that a joiner, with none, is not one yet) without guessing.
        config = {k: st.get(k, []) for k in ("voters", "learners")}
        self.trace.emit("start", raft_port=self.raft_port, durable=s.fsync, **info, **config)
        self.trace_log()
        logger.info("%s: started on %s:%d %s", s.id, s.listen_host, self.raft_port, info)
        if not s.fsync:
            logger.warning(
                "%s: fsync is OFF (demo mode): NOT durable, a power loss can lose votes "
                "and entries",
                s.id,
            )
        self._runner = asyncio.create_task(self._run(), name=f"raft-node-{s.id}")

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self._ready_task = tg.create_task(self._ready_loop(), name=f"ready-{self.id}")
                tg.create_task(self._consume(), name=f"inbox-{self.id}")
                tg.create_task(self._ticker(), name=f"ticker-{self.id}")
                tg.create_task(self.trace.run(), name=f"trace-{self.id}")
        except Exception as exc:
            # A failed fsync or a bug in the core: this node cannot go on safely.
            self.failure = exc
            self.failure_reason = _one_line(exc)
            self.failure_cause = _cause_line(exc)
            if self.storage_failed:
                logger.error("%s: stopping: %s", self.id, self.failure_reason)  # no traceback
            else:
                logger.exception("%s: node failed", self.id)
            self._clients.fail_all(NodeStopped(f"node {self.id} failed: {self.failure_reason}"))
        finally:
            if not self._stopping:
                self._done.set()  # a failure: whoever waits on us should call stop()

    async def stop(self) -> None:
        """Stop gracefully within ``stop_timeout``: finish the batch in hand (and its
        fsync), cancel the tasks, close the sockets, release the data directory."""
        if self._stopping:
            async with asyncio.timeout(self.settings.stop_timeout):
                await self._done.wait()
            return
        self._stopping = True
        self._wake.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.stop_timeout

        def left() -> float:
            return max(0.05, deadline - loop.time())

        if self._ready_task is not None:
            if self.disk_error is not None:
                # A batch held for space is abandoned, like a crash before its
                # SYNC: nothing of it that waits for durability has left.
                self._ready_task.cancel()
            await asyncio.wait({self._ready_task}, timeout=left())
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.wait({self._runner}, timeout=left())
        sync_done = True
        persister = self._persister
        if persister.sync_future is not None and not persister.sync_future.done():
            _, pending = await asyncio.wait({persister.sync_future}, timeout=left())
            sync_done = not pending
        if self._transport is not None:
            await self._transport.stop(timeout=left())
        storage = persister.storage
        if storage is not None and sync_done:
            try:
                if persister.deferred_hs is not None and self.failure is None:
                    storage.set_hard_state(persister.deferred_hs)  # close() syncs it
                await asyncio.wait_for(loop.run_in_executor(self._executor, storage.close), left())
            except StorageError as e:  # a disk still full: nothing unsynced was promised
                logger.error("%s: closing storage: %s", self.id, e)
            except Exception:
                logger.exception("%s: closing storage failed", self.id)
        elif not sync_done:
            logger.error("%s: fsync still running at stop; storage left open", self.id)
        self._executor.shutdown(wait=False)
        self._clients.fail_all(NodeStopped(f"node {self.id} stopped"))
        self.trace.emit("stop")
        self.trace.close()
        self._done.set()
        logger.info("%s: stopped", self.id)

    async def wait_stopped(self) -> None:
        """Return once the node has stopped or failed (see `failure`)."""
        await self._done.wait()

    # ================================================================ client API

    async def propose(self, data: bytes, timeout: float | None = None) -> Any:
        """Replicate ``data``; return the state machine's result once applied here.

        Raises `NotLeader` (with ``.leader``) at once on a non-leader,
        `ProposalTimeout` if it has not been applied within ``timeout``,
        `ProposalLost` if another leader's entry took its index (§8).
        """
        core = self._writable_core()
        index = core.propose(data)  # raises NotLeader (or ProposalDropped mid-transfer)
        return await self._wait_entry(index, core.term, timeout)

    async def propose_conf_change(self, change: ConfChange, timeout: float | None = None) -> None:
        """Propose a membership change (dissertation §4) and wait until it is applied."""
        core = self._writable_core()
        index = core.propose_conf_change(change)
        await self._wait_entry(index, core.term, timeout)

    def transfer_leadership(self, target: NodeId | None = None) -> NodeId:
        """Start handing leadership to ``target`` (§3.10); returns the chosen target.
        Watch `status` (or the trace's ``transfer`` lines) for the outcome."""
        target = self._running_core().transfer_leadership(target)
        self._wake.set()
        return target

    async def read_index(self, timeout: float | None = None) -> int:
        """Linearizable read barrier (§6.4): returns once this node's state machine
        reflects every write acknowledged before the call.  Read it right after."""
        core = self._writable_core()
        request_id, fut = self._clients.new_read()
        core.read_index(request_id)
        self._wake.set()
        timeout = timeout if timeout is not None else self.settings.propose_timeout
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise ProposalTimeout(f"read index not confirmed within {timeout}s") from None
        finally:
            self._clients.forget_read(request_id)

    def status(self) -> dict[str, Any]:
        """This node's Raft state for humans, tests and the API."""
        core = self._core
        if core is None:
            return {"id": self.id, "role": "down"}
        st = core.status()
        # What our state machine has applied (the core learns it at advance()).
        st["applied_index"] = self._applier.applied
        st["raft_port"] = self.raft_port
        st["tick_interval"] = self.settings.tick_interval  # seconds per tick of the timers above
        # False in the no-fsync demo mode: a power loss can lose votes and entries.
        st["durable"] = self.settings.fsync
        st["disk"] = "ok" if self.disk_error is None else "full"
        if self.disk_error is not None:
            st["disk_error"] = self.disk_error
        return st

    @property
    def disk_error(self) -> str | None:
        """Why the node cannot write its log now (None: it can); `raft.runtime.persister`."""
        return self._persister.disk_error

    @property
    def fault_filter(self) -> PersistentFaultFilter:
        """Network faults of this node; every change is saved and survives restarts."""
        return self.faults

    @property
    def transport(self) -> NodeTransport | None:
        """The transport, once started (tests read its counters)."""
        return self._transport

    @property
    def raft_port(self) -> int:
        return self._transport.port if self._transport is not None else 0

    def last_heard(self, peer: NodeId) -> float | None:
        """`time.monotonic()` of the last message from ``peer`` (None: never).

        Health as users see it ("Reachable" in ``docker node ls``); Raft itself
        never looks at wall-clock time.
        """
        return self._last_heard.get(peer)

    @property
    def is_leader(self) -> bool:
        return self._core is not None and self._core.role is Role.LEADER

    def use_tls(self, files: TLSFiles) -> None:
        """Before `start`: the certificate files to use (a key opened only now, say)."""
        if self._transport is not None:
            raise RuntimeError("the transport already runs with its certificate")
        self.settings = dataclasses.replace(self.settings, tls=files)

    def set_peer_addresses(self, peers: Mapping[NodeId, Address]) -> None:
        """Replace the address book (e.g. before adding a member, §4)."""
        if self._transport is not None:
            self._transport.set_peers(peers)

    @property
    def storage_failed(self) -> bool:
        """Whether the node failed because its storage did (a failed fsync, say)."""
        return self.failure is not None and isinstance(_root_cause(self.failure), StorageError)

    def _running_core(self) -> RaftCore:
        if self._core is None or self._stopping or self._done.is_set():
            raise NodeStopped(f"node {self.id} is not running")
        return self._core

    def _writable_core(self) -> RaftCore:
        """The core, for a request whose answer needs our log to move on.

        With a full disk, a follower that knows a leader sends the client
        there (`NotLeader`), as for any write; otherwise `DiskFull` says why.
        """
        core = self._running_core()
        if self.disk_error is not None:
            leader = core.leader_id
            if leader is not None and leader != self.id:
                raise NotLeader(leader)
            raise DiskFull(self.disk_error)
        return core

    async def _wait_entry(self, index: int, term: int, timeout: float | None) -> Any:
        self._wake.set()
        timeout = timeout if timeout is not None else self.settings.propose_timeout
        return await self._clients.wait_entry(index, term, timeout)

    # ================================================================ tasks

    def _on_message(self, msg: Message) -> None:
        """Transport callback: only enqueue; the core is stepped by `_consume`,
        or by the ready loop, whichever runs first."""
        assert self._inbox is not None
        self._last_heard[msg.src] = time.monotonic()
        try:
            self._inbox.put_nowait(msg)
        except asyncio.QueueFull:
            self.inbox_dropped += 1  # a lost message, which Raft tolerates
            return
        # Wake the ready loop now, not after `_consume`'s turn: it drains the
        # inbox itself, which saves an event-loop iteration per message on
        # the commit path (the follower's append, the leader's ack).
        self._wake.set()

    async def _consume(self) -> None:
        assert self._inbox is not None
        while True:
            msg = await self._inbox.get()
            self._step(msg)
            self._drain_inbox()
            self._wake.set()

    def _drain_inbox(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        while not inbox.empty():
            self._step(inbox.get_nowait())

    def _step(self, msg: Message) -> None:
        assert self._core is not None
        self.trace.on_receive(msg)
        self._core.step(msg)

    async def _ticker(self) -> None:
        """Logical time for the core, on a fixed schedule that does not drift."""
        assert self._core is not None
        loop = asyncio.get_running_loop()
        interval = self.settings.tick_interval
        due = loop.time()
        while True:
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            if loop.time() - due > 5 * interval:
                due = loop.time()  # we were stalled: resume, do not fire a burst of ticks
            self._core.tick()
            if self._syncing is not None:
                self._sends_during_sync(*self._syncing, loop.time())
            self._wake.set()

    def _sends_during_sync(self, durable_term: int, since: float, now: float) -> None:
        """Send the leader's appends made while its fsync runs (`raft.core.persist`).

        Only while the fsync is merely slow.  A disk that is full, or an fsync
        that has run for an election timeout, must cost the leader its
        leadership as before (module docstring, "A disk that fills up"): a
        leader that heartbeats but can never commit would hold the cluster
        forever, as its followers would never elect another.
        """
        s = self.settings
        if self.disk_error is not None or now - since >= s.election_ticks * s.tick_interval:
            return
        assert self._core is not None
        may_leave = functools.partial(persist.may_leave_during_sync, durable_term=durable_term)
        self._send_all(self._core.take_messages(may_leave))

    async def _ready_loop(self) -> None:
        core = self._core
        assert core is not None
        while not self._stopping:
            self._drain_inbox()  # everything that arrived joins this batch
            if not core.has_ready():
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._handle_ready(core.ready())

    async def _handle_ready(self, rd: Ready) -> None:
        """Walk the steps of the persistence order (`raft.core.persist`) for one batch."""
        core = self._core
        assert core is not None
        persister = self._persister
        durable = persister.written_hs  # synced with an earlier batch: batches go one by one
        plan = persist.plan(
            rd,
            durable,
            persister.deferred_hs,
            commit_due=persister.since_hard_state() >= self.settings.commit_sync_interval,
            answers_due=self._clients.waiting_on(rd.committed),
        )
        small = rd.snapshot is None and len(rd.entries) <= _INLINE_SYNC_ENTRIES
        for step in plan.steps:
            if step is Step.WRITE:
                persister.write(rd, plan)
            elif step is Step.SEND_EARLY:
                self._send_all(plan.early)
            elif step is Step.SYNC:
                if plan.sync:
                    self._syncing = (durable.term, asyncio.get_running_loop().time())
                    try:
                        await persister.sync(inline=small)
                    finally:
                        self._syncing = None
                for ev in rd.events:
                    self._record(ev)
            elif step is Step.SEND:
                if plan.answer_first:
                    await asyncio.sleep(0)  # the requests just answered write their replies
                self._send_all(plan.late)
            elif step is Step.APPLY:
                await self._applier.apply(rd, core.leader_id)
            else:
                self._advance(rd)
        if core.should_snapshot():
            await self._take_snapshot()

    def _send_all(self, messages: list[Message]) -> None:
        transport = self._transport
        assert transport is not None
        on_send = self.trace.on_send
        for m in messages:
            on_send(m)
            transport.send(m)

    def _advance(self, rd: Ready) -> None:
        core = self._core
        assert core is not None
        core.advance(rd)
        if core.leader_id != self._leader:
            self._leader = core.leader_id
            self._record(TraceEvent("leader", {"leader": self._leader, "term": core.term}))

    async def _take_snapshot(self) -> None:
        """§7: the state machine's image replaces the applied log prefix."""
        core, storage = self._core, self._persister.storage
        assert core is not None and storage is not None
        snap = core.compact(self._applier.applied, self.state_machine.snapshot())
        storage.save_snapshot(snap)
        await self._persister.sync()

    def trace_log(self, last: int = 64) -> None:
        """Write a ``log`` trace line now (see `TraceWriter.log_of`)."""
        if self._core is not None:
            self.trace.log_of(self._core, last)

    def _record(self, ev: TraceEvent) -> None:
        assert self._core is not None
        if self.trace.record(ev, self._core):
            f = ev.fields
            logger.info("%s: %s %s", self.id, ev.type, " ".join(f"{k}={v}" for k, v in f.items()))


def _root_cause(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups: what actually failed."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _cause_line(exc: BaseException) -> str:
    """What failed, without advice: a storage error's message, else the type and message."""
    cause = _root_cause(exc)
    if isinstance(cause, StorageError):
        return str(cause)
    return f"{type(cause).__name__}: {cause}"


def _one_line(exc: BaseException) -> str:
    """Why the node failed, in one line for logs, exit messages and HTTP answers."""
    cause = _root_cause(exc)
    if isinstance(cause, StorageError):
        return f"its Raft storage failed: {cause}; restart it to recover from what is on disk"
    return f"{type(cause).__name__}: {cause}"
