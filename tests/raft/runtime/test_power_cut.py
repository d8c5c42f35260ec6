"""Persist before send on real nodes: a power cut between a vote and its fsync.

A killed process keeps the page cache, so no kill test can tell whether a
node sends its vote before or after the fsync.  Here the voter's disk loses
power (`raft.runtime.powercut`): the moment it is about to fsync the vote,
every write not yet synced is dropped and the node dies.  In-process nodes
on real TCP and real disk; every wait is bounded, every node stopped.

The story (three voters, so two make a majority):

1. n1 and n2 run; n3 does not yet.  n1 campaigns in term 1; n2 grants its
   vote and loses power at that vote's fsync.
2. n1 is cut off from both.  n2 comes back from what its disk kept, n3 starts and
   campaigns in term 1, and n2 -- which remembers no vote -- elects it.

With the real order the grant never left n2 (it waits for the fsync), so
n1 never led term 1 and n3 is its only leader.  With a planted order that
sends votes before the fsync, n1 won term 1 with the vote n2 then forgot,
and term 1 has two leaders: Election Safety (§5.2) is gone.

A second story does the same to an append acknowledgement (§5.3): sent
before its fsync, it lets the leader commit and answer a client with an
entry that only the leader's disk then holds; the leader dies, and the
write the client was told had committed is gone.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import defaultdict
from pathlib import Path

import pytest
from local_nodes import LocalCluster, eventually

from raft.core import persist
from raft.core.messages import AppendEntriesResponse, Entry, HardState, RequestVoteResponse
from raft.kv import encode_set
from raft.runtime.disk import DiskStorage
from raft.runtime.faults import PersistentFaultFilter
from raft.runtime.node import ProposalTimeout
from raft.runtime.powercut import PowerCut, PowerCutStorage, appends_a_command, grants_a_vote

#: Election ticks of a node that must never campaign by itself here.
NEVER = 100_000


def leaders_by_term(root: Path) -> dict[int, set[str]]:
    """Every (term, leader) the nodes' traces recorded, restarts included."""
    leaders: dict[int, set[str]] = defaultdict(set)
    for trace in root.glob("n*/trace.jsonl"):
        for line in trace.read_text().splitlines():
            ev = json.loads(line)
            if ev["type"] == "role" and ev["to"] == "leader":
                leaders[ev["term"]].add(ev["node"])
    return dict(leaders)


async def vote_then_power_cut(root: Path) -> dict[int, set[str]]:
    c = LocalCluster(root)
    try:
        n1 = await c.start("n1")
        n2 = await c.start(
            "n2", storage=PowerCutStorage.factory(grants_a_vote), election_ticks=NEVER
        )
        await eventually(lambda: n2.failure is not None, 10, "n2's power cut at its vote")
        failure = n2.failure
        assert isinstance(failure, ExceptionGroup) and failure.subgroup(PowerCut), failure
        # Whatever n2 sent before the cut reaches n1 before n2 is stopped.
        t1, t2 = n1.transport, n2.transport
        await eventually(
            lambda: t2.queued("n1") == 0 and t1.stats.received >= t2.stats.sent,
            5,
            "n2's last messages to reach n1",
        )
        # n1 is cut off on every side (its queued frames too): saved rules are
        # read by n2 and n3 when they start.
        n1.fault_filter.block("n2", "n3")
        await c.stop("n2")
        for node in ("n2", "n3"):
            (root / node).mkdir(exist_ok=True)
            PersistentFaultFilter(root / node / "faults.json").block("n1")
        await c.start("n2", election_ticks=NEVER)  # on what its disk kept
        n3 = await c.start("n3")
        await eventually(lambda: n3.is_leader, 10, "n3 to win with n2's vote")
    finally:
        await c.stop_all()
    return leaders_by_term(root)


async def test_a_vote_is_never_sent_before_its_fsync(tmp_path: Path) -> None:
    leaders = await vote_then_power_cut(tmp_path)
    assert leaders.get(1) == {"n3"}, leaders  # n2 voted in term 1 after the cut ...
    assert all(len(who) == 1 for who in leaders.values()), leaders  # ... only once


async def test_a_vote_sent_before_its_fsync_elects_two_leaders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted bug: the same story with votes sent before the fsync."""
    real = persist.plan

    def hasty(*args: object, **kwargs: object) -> persist.PersistPlan:
        p = real(*args, **kwargs)  # type: ignore[arg-type]
        votes = [m for m in p.late if isinstance(m, RequestVoteResponse)]
        rest = [m for m in p.late if not isinstance(m, RequestVoteResponse)]
        return dataclasses.replace(p, early=p.early + votes, late=rest)

    monkeypatch.setattr(persist, "plan", hasty)
    leaders = await vote_then_power_cut(tmp_path)
    assert leaders.get(1) == {"n1", "n3"}, leaders


# ---------------------------------------------------------------------------
# An append acknowledged before its fsync


async def ack_then_power_cut(root: Path) -> tuple[bool, dict[str, bytes]]:
    """n1 leads with n2 (n3 not started); n2 loses power at the fsync of a
    client's command.  Then n1 is gone for good, n2 comes back from its disk,
    n3 starts, and they elect a leader.  Returns whether the client was told
    its write committed, and the new leader's data."""
    c = LocalCluster(root)
    try:
        n1 = await c.start("n1")
        n2 = await c.start(
            "n2", storage=PowerCutStorage.factory(appends_a_command), election_ticks=NEVER
        )
        await eventually(lambda: n1.is_leader and n1.status()["commit_index"] >= 1, 10, "n1")
        try:
            await n1.propose(encode_set("k", b"v"), timeout=2.0)
            acknowledged = True
        except ProposalTimeout:
            acknowledged = False
        failure = n2.failure
        assert isinstance(failure, ExceptionGroup) and failure.subgroup(PowerCut), failure
        await c.stop("n1")
        await c.stop("n2")
        await c.start("n2")  # on what its disk kept
        await c.start("n3")
        leader = await c.wait_leader(10)
        await leader.propose(encode_set("after", b"v"), timeout=5.0)
        return acknowledged, dict(c.kvs[leader.id].data)
    finally:
        await c.stop_all()


async def test_an_acknowledged_write_survives_a_power_cut(tmp_path: Path) -> None:
    acknowledged, data = await ack_then_power_cut(tmp_path)
    # n2 never acknowledged the entry it had not synced, so n1 could not
    # commit it and the client was never told it had (§5.3, §8).
    assert not acknowledged
    assert "after" in data


async def test_an_append_acknowledged_before_its_fsync_loses_a_committed_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted bug: acknowledgements sent before the fsync."""
    real = persist.plan

    def hasty(*args: object, **kwargs: object) -> persist.PersistPlan:
        p = real(*args, **kwargs)  # type: ignore[arg-type]
        acks = [m for m in p.late if isinstance(m, AppendEntriesResponse)]
        rest = [m for m in p.late if not isinstance(m, AppendEntriesResponse)]
        return dataclasses.replace(p, early=p.early + acks, late=rest)

    monkeypatch.setattr(persist, "plan", hasty)
    acknowledged, data = await ack_then_power_cut(tmp_path)
    assert acknowledged and "k" not in data, (acknowledged, data)  # committed, then lost


# ---------------------------------------------------------------------------
# The hook itself, and the not-durable demo mode


def test_lose_power_keeps_exactly_what_was_synced(tmp_path: Path) -> None:
    disk = DiskStorage(tmp_path)
    disk.append([Entry(1, 1, b"a"), Entry(1, 2, b"b")])
    disk.set_hard_state(HardState(1, "n1", 2))
    disk.sync()
    disk.append([Entry(2, 3, b"c")])
    disk.set_hard_state(HardState(2, "n2", 2))
    disk.lose_power()
    with DiskStorage(tmp_path) as again:
        state = again.load()
    assert state.hard_state == HardState(1, "n1", 2)
    assert [e.data for e in state.entries] == [b"a", b"b"]


def test_without_fsync_nothing_waits_for_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(fd: int) -> None:
        raise AssertionError("fsync called in the no-fsync mode")

    with DiskStorage(tmp_path, fsync=False) as disk:
        monkeypatch.setattr(os, "fsync", refuse)
        monkeypatch.setattr(os, "fdatasync", refuse)
        monkeypatch.setattr("raft.runtime.disk._DATASYNC", refuse)
        disk.append([Entry(1, 1, b"a")])
        disk.set_hard_state(HardState(1, "n1", 1))
        disk.sync()
    monkeypatch.undo()
    with DiskStorage(tmp_path) as again:  # written all the same, in the same format
        assert [e.data for e in again.load().entries] == [b"a"]


async def test_a_node_without_fsync_says_it_is_not_durable(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path, n=1)
    try:
        node = await c.start("n1", fsync=False)
        await c.wait_leader()
        assert node.status()["durable"] is False
    finally:
        await c.stop_all()
    start = json.loads((tmp_path / "n1" / "trace.jsonl").read_text().splitlines()[0])
    assert start["type"] == "start" and start["durable"] is False
