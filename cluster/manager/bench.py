"""Raft alone, measured from inside the leader (``POST /raft/bench``).

``python -m cluster bench`` wants two numbers: what a client sees through
HTTP, and what Raft itself costs.  The second needs entries that go through
the whole log -- replication, fsync on a majority, commit, apply on every
manager -- but touch neither the session layer nor the store.  They are
marked by their first byte and ignored when applied.  Apart from the rest
because nothing else in the manager needs to know they exist.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from cluster.api.backend import NotLeaderError
from raft.core.protocol import NotLeader, ProposalDropped
from raft.core.session import SessionStateMachine
from raft.runtime.node import ProposalLost, ProposalTimeout, RaftNode

__all__ = ["BENCH_MARK", "BenchEntries", "bench_proposals"]

#: First byte of a benchmark entry (`bench_proposals`): 0xC1 is the one
#: byte msgpack never uses, so no session command can start with it.
BENCH_MARK = b"\xc1"
#: Bounds of one `bench_proposals` call.
BENCH_MAX_SECONDS = 60.0
BENCH_MAX_OUTSTANDING = 1024
BENCH_MAX_SIZE = 64 * 1024


class BenchEntries:
    """The replicated state machine, plus entries that change nothing.

    `bench_proposals` measures Raft alone (no HTTP, no session, no
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


async def bench_proposals(
    node: RaftNode,
    request_timeout: float,
    not_leader: Callable[[str | None], NotLeaderError],
    outstanding: int,
    size: int,
    duration: float,
    max_ops: int,
) -> dict[str, Any]:
    """Propose no-op entries (`BenchEntries`) from inside the leader, keeping
    ``outstanding`` in flight for ``duration`` seconds or ``max_ops`` entries;
    returns each one's latency (propose -> applied here) in milliseconds."""
    if not node.is_leader:
        raise not_leader(node.status().get("leader"))
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
                await node.propose(data, timeout=request_timeout)
            except (NotLeader, ProposalDropped, ProposalTimeout, ProposalLost):
                errors += 1
                await asyncio.sleep(0.01)
                continue
            latencies.append((clock() - t0) * 1000)

    async with asyncio.TaskGroup() as tg:
        for _ in range(outstanding):
            tg.create_task(proposer())
    return {"latencies_ms": latencies, "elapsed_s": clock() - start, "errors": errors}
