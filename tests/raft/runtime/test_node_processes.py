"""Three real node processes over TCP with fsync: failover and recovery from disk.

Marked ``integration``: each test starts OS processes.  The fixture kills
every process it started (SIGKILL by PID) whatever happens.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from node_procs import ProcCluster

from raft.kv import ControlError, encode_set

pytestmark = pytest.mark.integration


@pytest.fixture
async def procs(tmp_path: Path) -> AsyncIterator[ProcCluster]:
    c = ProcCluster(tmp_path)
    try:
        yield c
    finally:
        await c.cleanup()


async def write(c: ProcCluster, key: str, value: bytes, timeout: float = 10.0) -> bool:
    """Write through whichever node leads; True once acknowledged, False on a definite
    or possible failure (not acknowledged: the write may or may not have happened)."""
    end = time.monotonic() + timeout
    target = None
    while time.monotonic() < end:
        nodes = [target] if target in c.clients else list(c.clients)
        for node_id in nodes:
            try:
                await c.call(node_id, "propose", timeout=3.0, data=encode_set(key, value))
                return True
            except ControlError as exc:
                if exc.kind == "not_leader":
                    target = exc.detail
                    continue
                return False  # timeout / lost: unknown outcome, not acknowledged
            except (ConnectionError, TimeoutError):
                target = None
        await asyncio.sleep(0.05)
    return False


async def test_failover_and_restart_keep_every_acknowledged_write(procs: ProcCluster) -> None:
    for node_id in procs.peers:
        await procs.start(node_id)
    first = await procs.wait_leader()
    acked: dict[str, bytes] = {}
    for i in range(100):
        if await write(procs, f"before{i}", b"%d" % i):
            acked[f"before{i}"] = b"%d" % i
    assert len(acked) == 100

    # Writes keep coming while the leader is killed mid-stream.
    async def writer() -> None:
        for i in range(150):
            key = f"during{i}"
            if await write(procs, key, b"d"):
                acked[key] = b"d"

    task = asyncio.create_task(writer())
    try:
        # Kill the leader mid-stream: once some of these writes are acknowledged.
        async with asyncio.timeout(10):
            while not any(k.startswith("during") for k in acked):
                await asyncio.sleep(0.01)
        assert await procs.kill(first) == -signal.SIGKILL
        second = await procs.wait_leader(timeout=10, exclude=first)
        assert second != first
        async with asyncio.timeout(60):
            await task
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
    assert len(acked) > 200  # most of the writes got through the failover

    await procs.start(first)  # back on its own data directory
    target = (await procs.call(second, "status"))["commit_index"]

    async def caught_up() -> bool:
        st = await procs.call(first, "status")
        return st["applied_index"] >= target

    async with asyncio.timeout(15):
        while not await caught_up():
            await asyncio.sleep(0.05)
    for node_id in procs.peers:
        for key, value in acked.items():
            got = await procs.call(node_id, "get", key=key, linearizable=False)
            assert got == value, f"{node_id} lost acknowledged write {key}"
    st = await procs.call(first, "status")
    assert st["role"] == "follower" and st["leader"] == second


async def test_sigterm_stops_gracefully_and_data_survives(procs: ProcCluster) -> None:
    for node_id in procs.peers:
        await procs.start(node_id)
    leader = await procs.wait_leader()
    assert await write(procs, "k", b"v")
    for node_id in list(procs.procs):
        started = time.monotonic()
        assert await procs.kill(node_id, signal.SIGTERM, timeout=8) == 0
        assert time.monotonic() - started < 8
    for node_id in procs.peers:
        await procs.start(node_id)
    await procs.wait_leader()
    for node_id in procs.peers:
        assert await procs.call(node_id, "get", key="k", timeout=5) == b"v"
    trace = (procs.root / leader / "trace.jsonl").read_text()
    assert '"type":"stop"' in trace and '"type":"role"' in trace
