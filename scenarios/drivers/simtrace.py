"""Traces from the deterministic simulator, in the shape real managers write.

The simulator (`raft.sim.simulator`) writes no traces, so `SimTracer` listens to it:
it wraps the safety checker's ``on_ready`` hook -- called with every core's
every batch -- and turns the batch's trace events into the JSON lines the
node driver would write, stamped with the simulator's *virtual* time.  Faults
and client operations are recorded the way the cluster supervisor and the
scenario runner record them (``faults.jsonl``, ``client.jsonl``), so `viz`
draws a simulated run exactly like a real one.

Two additions over a bare `Simulator`:

* node names: the simulator calls its nodes ``n1``..``nN``; with
  ``prefix="manager"`` every name in the written lines becomes
  ``manager1``..``managerN``, as on a real cluster;
* per-node election timeouts (``election_ticks``), so a scenario can decide
  which node times out first, as ``set_election_timeout`` does for real.

A pause is emulated by taking a node's core off the network and its ticks
(keeping the very same core object, volatile state and all) and putting it
back on unpause -- which is what SIGSTOP / SIGCONT do to a real process.

This reaches into private parts of the simulator (``_start``, ``_schedule``,
the event queue's shape and the ``crashes`` counter that retires a tick
chain); it is scaffolding for scenarios and tests, not part of the
simulator's API.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raft.core.messages import AppendEntries, AppendEntriesResponse, NodeId
from raft.core.protocol import RaftCore, Ready
from raft.sim.simulator import SimConfig, Simulator

__all__ = ["T0", "SimTracer"]

#: Unix time of virtual time zero (any constant works: viz counts from the first line).
T0 = 1_700_000_000.0
#: Seconds of simulated time each per-link ``message`` line sums up (as real traces).
LINK_WINDOW = 0.1

_SIM_NAME = re.compile(r"^n(\d+)$")
_SIM_WORD = re.compile(r"\bn(\d+)\b")


class _TunedSimulator(Simulator):
    """A `Simulator` whose nodes may each have their own election timeout, and
    which can run a callback every so often in virtual time (`call_every`)."""

    def __init__(self, config: SimConfig, seed: int, election_ticks: dict[NodeId, int]) -> None:
        self.election_ticks = dict(election_ticks)  # read by _start, called from __init__
        super().__init__(config, seed=seed)

    def call_every(self, ms: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` every ``ms`` of virtual time from now on, as a manager's
        periodic duty loop runs on a real leader; events at the same instant
        keep their order, so this is as deterministic as the rest."""
        self._schedule(ms, "call", (ms, fn))

    def step(self) -> bool:
        if self._queue and self._queue[0][2] == "call":
            when, _seq, _kind, payload = heapq.heappop(self._queue)
            ms, fn = payload  # type: ignore[misc]
            self.now = when
            fn()
            self._schedule(ms, "call", (ms, fn))
            return True
        return super().step()

    def _start(self, node_id: NodeId) -> None:
        super()._start(node_id)
        ticks = self.election_ticks.get(node_id)
        core = self.nodes[node_id].core
        if ticks and core is not None:
            core.config = dataclasses.replace(core.config, election_ticks=ticks)
            core.randomized_timeout = ticks  # redrawn from [T, 2T) at the next reset


class SimTracer:
    """Steps a `Simulator` and records what a real cluster would have traced."""

    def __init__(
        self,
        nodes: int = 5,
        seed: int = 1,
        config: SimConfig | None = None,
        prefix: str = "n",
        election_ticks: dict[str, int] | None = None,
    ) -> None:
        self.prefix = prefix
        ticks = {self.sim_id(k): v for k, v in (election_ticks or {}).items()}
        self.sim = _TunedSimulator(config or SimConfig(nodes=nodes), seed, ticks)
        self.lines: dict[str, list[dict[str, Any]]] = {}
        self._paused: dict[NodeId, RaftCore] = {}
        self._leader: dict[NodeId, NodeId | None] = {}
        # Per link, as `raft.runtime.trace` summarises what a node sends:
        # (kind, from, to) -> [messages, entries, highest term] since `_links_since`.
        self._links: dict[tuple[str, NodeId, NodeId], list[int]] = {}
        self._links_since = self.now
        checker = self.sim.checker
        original = checker.on_ready

        def on_ready(core: RaftCore, rd: Ready) -> None:
            original(core, rd)
            self._record_ready(core, rd)

        checker.on_ready = on_ready  # type: ignore[method-assign]
        for n in self.sim.ids:
            self._node_line(n, "start", term=0, commit_index=0, last_log_index=0)

    # ------------------------------------------------------------ names

    def name(self, sim_id: str) -> str:
        """The written name of a simulator node (``n3`` -> ``manager3``)."""
        m = _SIM_NAME.match(sim_id)
        return f"{self.prefix}{m.group(1)}" if m and self.prefix != "n" else sim_id

    def sim_id(self, name: str) -> NodeId:
        if (
            self.prefix != "n"
            and name.startswith(self.prefix)
            and name[len(self.prefix) :].isdigit()
        ):
            return f"n{name[len(self.prefix) :]}"
        return name

    def _rename(self, value: Any) -> Any:
        if isinstance(value, str):
            return _SIM_WORD.sub(lambda m: f"{self.prefix}{m.group(1)}", value)
        if isinstance(value, list | tuple):
            return [self._rename(v) for v in value]
        if isinstance(value, dict):
            return {k: self._rename(v) for k, v in value.items()}
        return value

    # ------------------------------------------------------------ recording

    @property
    def now(self) -> float:
        return T0 + self.sim.now / 1000.0

    def _add(self, file: str, line: dict[str, Any]) -> None:
        self.lines.setdefault(file, []).append(line)

    def _node_line(self, node: NodeId, type_: str, **fields: Any) -> None:
        self._add(f"{node}/trace.jsonl", {"t": self.now, "node": node, "type": type_, **fields})

    def _record_ready(self, core: RaftCore, rd: Ready) -> None:
        self._count_links(rd)
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

    def _count_links(self, rd: Ready) -> None:
        """The ``message`` lines a real node writes: appends, heartbeats and their
        answers counted per link and written once per `LINK_WINDOW` of simulated time."""
        if self.now - self._links_since >= LINK_WINDOW:
            self.flush_links()
        for m in rd.messages:
            if isinstance(m, AppendEntries):
                kind, n = ("append" if m.entries else "heartbeat"), len(m.entries)
            elif isinstance(m, AppendEntriesResponse):
                kind, n = "append_reply", 0
            else:
                continue
            link = self._links.setdefault((kind, m.src, m.dst), [0, 0, m.term])
            link[0] += 1
            link[1] += n
            link[2] = max(link[2], m.term)

    def flush_links(self) -> None:
        window = round(self.now - self._links_since, 3)
        for (kind, src, dst), (count, entries, term) in self._links.items():
            self._node_line(
                src, "message", kind=kind, to=dst, term=term, count=count, entries=entries,
                window=window, **{"from": src},
            )  # fmt: skip
        self._links = {}
        self._links_since = self.now

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

    def client_line(self, line: dict[str, Any]) -> None:
        self._add("client.jsonl", line)

    # ------------------------------------------------------------ actions

    def run(self, seconds: float) -> None:
        self.sim.run_for(seconds * 1000.0)

    def kill(self, node: NodeId) -> None:
        self._fault("kill", [node])
        self._paused.pop(node, None)  # SIGKILL ends a stopped process too
        self.sim.crash(node)

    def restart(self, node: NodeId) -> None:
        self._fault("restart", [node])
        self._paused.pop(node, None)
        self._leader.pop(node, None)
        if self.sim.nodes[node].up:
            self.sim.crash(node)
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

    def started(self, node: NodeId) -> None:
        """A ``start`` line for a node that joined after the beginning."""
        self._node_line(node, "start", term=0, commit_index=0, last_log_index=0)

    def set_election_ticks(self, node: NodeId, ticks: int) -> None:
        """The node's own election timeout from its next start on."""
        self.sim.election_ticks[node] = ticks

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

    def is_paused(self, node: NodeId) -> bool:
        return node in self._paused

    def partition(self, *groups: list[NodeId]) -> None:
        self._fault("partition", sorted({x for g in groups for x in g}), groups=list(groups))
        self.sim.partition(*groups)

    def cut_oneway(self, src: list[NodeId], dst: list[NodeId]) -> None:
        """Only ``src``'s messages to ``dst`` are lost; it replaces any partition."""
        self._fault("partition", sorted({*src, *dst}), groups=[src, dst], oneway=True)
        self.sim.heal()
        for a in src:
            for b in dst:
                self.sim.cut_link(a, b)

    def isolate(self, node: NodeId) -> None:
        self._fault("isolate", [node])
        self.sim.isolate(node)

    def heal(self) -> None:
        self._fault("heal", [])
        self.sim.heal()

    def write(self, timeout: float = 0.5, data: bytes = b"w", node: NodeId | None = None) -> bool:
        """One client write at the leader (or ``node``), waited for like a client would."""
        start = self.now
        proposed = self.sim.propose(data, node)
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
        self.flush_links()
        for name, lines in self.lines.items():
            parts = name.split("/")
            path = out.joinpath(*(self.name(p) for p in parts))
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = sorted(lines, key=lambda x: x["t"])
            if self.prefix != "n":
                lines = [self._rename(x) for x in lines]
            path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        return out
