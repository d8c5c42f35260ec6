"""Realistic trace directories for the `viz` tests, made with the simulator.

The simulator (`raft.sim`) writes no traces, so `SimTracer` listens to it:
it wraps the safety checker's ``on_ready`` hook -- called with every core's
every batch -- and turns the batch's trace events into the JSON lines the
node driver would write, stamped with the simulator's *virtual* time.  Faults
and client operations are recorded the way the cluster supervisor and the
scenario runner record them (``faults.jsonl``, ``client.jsonl``).

A pause is emulated by taking a node's core off the network and its ticks
(keeping the very same core object, volatile state and all) and putting it
back on unpause -- which is what SIGSTOP / SIGCONT do to a real process.

This is test scaffolding: it reaches into two private parts of the simulator
(``_schedule`` to restart a paused node's ticks, and the ``crashes`` counter
that retires a tick chain).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raft.core import RaftCore, Ready
from raft.messages import NodeId
from raft.sim import SimConfig, Simulator

#: Unix time of virtual time zero (any constant works: viz counts from the first line).
T0 = 1_700_000_000.0


class SimTracer:
    """Steps a `Simulator` and records what a real cluster would have traced."""

    def __init__(self, nodes: int = 5, seed: int = 1, config: SimConfig | None = None) -> None:
        self.sim = Simulator(config or SimConfig(nodes=nodes), seed=seed)
        self.lines: dict[str, list[dict[str, Any]]] = {}
        self._paused: dict[NodeId, RaftCore] = {}
        self._leader: dict[NodeId, NodeId | None] = {}
        checker = self.sim.checker
        original = checker.on_ready

        def on_ready(core: RaftCore, rd: Ready) -> None:
            original(core, rd)
            self._record_ready(core, rd)

        checker.on_ready = on_ready  # type: ignore[method-assign]
        for n in self.sim.ids:
            self._node_line(n, "start", term=0, commit_index=0, last_log_index=0)

    # ------------------------------------------------------------ recording

    @property
    def now(self) -> float:
        return T0 + self.sim.now / 1000.0

    def _add(self, file: str, line: dict[str, Any]) -> None:
        self.lines.setdefault(file, []).append(line)

    def _node_line(self, node: NodeId, type_: str, **fields: Any) -> None:
        self._add(f"{node}/trace.jsonl", {"t": self.now, "node": node, "type": type_, **fields})

    def _record_ready(self, core: RaftCore, rd: Ready) -> None:
        for ev in rd.events:
            self._node_line(core.id, ev.type, **ev.fields)
            if ev.type == "role":
                self.log_line(core)
        if rd.committed:
            first, last = rd.committed[0].index, rd.committed[-1].index
            fields: dict[str, Any] = {"index": last, "op": "write"}
            if last > first:
                fields.update(first_index=first, count=last - first + 1)
            self._node_line(core.id, "apply", **fields)
        if core.leader_id != self._leader.get(core.id):  # as the node driver does
            self._leader[core.id] = core.leader_id
            self._node_line(core.id, "leader", leader=core.leader_id, term=core.term)

    def log_line(self, core: RaftCore) -> None:
        """The optional ``log`` event (see `viz.model`): the node's whole log."""
        entries = [[e.index, e.term] for e in core.log.entries]
        self._node_line(
            core.id,
            "log",
            entries=entries,
            commit=core.commit_index,
            snapshot_index=core.log.snapshot.index,
        )

    def snapshot_logs(self) -> None:
        """A ``log`` line from every running node now (a key instant)."""
        for n in self.sim.nodes.values():
            if n.core is not None:
                self.log_line(n.core)

    def _fault(self, kind: str, targets: list[NodeId], **extra: Any) -> None:
        self._add(
            "faults.jsonl",
            {
                "t": self.now,
                "node": "supervisor",
                "type": "fault",
                "kind": kind,
                "targets": targets,
                **extra,
            },
        )

    # ------------------------------------------------------------ actions

    def run(self, seconds: float) -> None:
        self.sim.run_for(seconds * 1000.0)

    def kill(self, node: NodeId) -> None:
        self._fault("kill", [node])
        self.sim.crash(node)

    def restart(self, node: NodeId) -> None:
        self._fault("restart", [node])
        self._leader.pop(node, None)
        self.sim.restart(node)
        core = self.sim.nodes[node].core
        assert core is not None
        self._node_line(
            node,
            "start",
            term=core.term,
            commit_index=core.commit_index,
            last_log_index=core.log.last_index,
        )
        self.log_line(core)

    def pause(self, node: NodeId) -> None:
        self._fault("pause", [node])
        n = self.sim.nodes[node]
        assert n.core is not None
        self._paused[node] = n.core
        n.core = None
        n.crashes += 1  # retires the tick chain of this core

    def unpause(self, node: NodeId) -> None:
        self._fault("unpause", [node])
        n = self.sim.nodes[node]
        n.core = self._paused.pop(node)
        self.sim._schedule(self.sim.config.tick_ms, "tick", (node, n.crashes))

    def partition(self, *groups: list[NodeId]) -> None:
        self._fault("partition", sorted({x for g in groups for x in g}), groups=list(groups))
        self.sim.partition(*groups)

    def isolate(self, node: NodeId) -> None:
        self._fault("isolate", [node])
        self.sim.isolate(node)

    def heal(self) -> None:
        self._fault("heal", [])
        self.sim.heal()

    def write(self, timeout: float = 0.5) -> bool:
        """One client write at the leader, waited for like a client would."""
        start = self.now
        proposed = self.sim.propose(b"w")
        if proposed is None:
            self.run(timeout)  # a client retries until its deadline, then gives up
            self._client(start, "fail", None, "no leader")
            return False
        index, term = proposed
        ok = self.sim.wait_committed(index, term, timeout * 1000.0)
        self._client(start, "ok" if ok else "timeout", index if ok else None, None)
        return ok

    def _client(self, start: float, outcome: str, index: int | None, error: str | None) -> None:
        line: dict[str, Any] = {
            "t": self.now,
            "node": "client",
            "type": "client",
            "op": "write",
            "start": start,
            "end": self.now,
            "outcome": outcome,
            "index": index,
        }
        if error:
            line["error"] = error
        self._add("client.jsonl", line)

    def leader(self) -> NodeId | None:
        return self.sim.leader()

    def wait_leader(self, seconds: float = 3.0) -> NodeId | None:
        return self.sim.wait_leader(seconds * 1000.0)

    # ------------------------------------------------------------ output

    def write_dir(self, out: Path) -> Path:
        for name, lines in self.lines.items():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = sorted(lines, key=lambda x: x["t"])
            path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        return out


def leader_failover_trace(out: Path, seed: int = 1) -> Path:
    """Five managers: writes, the leader killed, a follower paused, a partition
    that loses quorum, a stale node refused, then healing."""
    s = SimTracer(nodes=5, seed=seed)
    first = s.wait_leader()
    assert first is not None
    for _ in range(6):
        s.write()
        s.run(0.05)
    s.snapshot_logs()
    s.kill(first)
    for _ in range(4):
        s.write()
        s.run(0.05)
    second = s.wait_leader()
    assert second is not None
    for _ in range(4):
        s.write()
    s.restart(first)
    s.run(0.4)
    others = [n for n in s.sim.ids if n not in (first, second)]
    s.pause(others[0])
    s.run(0.3)
    s.write()
    # The leader and one follower on one side, the rest on the other, one paused:
    # no side holds three live managers, so nothing commits.
    s.partition([second, others[1]], [first, others[0], others[2]])
    s.run(0.1)
    s.write()
    s.write()
    s.run(0.5)
    s.snapshot_logs()
    s.unpause(others[0])
    s.run(0.6)
    s.heal()
    s.wait_leader()
    s.run(0.3)
    for _ in range(4):
        s.write()
        s.run(0.05)
    s.run(0.3)
    s.snapshot_logs()
    return s.write_dir(out)
