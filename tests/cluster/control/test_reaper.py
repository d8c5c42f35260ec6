"""The task reaper: each slot keeps ``TaskHistoryRetentionLimit`` tasks, never a live one.

Driven through the orchestrator tests' `World` (a store fed in log order, a
clock, the control loop and well-behaved agents), so what is checked is what
a leader would propose and the store would end up holding.
"""

from __future__ import annotations

from collections import Counter

import pytest
from test_orchestrator import World, assert_converged, svc_spec

from cluster.control import reaper
from cluster.state import commands as c
from cluster.state import objects as o


def _restart_often(world: World, times: int) -> list[str]:
    """The task of slot 1 fails ``times`` times; each failure is replaced.  The
    IDs of the live task before and after each failure, oldest first."""
    created = [world.live()[0]["ID"]]
    for _ in range(times):
        (task,) = world.live()
        world.report(task, "failed")
        world.settle()
        created.append(world.live()[0]["ID"])
    return created


def _history_limit(world: World, limit: int) -> None:
    cluster = world.store.cluster()
    if cluster is None:
        world.ok(c.init_cluster("cluster1", world.now, "SWMTKN-w", "SWMTKN-m"))
        cluster = world.store.cluster()
    spec = {**cluster["Spec"], "Orchestration": {"TaskHistoryRetentionLimit": limit}}
    world.ok(c.update_cluster(cluster["Version"]["Index"], world.now, spec))


@pytest.fixture
def world() -> World:
    w = World()
    w.node("n1")
    return w


def test_a_slot_keeps_its_last_five_tasks(world: World) -> None:
    world.service(svc_spec(replicas=1))
    world.settle()
    created = _restart_often(world, 9)
    assert len(created) == 10
    tasks = world.store.tasks(service_id="svc1")
    # The newest five: the live one and the four that failed last.
    assert {t["ID"] for t in tasks} == set(created[-reaper.DEFAULT_LIMIT :])
    assert len(world.live()) == 1
    assert_converged(world)


def test_the_oldest_go_first_even_when_changed_last(world: World) -> None:
    """A late report on an old task makes it the last changed, not the newest."""
    _history_limit(world, 2)

    def task(n: int, created: str, changed_at_index: int, state: str = "failed") -> dict:
        desired = "running" if state == "running" else "shutdown"
        return {"ID": f"t{n}", "ServiceID": "svc1", "Slot": 1, "DesiredState": desired,
                "Status": {"State": state}, "CreatedAt": created,
                "Version": {"Index": changed_at_index}}  # fmt: skip

    tasks = [
        task(0, "2024-05-01T12:00:00Z", 90),  # the oldest, changed last (a late report)
        task(1, "2024-05-01T12:00:01.5Z", 20),
        task(2, "2024-05-01T12:00:02Z", 30, "running"),
    ]
    removed = [c.decode(cmd)[1]["id"] for _, cmd in reaper.reap(world.store, {"svc1": tasks},
                                                                   {"svc1"}, set())]  # fmt: skip
    assert removed == ["t0"]


def test_the_limit_is_the_swarms_setting(world: World) -> None:
    _history_limit(world, 2)
    world.service(svc_spec(replicas=1))
    world.settle()
    _restart_often(world, 4)
    assert len(world.store.tasks(service_id="svc1")) == 2
    _history_limit(world, -1)  # negative: keep everything from now on
    _restart_often(world, 3)
    assert len(world.store.tasks(service_id="svc1")) == 2 + 3


def test_scaling_down_and_up_leaves_bounded_history(world: World) -> None:
    world.service(svc_spec(replicas=3))
    world.settle()
    for replicas in (1, 3, 1, 3, 1, 3, 1, 3):
        world.update_service("svc1", replicas=replicas)
        world.settle()
    per_slot = Counter(t["Slot"] for t in world.store.tasks(service_id="svc1"))
    assert max(per_slot.values()) <= reaper.DEFAULT_LIMIT, per_slot
    assert_converged(world)


def test_a_live_or_still_stopping_task_is_never_removed(world: World) -> None:
    world.service(svc_spec(replicas=1))
    world.settle()
    (task,) = world.live()
    world.ok(c.remove_service("svc1"))
    world.step()  # told to shut down; its agent has not stopped it yet
    stopping = world.store.get(o.TASK, task["ID"])
    assert stopping["DesiredState"] == "shutdown" and stopping["Status"]["State"] == "running"
    assert not reaper.removable(stopping)
    world.step()
    assert world.store.get(o.TASK, task["ID"])  # still there while it runs
