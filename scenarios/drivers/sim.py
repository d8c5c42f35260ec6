"""The same scenario steps on the deterministic simulator (``--simulated``).

`SimDriver` implements `scenarios.steps.driver.Driver`, as
`scenarios.drivers.real.RealDriver` does, over a
`scenarios.drivers.simtrace.SimTracer`: time is virtual (a run of minutes takes a
fraction of a second), everything follows from the seed, and the traces it
writes have the real cluster's shape and node names, so the same figures
and the same checks apply.

Mapping: the cluster's heartbeat becomes one simulator tick, the election
timeout ``election_timeout_ms / heartbeat_ms`` ticks; a write is a proposal
at the leader (or at the node it is sent ``via``: a follower forwards it to
the leader it knows, if it can reach it), given ``request_timeout_ms`` to
commit.  Swarm objects (services, tasks, secrets, drain) do not exist on the
simulator: those actions raise `NotApplicable`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raft.core.membership import ConfChangeOp
from raft.core.protocol import Role
from raft.sim.simulator import SimConfig
from scenarios.drivers.admin import AdminNotSimulated
from scenarios.drivers.simtrace import SimTracer
from scenarios.drivers.tolerance import tolerance
from scenarios.steps import ClientOp, ClusterSpec, NotApplicable

__all__ = ["SimDriver"]


class SimDriver(AdminNotSimulated):
    mode = "simulated"
    #: The simulator's in-memory network drops the messages itself.
    network = "simulated"

    def __init__(self, spec: ClusterSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.names = list(spec.names)
        self.tracer = SimTracer(
            seed=seed,
            config=SimConfig(
                nodes=spec.managers,
                tick_ms=float(spec.heartbeat_ms),
                heartbeat_ticks=1,
                election_ticks=self._ticks(spec.election_timeout_ms),
            ),
            prefix="manager",
            election_ticks={
                n: self._ticks(ms) for n, ms in spec.election_timeout_overrides.items()
            },
        )
        self.sim = self.tracer.sim

    def _ticks(self, ms: int) -> int:
        return max(2, round(ms / self.spec.heartbeat_ms))

    def _id(self, name: str) -> str:
        return self.tracer.sim_id(name)

    def _name(self, sim_id: str | None) -> str | None:
        return self.tracer.name(sim_id) if sim_id else None

    # ------------------------------------------------------------ lifecycle

    def now(self) -> float:
        return self.tracer.now

    def start(self) -> None:
        self.tracer.wait_leader(30.0)

    def stop(self) -> None:
        pass

    def collect_traces(self, dest: Path) -> None:
        self.tracer.write_dir(dest)

    def write_client_lines(self, ops: list[ClientOp]) -> None:
        for op in ops:
            self.tracer.client_line(op.line())

    # ------------------------------------------------------------ state

    def running(self) -> list[str]:
        """Live members of the current configuration."""
        members = set(self.sim.members())
        return [
            self.tracer.name(i)
            for i, n in self.sim.nodes.items()
            if n.core is not None and i in members
        ]

    def leader(self) -> str | None:
        return self._name(self.sim.leader())

    def max_term(self) -> int:
        return max((n.core.term for n in self.sim.nodes.values() if n.core), default=0)

    def wait(self, seconds: float) -> None:
        self.tracer.run(seconds)

    def poll(self) -> None:
        self.tracer.run(self.spec.heartbeat_ms / 1000)

    # ------------------------------------------------------------ faults

    def _state(self, node: str) -> str:
        """running, paused or down -- what the supervisor says of a process."""
        sid = self._id(node)
        if sid not in self.sim.nodes:
            raise RuntimeError(f"{node} is not part of this cluster")
        if self.tracer.is_paused(sid):
            return "paused"
        return "running" if self.sim.nodes[sid].up else "down"

    def _expect(self, node: str, *states: str) -> None:
        """Refuse what the supervisor refuses (a second kill, an unpause of a
        running node), with its words, so both modes fail the same step."""
        state = self._state(node)
        if state not in states:
            if states == ("running", "paused"):
                raise RuntimeError(f"{node} is not running")
            raise RuntimeError(f"{node} is {state}, not {states[0]}")

    def kill(self, node: str) -> None:
        self._expect(node, "running", "paused")
        self.tracer.kill(self._id(node))

    def restart(self, node: str) -> None:
        self._state(node)
        self.tracer.restart(self._id(node))

    def pause(self, node: str) -> None:
        self._expect(node, "running")
        self.tracer.pause(self._id(node))

    def unpause(self, node: str) -> None:
        self._expect(node, "paused")
        self.tracer.unpause(self._id(node))

    def isolate(self, node: str) -> None:
        self.tracer.isolate(self._id(node))

    def partition(self, groups: list[list[str]], oneway: bool = False) -> None:
        ids = [[self._id(n) for n in g] for g in groups]
        if oneway:
            self.tracer.cut_oneway(ids[0], ids[1])
            return
        named = {x for g in ids for x in g}
        rest = [i for i in self.sim.ids if i not in named]
        if rest:
            ids.append(rest)
        self.tracer.partition(*ids)

    def heal(self) -> None:
        self.tracer.heal()

    def set_links(self, loss: int, delay_ms: int) -> None:
        self.tracer.network(loss / 100, float(delay_ms))

    def set_election_timeout(self, node: str, ms: int) -> None:
        self.tracer.set_election_ticks(self._id(node), self._ticks(ms))
        self.tracer.restart(self._id(node))

    def trace_log(self) -> None:
        self.tracer.snapshot_logs()

    def transfer_leadership(self, to: str | None) -> str | None:
        """Hand leadership over and wait (two election timeouts at most) until the
        target leads, as the real ``POST /raft/transfer-leadership`` does."""
        leader = self.sim.leader()
        core = self.sim.nodes[leader].core if leader else None
        if core is None:
            raise RuntimeError("there is no leader to transfer leadership from")
        if to is not None and self._id(to) not in core.conf.voters:
            raise RuntimeError(f"leadership transfer refused: {to} is not a voter")
        chosen = self.sim.transfer(self._id(to) if to else None)
        if chosen is None:
            raise RuntimeError("leadership transfer refused (another transfer under way?)")
        limit = 2 * self.spec.election_timeout_ms
        if not self.sim.run_until(lambda: self.sim.leader() == chosen, limit):
            raise RuntimeError(f"leadership transfer to {self._name(chosen)} did not complete")
        return self._name(chosen)

    # ------------------------------------------------------------ writes

    def _proposer(self, via: str | None) -> str | None:
        """Where the proposal lands: the leader, or what ``via`` forwards to."""
        if via is None:
            return self.sim.leader()
        node = self.sim.nodes[self._id(via)].core
        if node is None:
            return None
        if node.role is Role.LEADER:
            return node.id
        target = node.leader_id
        if target is None or (node.id, target) in self.sim.cut:
            return None
        return target

    def write(
        self, step: int, key: str, kind: str, via: str | None, timeout: float | None
    ) -> ClientOp:
        wait = timeout if timeout is not None else self.spec.request_timeout_ms / 1000
        start = self.now()
        proposer = self._proposer(via)
        proposed = self.sim.propose(key.encode(), proposer) if proposer else None
        op = ClientOp(
            "write", key, f"{key}-value", start, start, "ok", step, via or self._name(proposer)
        )
        if proposed is None:
            self.tracer.run(wait)  # the client waits for its deadline, then gets a 503
            op.outcome, op.status, op.error = "fail", 503, "no leader or no quorum"
        else:
            index, term = proposed
            if self.sim.wait_committed(index, term, wait * 1000.0):
                op.index, op.term = index, term
            else:
                op.outcome, op.status = "fail", 503
                op.error = f"not committed within {wait:g} s (no quorum)"
        op.end = self.now()
        return op

    def fill_indexes(self, ops: list[ClientOp]) -> None:
        pass  # known at proposal time

    # ------------------------------------------------------------ membership

    def _change(self, op: ConfChangeOp, sid: str) -> None:
        """Propose one membership change and wait until it commits (one at a time, §4.1).

        The leader refuses while an earlier change is uncommitted or a learner
        is still catching up; like an operator, we retry for a while."""
        index = None
        deadline = self.sim.now + 5000
        while index is None and self.sim.now < deadline:
            if op is ConfChangeOp.ADD_LEARNER:
                index = self.sim.add_node(sid)
            else:
                index = self.sim.change(op, sid)
            if index is None:
                self.tracer.run(0.05)
        if index is None:
            raise RuntimeError(f"the leader refused to {op.value} {self.tracer.name(sid)}")

        def committed() -> bool:
            leader = self.sim.leader()
            core = self.sim.nodes[leader].core if leader else None
            return bool(core and core.commit_index >= index)

        if not self.sim.run_until(committed, 5000):
            raise RuntimeError(f"{op.value} {self.tracer.name(sid)} did not commit within 5 s")

    def promote(self, node: str) -> None:
        """Make ``node`` a voter (§4.2.1): a learner is promoted once caught up; a
        server outside the configuration first joins as a learner."""
        sid = self._id(node)
        if node not in self.names:
            self.names.append(node)
        if sid not in self.sim.members():
            self._change(ConfChangeOp.ADD_LEARNER, sid)
        self._change(ConfChangeOp.PROMOTE, sid)

    def demote(self, node: str) -> None:
        """Make ``node`` a learner: it keeps receiving the log but no longer
        votes or counts towards a majority (as ``docker node demote`` does here)."""
        self._change(ConfChangeOp.DEMOTE, self._id(node))

    def join(self, role: str) -> str:
        """The closest thing to ``docker swarm join`` with a manager token: an empty
        server joins as a learner (dissertation §4.2.1), and from then on the
        leader's duty loop -- every 250 ms, as on a real manager -- promotes it
        once it has caught up (the core refuses earlier).  Returns its name."""
        if role != "manager":
            raise NotApplicable("workers are Swarm agents, not part of Raft: not simulated")
        k = 1
        while f"manager{k}" in self.names:
            k += 1
        name = f"manager{k}"
        sid = self._id(name)
        self.names.append(name)
        self.tracer.started(sid)
        self._change(ConfChangeOp.ADD_LEARNER, sid)

        def duty() -> None:  # the leader's reconcile loop (cluster.manager.duties)
            leader = self.sim.leader()
            core = self.sim.nodes[leader].core if leader else None
            if core is not None and sid in core.conf.learners:
                self.sim.change(ConfChangeOp.PROMOTE, sid)

        self.tracer.sim.call_every(250.0, duty)
        return name

    def voters(self) -> list[str]:
        leader = self.sim.leader()
        core = self.sim.nodes[leader].core if leader else None
        return [self.tracer.name(i) for i in core.conf.voters] if core else []

    def nodes_ready(self, names: list[str]) -> bool:
        raise NotApplicable("Swarm nodes' status (ready/down) is not simulated")

    def force_new_cluster(self, node: str) -> None:
        sid = self._id(node)
        others = [i for i in self.sim.ids if i != sid and self.sim.nodes[i].up]
        for i in others:
            self.tracer._fault("kill", [i])
        self.tracer._fault("restart", [sid], note="force-new-cluster")
        self.sim.force_new_cluster(sid)

    def members(self) -> list[str]:
        return [self.tracer.name(i) for i in self.sim.members()]

    # ------------------------------------------------------------ Swarm-only

    def _swarm_only(self) -> None:
        raise NotApplicable("Swarm objects (nodes, services, tasks, secrets) are not simulated")

    def drain(self, node: str, availability: str) -> None:
        self._swarm_only()

    def create_service(self, name: str, replicas: int, image: str) -> None:
        self._swarm_only()

    def scale(self, service: str, replicas: int) -> None:
        self._swarm_only()

    def create_secret(self, name: str, data: str) -> None:
        self._swarm_only()

    def create_config(self, name: str, data: str) -> None:
        self._swarm_only()

    def lock(self) -> None:
        self._swarm_only()

    def unlock(self, key: str) -> None:
        self._swarm_only()

    def nodes(self) -> list[dict[str, Any]]:
        raise NotApplicable("Swarm objects (nodes, services, tasks, secrets) are not simulated")

    def services(self) -> list[dict[str, Any]]:
        raise NotApplicable("Swarm objects (nodes, services, tasks, secrets) are not simulated")

    def tasks(self) -> list[dict[str, Any]]:
        raise NotApplicable("Swarm objects (nodes, services, tasks, secrets) are not simulated")

    def measure_tolerance(self, managers: int, real: list[int]) -> tuple[int, str]:
        """How many of ``managers`` may fail with writes still committing (always
        simulated here: ``real`` sizes are measured on processes in real mode only)."""
        s = self.spec
        spec = ClusterSpec(managers, s.election_timeout_ms, s.heartbeat_ms, s.request_timeout_ms)
        fresh = SimDriver(spec, (self.seed or 1) + managers)
        return tolerance(fresh, managers, s.election_timeout_ms), "simulated"

    def service_tasks(self, service: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        raise NotApplicable("services and their tasks are not simulated")

    def update_service(self, service: str, image: str, parallelism: int, delay: float) -> str:
        raise NotApplicable("services and their tasks are not simulated")

    def rollback_service(self, service: str) -> tuple[str, str]:
        raise NotApplicable("services and their tasks are not simulated")

    def measure_costs(self, managers: int, settings: dict[str, int]) -> dict[str, Any]:
        raise NotApplicable(
            "the simulator charges nothing for a disk write and draws message delays from "
            "its own model: only real managers show what each one costs"
        )

    def tasks_running(self) -> bool:
        raise NotApplicable("tasks are not simulated")

    # Tasks and management (`scenarios.steps.tasks`): Swarm, not Raft.
    def snapshot_tasks(self) -> dict[str, Any]:
        raise NotApplicable("tasks are not simulated")

    def manage(self, verb: str, target: str, value: str) -> dict[str, Any]:
        raise NotApplicable("Swarm objects (nodes, services, tasks, secrets) are not simulated")

    def create_global_service(self, name: str, image: str) -> None:
        self._swarm_only()

    def force_update(self, service: str) -> None:
        self._swarm_only()

    # ------------------------------------------------------------ for checks

    def converge(self, timeout: float) -> bool:
        return self.sim.run_until(self.sim.converged, timeout * 1000.0)

    def _holds(self, sid: str, op: ClientOp) -> bool:
        core = self.sim.nodes[sid].core
        if core is None or op.index is None:
            return False
        if op.index <= core.log.snapshot.index:
            return op.index <= core.commit_index
        return core.log.term(op.index) == op.term and op.index <= core.commit_index

    def present_on(self, node: str, ops: list[ClientOp]) -> dict[str, bool] | None:
        sid = self._id(node)
        if self.sim.nodes[sid].core is None:
            return None
        return {op.key: self._holds(sid, op) for op in ops}

    def present_via_leader(self, ops: list[ClientOp]) -> tuple[str | None, dict[str, bool] | None]:
        leader = self.sim.leader()
        if leader is None:
            return None, None
        return self._name(leader), {op.key: self._holds(leader, op) for op in ops}

    def data_dirs(self) -> dict[str, Path]:
        raise NotApplicable("the simulator keeps no data directories")
