"""The orchestrator's reconcile loop: store states in, commands out.

Every test drives a real `Store` the way Raft would (commands applied in log
order) and a `ControlLoop` that only reads it; `World` adds a clock and fake
agents that report their tasks' progress.  The other control-loop tests
(`test_scheduler.py`, `test_updater.py`) reuse `World`.
"""

from __future__ import annotations

import copy
import random
from collections import Counter, defaultdict

import pytest

from cluster.control.orchestrator import ControlLoop, Settings
from cluster.control.reconciler import Reconciler
from cluster.state import commands as c
from cluster.state import objects as o
from cluster.state.store import Result, Store

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z
GRACE = 30.0


def svc_spec(
    name: str = "web",
    replicas: int | None = 3,
    image: str = "nginx:1",
    update: dict | None = None,
    rollback: dict | None = None,
    restart: dict | None = None,
) -> dict:
    mode = {"Global": {}} if replicas is None else {"Replicated": {"Replicas": replicas}}
    template: dict = {"ContainerSpec": {"Image": image}}
    if restart is not None:
        template["RestartPolicy"] = restart
    spec: dict = {"Name": name, "Mode": mode, "TaskTemplate": template}
    if update is not None:
        spec["UpdateConfig"] = update
    if rollback is not None:
        spec["RollbackConfig"] = rollback
    return spec


class World:
    """A store fed in log order, a clock, a control loop and well-behaved agents.

    ``failing`` holds images whose containers exit with an error as soon as
    they start, which is how the tests make a rollout fail.
    """

    def __init__(self, grace: float = GRACE, restart_delay: float = 0.0) -> None:
        self.store = Store()
        self.now = T0
        self.settings = Settings(node_down_grace=grace, restart_delay=restart_delay)
        self.loop = ControlLoop(self.settings)
        self.failing: set[str] = set()

    # -- feeding the store -------------------------------------------------------

    def apply(self, command: bytes) -> Result:
        return self.store.apply(self.store.applied_index + 1, command)

    def ok(self, command: bytes) -> dict:
        result = self.apply(command)
        assert result.ok, result.error
        return result.value

    def node(self, node_id: str, availability: str = "active") -> str:
        self.ok(c.create_node(node_id, self.now, f"worker-{node_id}", availability=availability))
        return node_id

    def set_availability(self, node_id: str, availability: str) -> None:
        node = self.store.get(o.NODE, node_id)
        spec = {**node["Spec"], "Availability": availability}
        self.ok(c.update_node(node_id, node["Version"]["Index"], spec, self.now))

    def set_state(self, node_id: str, state: str) -> None:
        self.ok(c.set_node_status(node_id, self.now, state=state))

    def service(self, spec: dict, service_id: str = "svc1") -> str:
        self.ok(c.create_service(spec, service_id, self.now))
        return service_id

    def update_service(self, service_id: str, **changes: object) -> None:
        svc = self.store.get(o.SERVICE, service_id)
        spec = copy.deepcopy(svc["Spec"])  # stored objects are frozen
        if "image" in changes:
            spec["TaskTemplate"]["ContainerSpec"]["Image"] = changes["image"]
        if "replicas" in changes:
            spec["Mode"]["Replicated"]["Replicas"] = changes["replicas"]
        self.ok(c.update_service(service_id, svc["Version"]["Index"], spec, self.now))

    # -- the loop and the agents -------------------------------------------------

    def step(self, loop: ControlLoop | None = None) -> list[bytes]:
        """One pass of the leader: compute, then apply every command (refusals allowed)."""
        commands = (loop or self.loop).step(self.store, self.now)
        for command in commands:
            self.apply(command)
        return commands

    def agents(self) -> None:
        """Every ready node's agent reports on its tasks: start them, stop them."""
        for task in self.store.tasks():
            node = self.store.list(o.NODE, lambda n, t=task: n["ID"] == t.get("NodeID"))
            if not node or node[0]["Status"]["State"] != "ready":
                continue
            self.report(task, self._next_state(task))

    def _next_state(self, task: dict) -> str | None:
        state = task["Status"]["State"]
        if task["DesiredState"] == "shutdown":
            return "shutdown" if o.TASK_STATE_RANK[state] <= o.TASK_STATE_RANK["running"] else None
        if state in ("assigned", "accepted", "preparing", "starting"):
            image = task["Spec"]["ContainerSpec"]["Image"]
            return "failed" if image in self.failing else "running"
        return None

    def report(self, task: dict, state: str | None) -> Result | None:
        if state is None:
            return None
        err = "task: non-zero exit (1)" if state == "failed" else None
        return self.apply(c.update_task(task["ID"], self.now, state=state, err=err))

    def settle(self, passes: int = 40, advance: float = 1.0, quiet: int = 3) -> None:
        """Loop and agents until ``quiet`` passes in a row change nothing.

        The clock moves ``advance`` seconds a pass, so a loop that waits for a
        delay to run out gets the chance to act before we call it settled.
        """
        still = 0
        for _ in range(passes):
            before = self.store.applied_index
            self.step()
            self.agents()
            self.now += advance
            still = still + 1 if self.store.applied_index == before else 0
            if still == quiet:
                return
        raise AssertionError("the control loop did not settle")

    # -- reading -----------------------------------------------------------------

    def live(self, service_id: str = "svc1") -> list[dict]:
        return [t for t in self.store.tasks(service_id=service_id) if o.task_is_live(t)]

    def by_slot(self, service_id: str = "svc1") -> dict[int | str, list[dict]]:
        slots: dict[int | str, list[dict]] = defaultdict(list)
        for task in self.live(service_id):
            slots[task.get("Slot") or task["NodeID"]].append(task)
        return dict(slots)

    def placement(self, service_id: str = "svc1") -> Counter[str]:
        return Counter(t["NodeID"] for t in self.live(service_id))


def ops(commands: list[bytes]) -> list[tuple[str, dict]]:
    return [c.decode(cmd) for cmd in commands]


def assert_converged(world: World, service_id: str = "svc1", slots: int | None = None) -> None:
    """Exactly one live task per wanted slot, each running; nothing else runs."""
    spec = world.store.get(o.SERVICE, service_id)["Spec"]
    by_slot = world.by_slot(service_id)
    if slots is None:
        slots = o.replicas(spec)
    if o.is_global(spec):
        assert len(by_slot) == slots, by_slot
    else:
        assert sorted(by_slot) == list(range(1, slots + 1)), by_slot
    for tasks in by_slot.values():
        assert len(tasks) == 1, tasks
        assert tasks[0]["Status"]["State"] == "running"
        assert tasks[0]["Spec"] == spec["TaskTemplate"]
    stray = [
        t
        for t in world.store.tasks(service_id=service_id)
        if not o.task_is_live(t)
        and t["Status"]["State"] == "running"
        and world.store.get(o.NODE, t["NodeID"])["Status"]["State"] == "ready"
    ]
    assert not stray


@pytest.fixture
def world() -> World:
    w = World()
    for n in ("n1", "n2", "n3"):
        w.node(n)
    return w


# -- replicated services -----------------------------------------------------------


def test_new_service_gets_one_task_per_slot_then_quiet(world: World) -> None:
    world.service(svc_spec(replicas=3))
    created = ops(world.step())
    assert [op for op, _ in created] == ["task.create"] * 3
    assert sorted(a["slot"] for _, a in created) == [1, 2, 3]
    assert all(len(a["id"]) == 25 for _, a in created)
    world.settle()
    assert_converged(world)
    assert world.placement() == {"n1": 1, "n2": 1, "n3": 1}
    assert world.loop.step(world.store, world.now) == []  # nothing left to do


def test_two_loops_on_one_store_propose_the_same_commands(world: World) -> None:
    """Determinism: a new leader would propose exactly what the old one did."""
    world.service(svc_spec(replicas=4))
    first = world.loop.step(world.store, world.now)
    assert ControlLoop(world.settings).step(world.store, world.now) == first
    for command in first:
        world.apply(command)
    again = [world.apply(cmd) for cmd in first]  # an old leader's entries, committed late
    assert all(r.error is not None and r.error.code == "AlreadyExists" for r in again)
    assert len(world.store.tasks()) == 4


def test_scale_up_and_down_shuts_down_the_highest_slots(world: World) -> None:
    world.service(svc_spec(replicas=2))
    world.settle()
    world.update_service("svc1", replicas=5)
    world.settle()
    assert_converged(world)
    assert sorted(world.by_slot()) == [1, 2, 3, 4, 5]
    world.update_service("svc1", replicas=2)
    down = ops(world.step())
    gone = {world.store.get(o.TASK, a["id"])["Slot"] for _, a in down}
    assert gone == {3, 4, 5}
    assert all(a["desired_state"] == "shutdown" for _, a in down)
    world.settle()
    assert_converged(world)
    assert sorted(world.by_slot()) == [1, 2]
    # Scaling up again reuses the slots with fresh task IDs.
    world.update_service("svc1", replicas=3)
    world.settle()
    assert_converged(world)
    assert len({t["ID"] for t in world.store.tasks()}) == len(world.store.tasks())


def test_failed_task_restarts_in_its_slot_after_the_delay() -> None:
    world = World(restart_delay=5.0)
    world.node("n1")
    world.service(svc_spec(replicas=2))
    world.settle()
    victim = world.by_slot()[2][0]
    world.report(victim, "failed")
    first = ops(world.step())
    assert first == [("task.update", first[0][1])]  # desired shutdown, no replacement yet
    assert first[0][1]["desired_state"] == "shutdown"
    world.now += 4.0
    assert world.step() == []
    world.now += 1.0
    (created,) = ops(world.step())
    assert created[0] == "task.create" and created[1]["slot"] == 2
    world.settle()
    assert_converged(world)
    assert world.store.get(o.TASK, victim["ID"])["DesiredState"] == "shutdown"


def test_restart_policy_none_leaves_the_slot_empty(world: World) -> None:
    world.service(svc_spec(replicas=1, restart={"Condition": "none"}))
    world.settle()
    (task,) = world.live()
    world.report(task, "complete")
    world.settle()
    assert world.live() == []


def test_completed_task_restarts_under_policy_any(world: World) -> None:
    world.service(svc_spec(replicas=1))
    world.settle()
    (task,) = world.live()
    world.report(task, "complete")
    world.settle()
    assert_converged(world)


def test_two_live_tasks_in_one_slot_are_cut_to_one(world: World) -> None:
    """Should a doubled slot ever happen (two leaders, two views), the next pass heals it."""
    world.service(svc_spec(replicas=1))
    world.settle()
    (keep,) = world.live()
    world.ok(c.create_task("extra", world.now, "svc1", slot=1))
    (shut,) = ops(world.step())
    assert shut[1]["id"] == "extra" and shut[1]["state"] == "shutdown"  # never assigned
    world.settle()
    assert [t["ID"] for t in world.live()] == [keep["ID"]]


def test_removed_service_tasks_are_shut_down(world: World) -> None:
    world.service(svc_spec(replicas=3))
    world.settle()
    world.ok(c.remove_service("svc1"))
    shut = ops(world.step())
    assert sorted(op for op, _ in shut) == ["task.update"] * 3
    assert {args["desired_state"] for _, args in shut} == {"shutdown"}
    world.agents()  # the agents stop them
    assert {t["Status"]["State"] for t in world.store.tasks()} == {"shutdown"}
    world.settle()
    # Ended for good and their service gone: the reaper removes them, as Docker does.
    assert world.store.tasks() == []


# -- nodes: drain, pause, down -------------------------------------------------------


def test_drain_moves_tasks_to_other_nodes(world: World) -> None:
    world.service(svc_spec(replicas=6))
    world.settle()
    world.set_availability("n2", "drain")
    world.settle()
    assert_converged(world)
    assert world.placement() == {"n1": 3, "n3": 3}
    on_n2 = world.store.tasks(node_id="n2")
    assert on_n2 and all(t["DesiredState"] == "shutdown" for t in on_n2)
    assert all(t["Status"]["State"] == "shutdown" for t in on_n2)


def test_pause_keeps_tasks_but_takes_no_new_ones(world: World) -> None:
    world.service(svc_spec(replicas=3))
    world.settle()
    world.set_availability("n3", "pause")
    world.update_service("svc1", replicas=6)
    world.settle()
    assert_converged(world)
    assert world.placement() == {"n1": 3, "n2": 2, "n3": 1}


def test_node_down_past_grace_has_its_tasks_replaced(world: World) -> None:
    world.service(svc_spec(replicas=3))
    world.settle()
    world.set_state("n1", "down")
    lost = world.store.tasks(node_id="n1")
    world.now += GRACE - 1
    assert world.step() == []  # a blip: wait
    world.set_state("n1", "down")  # repeated reports do not restart the grace period
    world.now += 1
    world.settle()
    assert_converged(world)
    assert "n1" not in world.placement()
    for task in lost:
        task = world.store.get(o.TASK, task["ID"])
        assert task["DesiredState"] == "shutdown" and task["Status"]["State"] == "orphaned"


def test_node_back_within_grace_keeps_its_tasks(world: World) -> None:
    world.service(svc_spec(replicas=3))
    world.settle()
    before = {t["ID"] for t in world.live()}
    world.set_state("n1", "down")
    world.now += GRACE / 2
    world.step()
    world.set_state("n1", "ready")
    world.now += GRACE
    world.settle()
    assert {t["ID"] for t in world.live()} == before


# -- global services -----------------------------------------------------------------


def test_global_service_one_task_per_eligible_node_including_late_joiners(world: World) -> None:
    world.set_availability("n3", "pause")
    world.node("n4", availability="drain")
    world.service(svc_spec(replicas=None))
    world.settle()
    assert world.placement() == {"n1": 1, "n2": 1}
    world.node("n5")
    world.settle()
    assert world.placement() == {"n1": 1, "n2": 1, "n5": 1}
    assert_converged(world, slots=3)
    world.set_availability("n3", "active")
    world.settle()
    assert world.placement() == {"n1": 1, "n2": 1, "n3": 1, "n5": 1}


def test_global_task_on_drained_node_is_shut_down_not_moved(world: World) -> None:
    world.service(svc_spec(replicas=None))
    world.settle()
    world.set_availability("n2", "drain")
    world.settle()
    assert world.placement() == {"n1": 1, "n3": 1}
    (old,) = world.store.tasks(node_id="n2")
    assert old["DesiredState"] == "shutdown" and old["Status"]["State"] == "shutdown"


def test_global_task_on_paused_node_stays(world: World) -> None:
    world.service(svc_spec(replicas=None))
    world.settle()
    world.set_availability("n2", "pause")
    world.settle()
    assert world.placement() == {"n1": 1, "n2": 1, "n3": 1}


# -- failover ------------------------------------------------------------------------


def _chaos_run(seed: int, incremental: bool = False) -> World:
    """Random leader changes, lost and late entries, failing agents and node trouble.

    Each pass a leader (a fresh `ControlLoop` after an "election") computes
    its commands.  Some are committed at once; a deposed leader's may be lost
    or commit later, after newer ones (§5.4.2 lets a new leader commit them).
    Agents report at random, tasks fail at random, nodes go down and come
    back, drain and return, and the user scales and updates.  At the end the
    faults stop and a stable leader must bring every slot to exactly one
    running task.  ``incremental``: each leader runs a `Reconciler` (a full
    pass when elected, then only what changed) instead of full passes.
    """
    rng = random.Random(seed)
    world = World(grace=5.0, restart_delay=1.0)
    nodes = [world.node(f"n{i}") for i in range(1, 5)]
    update = {"Parallelism": 2, "Delay": 1_000_000_000, "FailureAction": "continue"}
    world.service(svc_spec(replicas=4, update=update))
    world.service(svc_spec(name="agent", replicas=None), service_id="svc2")

    def new_leader() -> ControlLoop | Reconciler:
        loop = ControlLoop(world.settings)
        return Reconciler(loop, full_every=1e9) if incremental else loop

    loop = new_leader()
    late: list[bytes] = []
    for _ in range(150):
        world.now += rng.choice((0.2, 0.5, 1.0, 2.0))
        if rng.random() < 0.15:
            loop = new_leader()  # a new leader, knowing only the store
            if late and rng.random() < 0.5:
                late = []  # the old leader's uncommitted tail is lost
        commands = loop.step(world.store, world.now)
        for command in commands:
            roll = rng.random()
            if roll < 0.75:
                world.apply(command)
            elif roll < 0.9:
                late.append(command)
        rng.shuffle(late)
        while late and rng.random() < 0.4:
            world.apply(late.pop())
        for task in world.store.tasks():
            if rng.random() < 0.5:
                node = world.store.list(o.NODE, lambda n, t=task: n["ID"] == t.get("NodeID"))
                if node and node[0]["Status"]["State"] == "ready":
                    state = world._next_state(task)
                    if state == "running" and rng.random() < 0.1:
                        state = "failed"
                    world.report(task, state)
        _random_fault(world, rng, nodes)
    for command in late:
        world.apply(command)
    for node in nodes:
        world.set_state(node, "ready")
        if world.store.get(o.NODE, node)["Spec"]["Availability"] != "active":
            world.set_availability(node, "active")
    world.loop = new_leader()  # type: ignore[assignment]
    world.settle(passes=200)
    return world


def _random_fault(world: World, rng: random.Random, nodes: list[str]) -> None:
    roll = rng.random()
    node = rng.choice(nodes)
    if roll < 0.03:
        world.set_state(node, "down" if rng.random() < 0.5 else "ready")
    elif roll < 0.05:
        world.set_availability(node, rng.choice(("active", "active", "drain", "pause")))
    elif roll < 0.07:
        world.update_service("svc1", replicas=rng.randint(1, 6))
    elif roll < 0.09:
        world.update_service("svc1", image=f"nginx:{rng.randint(2, 9)}")


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
@pytest.mark.parametrize("seed", range(40))
def test_failover_loses_and_doubles_no_task(seed: int, incremental: bool) -> None:
    world = _chaos_run(seed, incremental)
    assert_converged(world, "svc1")
    assert_converged(world, "svc2", slots=4)
    assert world.loop.step(world.store, world.now) == []
    ids = [t["ID"] for t in world.store.tasks()]
    assert len(ids) == len(set(ids))


def test_node_status_timestamp_moves_only_when_the_state_changes(world: World) -> None:
    start = world.store.get(o.NODE, "n1")["Status"]["Timestamp"]
    assert start == c.format_time(T0)
    world.now += 10
    world.set_state("n1", "down")
    down_at = world.store.get(o.NODE, "n1")["Status"]["Timestamp"]
    assert down_at == c.format_time(T0 + 10)
    world.now += 10
    world.set_state("n1", "down")
    assert world.store.get(o.NODE, "n1")["Status"]["Timestamp"] == down_at
