"""The state machine's side of a node: committed entries in, answers out.

The node driver hands each batch's ``APPLY`` step (`raft.core.persist`) to an
`Applier`: install a snapshot received from the leader (§7), apply the
committed entries in log order, each exactly once, answer the clients that
proposed them (§8), and release the linearizable reads whose read index the
state machine has now reached (§6.4).  ``applied`` is the index of the last
entry the state machine reflects.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from raft.core.messages import EntryKind, NodeId, Snapshot
from raft.core.protocol import Ready
from raft.core.statemachine import StateMachine, op_kind
from raft.runtime.clients import ClientWaits
from raft.runtime.trace import TraceWriter

__all__ = ["Applier"]

logger = logging.getLogger("raft.runtime.node")

#: Apply this many entries, then let the event loop breathe (a long replay at start).
_APPLY_SLICE = 512


class Applier:
    """Applies one node's committed entries to its state machine."""

    def __init__(
        self, node_id: NodeId, state_machine: StateMachine, trace: TraceWriter, clients: ClientWaits
    ) -> None:
        self.id = node_id
        self.state_machine = state_machine
        self.trace = trace
        self.clients = clients
        #: The last index the state machine reflects.
        self.applied = 0

    def start_from(self, snapshot: Snapshot) -> None:
        """At start: the snapshot is the state machine up to its index (§7); the
        core hands over the committed entries after it in its first batch."""
        if snapshot.meta.index:
            self.state_machine.restore(snapshot.data)
        self.applied = snapshot.meta.index

    def restore(self, snap: Snapshot) -> None:
        """A snapshot from the leader replaces our state machine (§7)."""
        index = snap.meta.index
        self.state_machine.restore(snap.data)
        self.applied = max(self.applied, index)
        self.clients.covered_by_snapshot(index)
        logger.info("%s: installed snapshot at index %d", self.id, index)

    async def apply(self, rd: Ready, leader: NodeId | None) -> None:
        """Install a snapshot, apply committed entries in order (each once) and
        answer their proposers (§8); then release the reads now covered (§6.4)."""
        if rd.snapshot is not None:
            self.restore(rd.snapshot)
        sm, trace, clients = self.state_machine, self.trace, self.clients
        for n, e in enumerate(rd.committed, 1):
            if e.index <= self.applied:
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
            self.applied = e.index
            clients.applied(e, result, error)
            if n % _APPLY_SLICE == 0:
                await asyncio.sleep(0)  # a long replay must not starve the transport
        if rd.reads:
            clients.read_states(rd.reads, leader)
        clients.serve_reads(self.applied)
