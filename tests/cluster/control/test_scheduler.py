"""The scheduler: spread, eligibility, Swarm's "no suitable node" and stale reads."""

from __future__ import annotations

from collections import Counter

from test_orchestrator import World, ops, svc_spec

from cluster.control import scheduler
from cluster.state import commands as c
from cluster.state import objects as o


def nodes_world(*names: str) -> World:
    world = World()
    for name in names:
        world.node(name)
    return world


def test_spread_evens_out_a_service_over_ready_nodes() -> None:
    world = nodes_world("n1", "n2", "n3")
    world.service(svc_spec(replicas=7))
    world.step()  # create
    assigned = ops(world.step())  # schedule
    assert {a["state"] for _, a in assigned} == {"assigned"}
    assert Counter(a["node_id"] for _, a in assigned) == {"n1": 3, "n2": 2, "n3": 2}
    # In task order, the lowest node ID wins each tie: slot 1 -> n1, 2 -> n2 ...
    by_slot = {world.store.get(o.TASK, a["id"])["Slot"]: a["node_id"] for _, a in assigned}
    assert [by_slot[s] for s in range(1, 5)] == ["n1", "n2", "n3", "n1"]


def test_ties_go_to_the_node_with_fewest_tasks_overall() -> None:
    world = nodes_world("n1", "n2", "n3")
    world.service(svc_spec(name="db", replicas=2), service_id="db")
    world.settle()  # db on n1 and n2
    world.service(svc_spec(name="web", replicas=1), service_id="web")
    world.settle()
    assert world.placement("web") == {"n3": 1}


def test_never_on_pause_drain_or_down_nodes() -> None:
    world = nodes_world("n1", "n2", "n3", "n4")
    world.set_availability("n1", "pause")
    world.set_availability("n2", "drain")
    world.set_state("n3", "down")
    world.service(svc_spec(replicas=3))
    world.settle()
    assert world.placement() == {"n4": 3}


def test_no_eligible_node_leaves_the_task_pending_with_swarms_reason() -> None:
    world = nodes_world("n1", "n2")
    world.set_availability("n1", "drain")
    world.set_state("n2", "down")
    world.service(svc_spec(replicas=1))
    world.settle()
    (task,) = world.live()
    assert task["Status"]["State"] == "pending"
    assert task["Status"]["Message"] == "pending task scheduling"
    assert task["Status"]["Err"] == "no suitable node (2 nodes not available for new tasks)"
    assert world.step() == []  # the reason is written once, not on every pass
    world.set_state("n2", "ready")
    world.settle()
    (task,) = world.live()
    assert task["NodeID"] == "n2" and task["Status"]["State"] == "running"
    assert "Err" not in task["Status"]


def test_explain_wording() -> None:
    assert scheduler.explain([]) == "no suitable node"
    world = nodes_world("n1")
    world.set_availability("n1", "pause")
    assert scheduler.explain(world.store.list(o.NODE)) == (
        "no suitable node (1 node not available for new tasks)"
    )


def test_drain_replacements_are_placed_elsewhere() -> None:
    world = nodes_world("n1", "n2")
    world.service(svc_spec(replicas=4))
    world.settle()
    world.set_availability("n1", "drain")
    world.settle()
    assert world.placement() == {"n2": 4}


def test_stale_assignment_is_refused() -> None:
    """A deposed leader's assignment, decided on an older read, must not land."""
    world = nodes_world("n1", "n2")
    world.service(svc_spec(replicas=1))
    world.step()
    (task,) = world.live()
    stale = scheduler.schedule(world.store.list(o.NODE), [task], world.now)
    world.ok(c.update_task(task["ID"], world.now, state="pending", message="x"))
    (result,) = [world.apply(cmd) for cmd in stale]
    assert result.error is not None and result.error.code == "Unknown"  # out of sequence
    assert "NodeID" not in world.store.get(o.TASK, task["ID"])


def test_global_task_waits_for_its_own_node() -> None:
    world = nodes_world("n1", "n2")
    world.service(svc_spec(replicas=None))
    world.step()  # one task pinned to each node
    world.set_state("n2", "down")
    world.settle()
    pinned = world.store.tasks(node_id="n2")[0]
    assert pinned["Status"]["State"] == "pending"
    assert pinned["Status"]["Err"] == "no suitable node (1 node not available for new tasks)"
    world.set_state("n2", "ready")
    world.settle()
    assert world.placement() == {"n1": 1, "n2": 1}


def test_skip_keeps_the_scheduler_off_tasks_decided_elsewhere() -> None:
    world = nodes_world("n1")
    world.service(svc_spec(replicas=1))
    world.step()
    (task,) = world.live()
    assert scheduler.schedule(world.store.list(o.NODE), [task], world.now, skip={task["ID"]}) == []
