"""Clients waiting on a node: proposals until their entry is applied, reads until
their read index is (§6.4, §8).

`RaftNode` owns one `ClientWaits`.  A proposal waits on the (index, term) the
leader gave its entry; applying the entry at that index resolves it with the
state machine's result, or with `ProposalLost` if another leader's entry took
the index (§5.3).  A linearizable read waits first for the core's
`ReadState` (its read index, confirmed by a heartbeat round) and then for
the state machine to reach that index.  Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

from raft.core.messages import Entry, NodeId
from raft.core.protocol import NotLeader
from raft.core.readindex import ReadState

__all__ = [
    "ClientWaits",
    "DiskFull",
    "NodeStopped",
    "ProposalError",
    "ProposalLost",
    "ProposalTimeout",
]


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


class DiskFull(ProposalError):
    """This node cannot write its Raft log (no space): it takes no new proposal
    or read until a write succeeds again.  The message names the node, the
    cause and the file."""


@dataclass(slots=True)
class _Waiter:
    term: int
    future: asyncio.Future[Any]


def _time_out(future: asyncio.Future[Any], index: int, term: int, timeout: float) -> None:
    """`ClientWaits.wait_entry`'s timer: the entry was not applied in time."""
    if not future.done():
        future.set_exception(
            ProposalTimeout(f"entry {index} (term {term}) not applied within {timeout}s")
        )


class ClientWaits:
    """Proposals and reads in flight on one node."""

    def __init__(self) -> None:
        self._waiters: dict[int, _Waiter] = {}
        self._read_ids = itertools.count(1)
        self._reads: dict[int, asyncio.Future[int]] = {}  # waiting for a ReadState
        self._read_waits: list[tuple[int, asyncio.Future[int]]] = []  # waiting for apply

    # ------------------------------------------------------------ proposals

    def waiting_on(self, committed: list[Entry]) -> bool:
        """Whether a client waits on one of ``committed`` (it may then be answered
        before the batch's other messages go out, `raft.core.persist`)."""
        waiters = self._waiters
        return bool(waiters) and any(e.index in waiters for e in committed)

    async def wait_entry(self, index: int, term: int, timeout: float) -> Any:
        """Wait until the entry at ``index`` is applied; its result if it is ours."""
        old = self._waiters.pop(index, None)
        if old is not None and not old.future.done():
            # We proposed at this index in an earlier term; our log now holds the
            # new entry there, so the old one is gone for good.
            old.future.set_exception(ProposalLost(f"entry {index} replaced"))
        loop = asyncio.get_running_loop()
        waiter = _Waiter(term, loop.create_future())
        self._waiters[index] = waiter
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

    def applied(self, e: Entry, result: Any, error: Exception | None) -> None:
        """``e`` was applied: resolve its proposer, if it waits here (§8)."""
        w = self._waiters.pop(e.index, None)
        if w is None or w.future.done():
            return
        if w.term != e.term:
            w.future.set_exception(
                ProposalLost(f"entry {e.index} holds term {e.term}, not {w.term}")
            )
        elif error is not None:
            w.future.set_exception(error)
        else:
            w.future.set_result(result)

    def covered_by_snapshot(self, index: int) -> None:
        """A snapshot from the leader replaced our log up to ``index`` (§7)."""
        for i in [i for i in self._waiters if i <= index]:
            w = self._waiters.pop(i)
            if not w.future.done():
                w.future.set_exception(ProposalLost(f"entry {i} is covered by a snapshot"))

    # ------------------------------------------------------------ reads

    def new_read(self) -> tuple[int, asyncio.Future[int]]:
        """A read request id for ``core.read_index`` and the future it resolves."""
        request_id = next(self._read_ids)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reads[request_id] = fut
        return request_id, fut

    def forget_read(self, request_id: int) -> None:
        self._reads.pop(request_id, None)

    def read_states(self, states: list[ReadState], leader: NodeId | None) -> None:
        """The core answered reads: each now waits for its index to be applied."""
        for rs in states:
            fut = self._reads.pop(rs.request_id, None)
            if fut is None or fut.done():
                continue
            if not rs.ok:
                fut.set_exception(NotLeader(leader))
            else:
                self._read_waits.append((rs.index, fut))

    def serve_reads(self, applied: int) -> None:
        """Release the reads whose read index the state machine has reached (§6.4)."""
        if not self._read_waits:
            return
        waiting = []
        for index, fut in self._read_waits:
            if fut.done():
                continue
            if index <= applied:
                fut.set_result(index)
            else:
                waiting.append((index, fut))
        self._read_waits = waiting

    # ------------------------------------------------------------ the end

    def fail_all(self, exc: Exception) -> None:
        for w in self._waiters.values():
            if not w.future.done():
                w.future.set_exception(exc)
        self._waiters.clear()
        for fut in itertools.chain(self._reads.values(), (f for _, f in self._read_waits)):
            if not fut.done():
                fut.set_exception(exc)
        self._reads.clear()
        self._read_waits.clear()
