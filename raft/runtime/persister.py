"""A node's storage in use: the WRITE and SYNC steps of the persistence order.

`raft.core.persist` decides, per batch, what to write and whether to fsync;
the node driver (`raft.runtime.node`) walks the steps in that order; this
object does the two steps that touch the disk, and keeps what they need to
remember between batches: the hard state last written (a commit-index-only
change may be held back, `raft.core.persist`), when it was written, and
whether the disk is full.

A full disk (ENOSPC) holds the batch at its SYNC step, retrying every
``disk_retry_interval`` until the write fits; a failed fsync (EIO) is never
retried and ends the node.  Why both are safe is in `raft.runtime.node`'s
docstring ("A disk that fills up").

The fsync runs on one dedicated thread (`executor`), so syncs are serialised
and the event loop keeps receiving meanwhile; a tiny batch is synced inline,
where handing it to the thread would cost more than it saves -- but only
while the disk is fast.  An inline fsync stops the whole event loop: no
tick, no message in or out.  Once a sync has taken longer than
`INLINE_SYNC_LIMIT`, syncs go to the thread until one is fast again, so a
slow disk never silences the node (its heartbeats leave during the fsync:
`raft.core.persist`, "While the fsync runs").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable

from raft.core.messages import HardState
from raft.core.persist import PersistPlan
from raft.core.protocol import Ready
from raft.runtime.backends import NodeStorage
from raft.runtime.disk import DiskFullError
from raft.runtime.trace import TraceWriter

__all__ = ["INLINE_SYNC_LIMIT", "Persister"]

#: Seconds an fsync may take for the next small one to run inline (module docstring).
INLINE_SYNC_LIMIT = 0.02

logger = logging.getLogger("raft.node")


class Persister:
    """Writes one node's batches and makes them durable (see the module docstring)."""

    def __init__(
        self,
        node_id: str,
        trace: TraceWriter,
        retry_interval: float,
        stopping: Callable[[], bool],
    ) -> None:
        self.node_id = node_id
        self.trace = trace
        self.retry_interval = retry_interval
        self._stopping = stopping
        self.storage: NodeStorage | None = None
        # One thread for fsync: syncs are serialised and never wait behind other work.
        self.executor = concurrent.futures.ThreadPoolExecutor(1, f"raft-sync-{node_id}")
        self.sync_future: asyncio.Future[None] | None = None
        #: Why the node cannot write its log now (None: it can).
        self.disk_error: str | None = None
        self.written_hs = HardState()  # the last hard state written (and synced)
        self.deferred_hs: HardState | None = None  # a commit-only change held back
        self._hs_written_at = 0.0
        #: Seconds the last sync took (a slow one sends the next to the thread).
        self.last_sync_seconds = 0.0

    def opened(self, storage: NodeStorage, durable: HardState) -> None:
        """The storage the node loaded ``durable`` from."""
        self.storage = storage
        self.written_hs = durable

    def since_hard_state(self) -> float:
        """Seconds since a hard state was last written (when a deferred one is due)."""
        return asyncio.get_running_loop().time() - self._hs_written_at

    def write(self, rd: Ready, plan: PersistPlan) -> None:
        """The WRITE step: snapshot, hard state and entries, not yet durable."""
        storage = self.storage
        assert storage is not None
        if rd.snapshot is not None:
            storage.install_snapshot(rd.snapshot)  # replaces the whole log (Figure 13)
        if plan.hard_state is not None:
            storage.set_hard_state(plan.hard_state)
            self.written_hs = plan.hard_state
            self._hs_written_at = asyncio.get_running_loop().time()
        self.deferred_hs = plan.deferred
        if rd.entries:
            storage.append(rd.entries)

    async def sync(self, inline: bool = False) -> None:
        """The SYNC step: everything written so far is durable when this returns."""
        try:
            await self._sync_once(inline)
        except DiskFullError as exc:
            await self._wait_for_space(exc)

    async def _wait_for_space(self, exc: DiskFullError) -> None:
        """Hold the batch until its writes fit (module docstring)."""
        self.disk_error = f"{self.node_id} cannot write its Raft log: {exc}"
        logger.warning("%s; retrying every %gs", self.disk_error, self.retry_interval)
        self.trace.emit("disk", state="full", error=str(exc))
        while True:
            if self._stopping():
                raise asyncio.CancelledError  # stop() abandons this batch
            await asyncio.sleep(self.retry_interval)
            try:
                await self._sync_once()
                break
            except DiskFullError:
                continue
        logger.info("%s: its disk has room again; writes resume", self.node_id)
        self.trace.emit("disk", state="ok")
        self.disk_error = None

    async def _sync_once(self, inline: bool = False) -> None:
        started = time.monotonic()
        try:
            await self._sync_where(inline and self.last_sync_seconds <= INLINE_SYNC_LIMIT)
        finally:
            self.last_sync_seconds = time.monotonic() - started

    async def _sync_where(self, inline: bool) -> None:
        assert self.storage is not None
        if inline:
            # A small batch (one client waiting, a vote): handing the fsync to
            # the sync thread and back would cost two thread wake-ups, more
            # than the loop gains by running meanwhile.  Our messages that may
            # leave before the fsync are already in the sockets (the transport
            # writes at once when the link is idle).
            self.storage.sync()
            return
        loop = asyncio.get_running_loop()
        self.sync_future = loop.run_in_executor(self.executor, self.storage.sync)
        # Shielded: if stop() cancels us mid-fsync, the fsync still completes and
        # stop() waits for it before closing the files.
        await asyncio.shield(self.sync_future)
