"""The asyncio node driver: one Raft server as a real process.

`RaftCore` decides; this module moves its decisions to the world.  A
`RaftNode` owns the durable log (`DiskStorage`), the TCP `Transport`, the
core, the user's `StateMachine` and the trace, and runs four tasks in one
`asyncio.TaskGroup`:

* the **ticker** turns wall-clock time into ``core.tick()`` every
  ``tick_interval`` seconds (the core itself has no clock);
* the **inbox consumer** steps messages from peers into the core as they
  arrive (the transport only enqueues them);
* the **Ready loop** handles the core's batches one at a time, in the order
  the core's contract demands (module docstring of `raft.core.protocol`):

  1. persist: snapshot, hard state and entries go to storage, then one
     ``sync()`` (fsync) in a worker thread so the loop keeps receiving;
  2. send the batch's messages (persist before send: a vote or an append
     acknowledgement never leaves before what it promises is durable; a
     leader's AppendEntries go out before its fsync, which then overlaps
     the followers' -- dissertation §10.2.1);
  3. apply committed entries to the state machine and resolve the clients
     waiting on them; serve linearizable reads whose index is applied;
  4. ``core.advance(rd)``; then take a snapshot if the core asks for one (§7).

* the **trace flusher** writes the trace file off the event loop.

Group commit falls out of this shape: while one batch's fsync runs, new
proposals and messages pile up in the core, and the next ``ready()`` carries
all of them, so many proposals share one AppendEntries and one fsync.

Clients: `RaftNode.propose` appends a command on the leader and resolves
with the state machine's result once the entry at that (index, term) is
applied (§8).  If another leader's entry takes the index, the proposal fails
with `ProposalLost`; a non-leader raises `NotLeader` at once with its best
guess of the leader.  Every wait has a timeout.

Run a node as a process with ``python -m raft.kv --config FILE.json`` (see
`raft.kv.main`); it serves the built-in key-value store (`raft.kv`) with a small
control endpoint for tests, the benchmark and the cluster supervisor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import inspect
import itertools
import json
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.core.membership import ConfChange
from raft.core.messages import (
    AppendEntries,
    AppendEntriesResponse,
    EntryKind,
    HardState,
    Message,
    NodeId,
    Snapshot,
)
from raft.core.protocol import Config, NotLeader, RaftCore, Ready, Role, TraceEvent
from raft.core.statemachine import StateMachine, op_kind
from raft.runtime.disk import DiskStorage
from raft.runtime.tls import TLSFiles
from raft.runtime.trace import TraceSettings, TraceWriter
from raft.runtime.transport import Direction, FaultFilter, LinkFault, Transport

__all__ = [
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

Address = tuple[str, int]

#: Trace event types that also deserve a line on stderr.
_NOTABLE = frozenset(
    {"role", "election", "check_quorum", "snapshot", "membership", "transfer", "leader"}
)
#: Apply this many entries, then let the event loop breathe (a long replay at start).
_APPLY_SLICE = 512
#: A Ready with at most this many entries is fsynced on the event loop (`_sync`).
_INLINE_SYNC_ENTRIES = 2


class ProposalError(Exception):
    """A proposal whose outcome the client must not count as a success."""


class ProposalTimeout(ProposalError, TimeoutError):
    """The entry did not commit in time.  It may still commit later (§8): retry
    only with a command that is safe to apply twice, or read first."""


class ProposalLost(ProposalError):
    """The entry at the proposal's index is not ours any more: another leader's
    entry replaced it (§5.3, §8) or a snapshot now covers it unseen."""


class NodeStopped(ProposalError):
    """The node stopped (or failed) before the outcome was known."""


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Everything one node needs; times are seconds unless they say ticks."""

    id: NodeId
    cluster_id: str
    #: Raft addresses of every voter, this node included.
    peers: Mapping[NodeId, Address]
    data_dir: Path
    #: The voters of a brand-new cluster; None: every peer.  A server that
    #: joins an existing cluster starts with () and learns the configuration
    #: from the leader (dissertation §4.2.1).
    voters: tuple[NodeId, ...] | None = None
    listen_host: str = "127.0.0.1"
    #: Default: the port of our own entry in ``peers``.
    listen_port: int | None = None
    tick_interval: float = 0.05
    heartbeat_ticks: int = 1
    #: T in ticks; election timeouts are drawn from [T, 2T): 0.5-1 s by default.
    election_ticks: int = 10
    pre_vote: bool = True
    check_quorum: bool = True
    #: Only tests may turn this off: without fsync a crash can lose votes and entries.
    fsync: bool = True
    trace_path: Path | None = None
    trace: TraceSettings = field(default_factory=TraceSettings)
    propose_timeout: float = 5.0
    stop_timeout: float = 5.0
    #: A hard state whose only change is the commit index is written at most this
    #: often (see `RaftNode._must_write_hard_state`); 0 writes every change at once.
    commit_sync_interval: float = 1.0
    #: Messages waiting for the core; beyond this, arrivals are dropped (Raft retries).
    inbox_limit: int = 100_000
    #: Applied entries between snapshots, and entries kept behind one for slow
    #: followers (§7); None keeps the core's defaults.
    snapshot_entries: int | None = None
    trailing_entries: int | None = None
    seed: int | None = None
    #: Mutual TLS between peers (`raft.runtime.tls`); None: plain TCP.
    tls: TLSFiles | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> NodeSettings:
        """Settings from a JSON object (the ``--config`` file)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        d = dict(raw)
        d["peers"] = {str(k): (str(v[0]), int(v[1])) for k, v in raw["peers"].items()}
        d["data_dir"] = Path(raw["data_dir"])
        if d.get("voters") is not None:
            d["voters"] = tuple(d["voters"])
        if d.get("trace_path") is not None:
            d["trace_path"] = Path(d["trace_path"])
        if "trace" in d:
            d["trace"] = TraceSettings(**d["trace"])
        if d.get("tls") is not None:
            d["tls"] = TLSFiles.from_config(d["tls"])
        return cls(**d)


class PersistentFaultFilter:
    """The transport's `FaultFilter`, saved to JSON after every change.

    A partition set by the scenario runner must survive the node's restart,
    or "restart the isolated node" would quietly heal it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filter = FaultFilter()
        if path.exists():
            self.filter = FaultFilter.from_dict(json.loads(path.read_text()))

    def set_rule(self, peer: NodeId, fault: LinkFault, direction: Direction = "both") -> None:
        self.filter.set_rule(peer, fault, direction)
        self._save()

    def block(self, *peers: NodeId, direction: Direction = "both") -> None:
        self.filter.block(*peers, direction=direction)
        self._save()

    def clear(self, *peers: NodeId, direction: Direction = "both") -> None:
        """Remove the rules for ``peers``; with none named, every rule (heal)."""
        self.filter.clear(*peers, direction=direction)
        self._save()

    heal = clear

    def replace(self, rules: Mapping[str, Any]) -> None:
        """Install the rules of a `FaultFilter.to_dict` object, replacing all others."""
        new = FaultFilter.from_dict(rules)
        self.filter.outbound, self.filter.inbound = new.outbound, new.inbound
        self._save()

    def to_dict(self) -> dict[str, Any]:
        return self.filter.to_dict()

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.filter.to_dict(), indent=1))
        os.replace(tmp, self.path)


@dataclass(slots=True)
class _Waiter:
    term: int
    future: asyncio.Future[Any]


def _time_out(future: asyncio.Future[Any], index: int, term: int, timeout: float) -> None:
    """`RaftNode._wait_entry`'s timer: the entry was not applied in time."""
    if not future.done():
        future.set_exception(
            ProposalTimeout(f"entry {index} (term {term}) not applied within {timeout}s")
        )


class RaftNode:
    """One Raft server: storage, transport, core and state machine, driven by asyncio."""

    def __init__(self, settings: NodeSettings, state_machine: StateMachine) -> None:
        self.settings = settings
        self.state_machine = state_machine
        self.id = settings.id
        data_dir = Path(settings.data_dir)
        self.faults = PersistentFaultFilter(data_dir / "faults.json")
        self.trace = TraceWriter(settings.trace_path, settings.id, settings.trace)
        self._core: RaftCore | None = None
        self._storage: DiskStorage | None = None
        self._transport: Transport | None = None
        # One thread for fsync: syncs are serialised and never wait behind other work.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, f"raft-sync-{settings.id}")
        self._sync_future: asyncio.Future[None] | None = None
        self._inbox: asyncio.Queue[Message] | None = None
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._ready_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._done = asyncio.Event()  # stopped, or failed
        self.failure: BaseException | None = None
        self._applied = 0
        self._written_hs = HardState()  # on disk
        self._lazy_hs: HardState | None = None  # newer, commit-only change not yet written
        self._hs_written_at = 0.0
        self._leader: NodeId | None = None
        self._waiters: dict[int, _Waiter] = {}
        self._read_ids = itertools.count(1)
        self._reads: dict[int, asyncio.Future[int]] = {}  # waiting for a ReadState
        self._read_waits: list[tuple[int, asyncio.Future[int]]] = []  # waiting for apply
        self.inbox_dropped = 0
        self._last_heard: dict[NodeId, float] = {}

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Open storage, restore the state machine, start the transport and the tasks."""
        if self._runner is not None:
            raise RuntimeError("node already started")
        s = self.settings
        data_dir = Path(s.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._storage = await loop.run_in_executor(self._executor, self._open_storage)
        state = await loop.run_in_executor(self._executor, self._storage.load)
        if state.snapshot.meta.index:
            # §7: the snapshot is the state machine up to its index; the core
            # hands us the committed entries after it in its first Ready.
            self.state_machine.restore(state.snapshot.data)
        self._applied = state.snapshot.meta.index
        self._written_hs = state.hard_state
        rng = random.Random(s.seed)
        self._core = RaftCore(self._core_config(), rng, state)
        self._inbox = asyncio.Queue(maxsize=s.inbox_limit)
        port = s.listen_port if s.listen_port is not None else s.peers[s.id][1]
        self._transport = Transport(
            s.id,
            s.cluster_id,
            s.listen_host,
            port,
            peers={p: a for p, a in s.peers.items() if p != s.id},
            on_message=self._on_message,
            fault_filter=self.faults.filter,
            rng=random.Random(rng.getrandbits(64)),
            tls=s.tls,
        )
        try:
            await self._transport.start()
        except BaseException:
            await loop.run_in_executor(self._executor, self._storage.close)
            raise
        st = self.status()
        info = {k: st[k] for k in ("term", "commit_index", "last_log_index", "snapshot_index")}
        # The configuration it starts with: a figure then knows the founding
        # voters (and that a joiner, with none, is not one yet) without guessing.
        config = {k: st.get(k, []) for k in ("voters", "learners")}
        self.trace.emit("start", raft_port=self.raft_port, **info, **config)
        self.trace_log()
        logger.info("%s: started on %s:%d %s", s.id, s.listen_host, self.raft_port, info)
        self._runner = asyncio.create_task(self._run(), name=f"raft-node-{s.id}")

    def _open_storage(self) -> DiskStorage:
        path = Path(self.settings.data_dir) / "raft"
        if not self.settings.fsync:
            if "fsync" in inspect.signature(DiskStorage).parameters:
                return DiskStorage(path, fsync=False)  # type: ignore[call-arg]
            logger.warning("%s: this DiskStorage cannot skip fsync; syncing", self.id)
        return DiskStorage(path)

    def _core_config(self) -> Config:
        s = self.settings
        kwargs: dict[str, Any] = {}
        if s.snapshot_entries is not None:
            kwargs["snapshot_entries"] = s.snapshot_entries
        if s.trailing_entries is not None:
            kwargs["trailing_entries"] = s.trailing_entries
        return Config(
            id=s.id,
            peers=tuple(sorted(s.peers if s.voters is None else s.voters)),
            election_ticks=s.election_ticks,
            heartbeat_ticks=s.heartbeat_ticks,
            pre_vote=s.pre_vote,
            check_quorum=s.check_quorum,
            **kwargs,
        )

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
            logger.exception("%s: node failed", self.id)
            self._fail_all(NodeStopped(f"node {self.id} failed: {exc!r}"))
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
            await asyncio.wait({self._ready_task}, timeout=left())
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.wait({self._runner}, timeout=left())
        sync_done = True
        if self._sync_future is not None and not self._sync_future.done():
            _, pending = await asyncio.wait({self._sync_future}, timeout=left())
            sync_done = not pending
        if self._transport is not None:
            await self._transport.stop(timeout=left())
        if self._storage is not None and sync_done:
            try:
                if self._lazy_hs is not None and self.failure is None:
                    self._storage.set_hard_state(self._lazy_hs)  # close() syncs it
                await asyncio.wait_for(
                    loop.run_in_executor(self._executor, self._storage.close), left()
                )
            except Exception:
                logger.exception("%s: closing storage failed", self.id)
        elif not sync_done:
            logger.error("%s: fsync still running at stop; storage left open", self.id)
        self._executor.shutdown(wait=False)
        self._fail_all(NodeStopped(f"node {self.id} stopped"))
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
        core = self._running_core()
        index = core.propose(data)  # raises NotLeader (or ProposalDropped mid-transfer)
        return await self._wait_entry(index, core.term, timeout)

    async def propose_conf_change(self, change: ConfChange, timeout: float | None = None) -> None:
        """Propose a membership change (dissertation §4) and wait until it is applied."""
        core = self._running_core()
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
        core = self._running_core()
        request_id = next(self._read_ids)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reads[request_id] = fut
        core.read_index(request_id)
        self._wake.set()
        timeout = timeout if timeout is not None else self.settings.propose_timeout
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise ProposalTimeout(f"read index not confirmed within {timeout}s") from None
        finally:
            self._reads.pop(request_id, None)

    def status(self) -> dict[str, Any]:
        """This node's Raft state for humans, tests and the API."""
        core = self._core
        if core is None:
            return {"id": self.id, "role": "down"}
        st = core.status()
        # What our state machine has applied (the core learns it at advance()).
        st["applied_index"] = self._applied
        st["raft_port"] = self.raft_port
        st["tick_interval"] = self.settings.tick_interval  # seconds per tick of the timers above
        return st

    @property
    def fault_filter(self) -> PersistentFaultFilter:
        """Network faults of this node; every change is saved and survives restarts."""
        return self.faults

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

    def _running_core(self) -> RaftCore:
        if self._core is None or self._stopping or self._done.is_set():
            raise NodeStopped(f"node {self.id} is not running")
        return self._core

    async def _wait_entry(self, index: int, term: int, timeout: float | None) -> Any:
        old = self._waiters.pop(index, None)
        if old is not None and not old.future.done():
            # We proposed at this index in an earlier term; our log now holds the
            # new entry there, so the old one is gone for good.
            old.future.set_exception(ProposalLost(f"entry {index} replaced"))
        loop = asyncio.get_running_loop()
        waiter = _Waiter(term, loop.create_future())
        self._waiters[index] = waiter
        self._wake.set()
        timeout = timeout if timeout is not None else self.settings.propose_timeout
        # A plain timer that fails the future, not ``asyncio.timeout``: every
        # client write waits here, and the timer is the cheaper way (no context
        # object, no cancelling and un-cancelling of the waiting task).
        timer = loop.call_later(timeout, _time_out, waiter.future, index, term, timeout)
        try:
            return await waiter.future
        finally:
            timer.cancel()
            if self._waiters.get(index) is waiter:
                del self._waiters[index]

    def _fail_all(self, exc: Exception) -> None:
        for w in self._waiters.values():
            if not w.future.done():
                w.future.set_exception(exc)
        self._waiters.clear()
        for fut in itertools.chain(self._reads.values(), (f for _, f in self._read_waits)):
            if not fut.done():
                fut.set_exception(exc)
        self._reads.clear()
        self._read_waits.clear()

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
        if isinstance(msg, AppendEntries):
            n = len(msg.entries)
            self.trace.count(
                "append", received=1, entries_received=n, heartbeats_received=0 if n else 1
            )
        elif isinstance(msg, AppendEntriesResponse):
            self.trace.count("append_reply", received=1, rejected=0 if msg.success else 1)
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
            self._wake.set()

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
        core, storage = self._core, self._storage
        assert core is not None and storage is not None
        # 1. Persist (§5.2, §5.3: durable before anyone hears of it).
        durable_hs = self._written_hs  # what earlier batches' fsyncs made durable
        dirty = False
        if rd.snapshot is not None:
            storage.install_snapshot(rd.snapshot)  # replaces the whole log (Figure 13)
            dirty = True
        if rd.hard_state is not None:
            self._lazy_hs = rd.hard_state
        if self._lazy_hs is not None and self._must_write_hard_state(self._lazy_hs):
            storage.set_hard_state(self._lazy_hs)
            self._written_hs, self._lazy_hs = self._lazy_hs, None
            self._hs_written_at = asyncio.get_running_loop().time()
            dirty = True
        if rd.entries:
            storage.append(rd.entries)
            dirty = True
        messages = rd.messages
        # Only if this batch does not change our term or vote: a lone voter that
        # campaigns and wins in one batch must not announce a term it could
        # forget in a crash, or a restart could lead that term a second time.
        same_term = rd.hard_state is None or (
            (rd.hard_state.term, rd.hard_state.vote) == (durable_hs.term, durable_hs.vote)
        )
        if dirty and rd.snapshot is None and same_term:
            # A leader's AppendEntries may leave before its own fsync (dissertation
            # §10.2.1): they promise nothing about our disk, and the core counts our
            # own log towards a majority only after `advance` (durable).  Votes and
            # acknowledgements promise durable state: they wait for the fsync.
            early = [m for m in messages if isinstance(m, AppendEntries)]
            if early:
                self._send_all(early)
                messages = [m for m in messages if not isinstance(m, AppendEntries)]
        if dirty:
            await self._sync(inline=rd.snapshot is None and len(rd.entries) <= _INLINE_SYNC_ENTRIES)
        for ev in rd.events:
            self._record(ev)
        # 2. Send (the rest: persist before send) and 3. apply.  When this batch
        # commits entries our own clients wait for (we lead), their answers go
        # out first: apply, let the woken requests write their replies (one turn
        # of the event loop), then send.  What is left to send then is mostly the
        # leader's "commit index moved" notices (§5.3); each costs a socket write
        # (tens of microseconds on loopback, with TLS) that would otherwise sit on
        # every client's critical path.  Safe: it is all durable already, and a
        # message sent a moment later is one Raft must tolerate anyway.  A
        # follower's acknowledgements (no waiters there) are never held back.
        answers_due = bool(self._waiters) and any(e.index in self._waiters for e in rd.committed)
        if not answers_due:
            self._send_all(messages)
        if rd.snapshot is not None:
            self._restore(rd.snapshot)
        await self._apply(rd)
        if answers_due:
            await asyncio.sleep(0)  # the answered requests reply now
            self._send_all(messages)
        for rs in rd.reads:
            fut = self._reads.pop(rs.request_id, None)
            if fut is None or fut.done():
                continue
            if not rs.ok:
                fut.set_exception(NotLeader(core.leader_id))
            else:
                self._read_waits.append((rs.index, fut))
        self._serve_reads()
        # 4. Acknowledge, then compact if the core wants it.
        core.advance(rd)
        if core.leader_id != self._leader:
            self._leader = core.leader_id
            self._record(TraceEvent("leader", {"leader": self._leader, "term": core.term}))
        if core.should_snapshot():
            await self._take_snapshot()

    def _must_write_hard_state(self, hs: HardState) -> bool:
        """Term and vote are written before anything is sent (§5.2: never vote twice
        in a term).  A change of ``commit`` alone is not needed for safety (a restarted
        node relearns the commit index from the leader), and on disk it costs a file
        replacement with two fsyncs; so it is written at most every
        ``commit_sync_interval`` seconds, piggybacking on whatever else is synced."""
        w = self._written_hs
        if hs.term != w.term or hs.vote != w.vote:
            return True
        loop_time = asyncio.get_running_loop().time()
        return loop_time - self._hs_written_at >= self.settings.commit_sync_interval

    async def _sync(self, inline: bool = False) -> None:
        assert self._storage is not None
        if inline:
            # A small batch (one client waiting, a vote): handing the fsync to
            # the sync thread and back would cost two thread wake-ups, more
            # than the loop gains by running meanwhile.  Our messages that may
            # leave before the fsync are already in the sockets (`_send_all`
            # writes at once when the link is idle).
            self._storage.sync()
            return
        loop = asyncio.get_running_loop()
        self._sync_future = loop.run_in_executor(self._executor, self._storage.sync)
        # Shielded: if stop() cancels us mid-fsync, the fsync still completes and
        # stop() waits for it before closing the files.
        await asyncio.shield(self._sync_future)

    def _send_all(self, messages: list[Message]) -> None:
        transport = self._transport
        assert transport is not None
        count = self.trace.count
        for m in messages:
            if isinstance(m, AppendEntries):
                n = len(m.entries)
                count("append", sent=1, entries_sent=n, heartbeats_sent=0 if n else 1)
            elif isinstance(m, AppendEntriesResponse):
                count("append_reply", sent=1)
            transport.send(m)

    def _restore(self, snap: Snapshot) -> None:
        """A snapshot from the leader replaces our state machine (§7)."""
        index = snap.meta.index
        self.state_machine.restore(snap.data)
        self._applied = max(self._applied, index)
        for i in [i for i in self._waiters if i <= index]:
            w = self._waiters.pop(i)
            if not w.future.done():
                w.future.set_exception(ProposalLost(f"entry {i} is covered by a snapshot"))
        logger.info("%s: installed snapshot at index %d", self.id, index)

    async def _apply(self, rd: Ready) -> None:
        """Apply committed entries in order, each once; resolve their proposers (§8)."""
        sm, trace = self.state_machine, self.trace
        for n, e in enumerate(rd.committed, 1):
            if e.index <= self._applied:
                continue  # already in a snapshot we restored
            result: Any = None
            error: Exception | None = None
            if e.kind is EntryKind.NORMAL:
                try:
                    result = sm.apply(e.index, e.data)
                except Exception as exc:  # deterministic: every replica fails alike
                    error = exc
                    logger.warning("%s: entry %d failed to apply: %r", self.id, e.index, exc)
                trace.apply(e.index, op_kind(sm, e.data))
            self._applied = e.index
            w = self._waiters.pop(e.index, None)
            if w is not None and not w.future.done():
                if w.term != e.term:
                    w.future.set_exception(
                        ProposalLost(f"entry {e.index} holds term {e.term}, not {w.term}")
                    )
                elif error is not None:
                    w.future.set_exception(error)
                else:
                    w.future.set_result(result)
            if n % _APPLY_SLICE == 0:
                await asyncio.sleep(0)  # a long replay must not starve the transport

    def _serve_reads(self) -> None:
        if not self._read_waits:
            return
        waiting = []
        for index, fut in self._read_waits:
            if fut.done():
                continue
            if index <= self._applied:
                fut.set_result(index)
            else:
                waiting.append((index, fut))
        self._read_waits = waiting

    async def _take_snapshot(self) -> None:
        """§7: the state machine's image replaces the applied log prefix."""
        core, storage = self._core, self._storage
        assert core is not None and storage is not None
        snap = core.compact(self._applied, self.state_machine.snapshot())
        storage.save_snapshot(snap)
        await self._sync()

    def trace_log(self, last: int = 64) -> None:
        """Write a ``log`` trace line: (index, term) of the last entries and the
        commit index, so figures can draw the logs side by side (viz's log
        matrix).  Written on start, on every role change, and on request."""
        core = self._core
        if core is None:
            return
        log = core.log
        lo = max(log.offset, log.last_index - last + 1)
        self.trace.emit(
            "log",
            entries=[[e.index, e.term] for e in log.entries[lo - log.offset :]],
            commit=log.committed,
            snapshot_index=core.snapshot.meta.index,
        )

    def _record(self, ev: TraceEvent) -> None:
        f = ev.fields
        if ev.type == "commit":
            self.trace.commit(f.get("index", 0), f.get("term"))
            return
        self.trace.emit(ev.type, **f)
        if ev.type == "role":
            self.trace_log()
        if ev.type in _NOTABLE:
            logger.info("%s: %s %s", self.id, ev.type, " ".join(f"{k}={v}" for k, v in f.items()))
