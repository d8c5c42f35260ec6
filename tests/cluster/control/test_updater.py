"""Rolling updates: batches, delay, UpdateStatus, pause / rollback / continue on failure."""

from __future__ import annotations

from test_orchestrator import World, assert_converged, ops, svc_spec

from cluster.control.orchestrator import ControlLoop
from cluster.state import commands as c
from cluster.state import objects as o

SECOND = 1_000_000_000


def running_world(replicas: int = 5, **update: object) -> World:
    world = World()
    for name in ("n1", "n2", "n3"):
        world.node(name)
    cfg = {"Parallelism": 2, "Delay": 10 * SECOND, **update}
    world.service(svc_spec(replicas=replicas, update=cfg))
    world.settle()
    assert_converged(world)
    return world


def images(world: World) -> dict[int, str]:
    return {
        slot: tasks[0]["Spec"]["ContainerSpec"]["Image"]
        for slot, tasks in sorted(world.by_slot().items())
    }


def status(world: World) -> dict:
    return world.store.get(o.SERVICE, "svc1").get("UpdateStatus", {})


def run(world: World, passes: int, advance: float = 1.0) -> None:
    """A fixed number of passes, for rollouts whose crashing tasks never let the loop settle."""
    for _ in range(passes):
        world.step()
        world.agents()
        world.now += advance


def quiet(world: World) -> None:
    """Loop and agents until nothing moves, without letting time pass."""
    world.settle(advance=0.0)


def test_update_replaces_tasks_in_batches_with_a_delay_between() -> None:
    world = running_world()
    world.update_service("svc1", image="nginx:2")
    started = world.now
    first = ops(world.step())
    assert first[0] == ("service.status", first[0][1])
    assert first[0][1]["update_status"]["State"] == "updating"
    creates = [a for op, a in first if op == "task.create"]
    assert sorted(a["slot"] for a in creates) == [1, 2]
    quiet(world)
    assert images(world) == {1: "nginx:2", 2: "nginx:2", 3: "nginx:1", 4: "nginx:1", 5: "nginx:1"}
    assert status(world)["State"] == "updating"
    assert status(world)["Message"] == "update in progress"
    world.now += 9.0
    assert world.step() == []  # UpdateConfig.Delay not over yet
    world.now += 1.0
    quiet(world)
    assert images(world) == {1: "nginx:2", 2: "nginx:2", 3: "nginx:2", 4: "nginx:2", 5: "nginx:1"}
    world.now += 10.0
    quiet(world)
    assert set(images(world).values()) == {"nginx:2"}
    assert_converged(world)
    st = status(world)
    assert st["State"] == "completed" and st["Message"] == "update completed"
    assert st["StartedAt"] == c.format_time(started)
    assert st["CompletedAt"] == c.format_time(world.now)


def test_next_batch_waits_until_the_current_one_runs() -> None:
    world = running_world(Delay=0)
    world.update_service("svc1", image="nginx:2")
    world.step()  # status + first batch
    world.step()  # schedule the new tasks; nobody has started them yet
    assert world.step() == []
    world.agents()
    world.agents()
    assert [a["slot"] for op, a in ops(world.step()) if op == "task.create"] == [3, 4]


def test_parallelism_zero_replaces_everything_at_once() -> None:
    world = running_world(Parallelism=0)
    world.update_service("svc1", image="nginx:2")
    created = [a for op, a in ops(world.step()) if op == "task.create"]
    assert len(created) == 5


def test_failure_pauses_the_update() -> None:
    world = running_world(FailureAction="pause")
    world.failing.add("nginx:bad")
    world.update_service("svc1", image="nginx:bad")
    run(world, 20)
    st = status(world)
    assert st["State"] == "paused"
    assert st["Message"].startswith("update paused due to failure or early termination of task ")
    # Only the first batch was touched; the rest still run the old image.
    assert [images(world).get(s) for s in (3, 4, 5)] == ["nginx:1"] * 3
    run(world, 20, advance=5.0)
    assert status(world)["State"] == "paused"
    assert [images(world).get(s) for s in (3, 4, 5)] == ["nginx:1"] * 3
    # A new update resumes: here, the user fixes the image.
    world.failing.clear()
    world.update_service("svc1", image="nginx:3")
    run(world, 20, advance=5.0)
    assert_converged(world)
    assert status(world)["State"] == "completed"


def test_failure_rolls_back_to_the_previous_spec() -> None:
    world = running_world(FailureAction="rollback")
    world.failing.add("nginx:bad")
    world.update_service("svc1", image="nginx:bad")
    for _ in range(20):
        world.step()
        world.agents()
        if status(world).get("State") == "rollback_started":
            break
    svc = world.store.get(o.SERVICE, "svc1")
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "nginx:1"
    assert svc["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "nginx:bad"
    st = svc["UpdateStatus"]
    assert st["State"] == "rollback_started"
    assert st["Message"].startswith("update rolled back due to failure or early termination")
    world.settle(passes=100, advance=5.0)
    assert_converged(world)
    assert set(images(world).values()) == {"nginx:1"}
    st = status(world)
    assert st["State"] == "rollback_completed" and st["Message"] == "rollback completed"


def test_rollback_uses_rollback_config() -> None:
    world = World()
    world.node("n1")
    spec = svc_spec(
        replicas=4,
        update={"Parallelism": 4, "FailureAction": "rollback"},
        rollback={"Parallelism": 1, "Delay": 0},
    )
    world.service(spec)
    world.settle()
    world.failing.add("nginx:bad")
    world.update_service("svc1", image="nginx:bad")
    for _ in range(10):
        world.step()
        world.agents()
        if status(world).get("State") == "rollback_started":
            break
    world.step()  # reconcile restarts the failed tasks; the updater waits its turn
    creates = [a for op, a in ops(world.step()) if op == "task.create"]
    assert len(creates) <= 1  # one task at a time, as RollbackConfig says


def test_failure_action_continue_keeps_going() -> None:
    world = running_world(FailureAction="continue", Delay=0)
    world.failing.add("nginx:bad")
    world.update_service("svc1", image="nginx:bad")
    run(world, 30)
    # Docker too calls it done once every slot got the new spec, crashing or not.
    assert status(world)["State"] == "completed"
    every = {t["Spec"]["ContainerSpec"]["Image"] for t in world.store.tasks()}
    assert "nginx:bad" in every
    failed_slots = {t["Slot"] for t in world.store.tasks() if t["Status"]["State"] == "failed"}
    assert failed_slots == {1, 2, 3, 4, 5}  # it went through every batch regardless


def test_scaling_alone_starts_no_rollout() -> None:
    world = running_world()
    world.update_service("svc1", replicas=6)
    world.settle()
    assert_converged(world)
    assert status(world) == {}


def test_global_service_updates_node_by_node() -> None:
    world = World()
    for name in ("n1", "n2", "n3"):
        world.node(name)
    world.service(svc_spec(replicas=None, update={"Parallelism": 1}))
    world.settle()
    world.update_service("svc1", image="nginx:2")
    nodes = []
    for _ in range(30):
        for op, a in ops(world.step()):
            if op == "task.create":
                nodes.append(a["node_id"])
        world.agents()
        world.now += 1.0
    assert nodes == ["n1", "n2", "n3"]
    assert_converged(world, slots=3)
    assert status(world)["State"] == "completed"


def test_a_new_leader_resumes_a_rollout_midway() -> None:
    """The rollout lives in the store: a fresh loop continues with the next batch."""
    world = running_world(Delay=0)
    world.update_service("svc1", image="nginx:2")
    world.step()
    quiet(world)
    world.loop = ControlLoop(world.settings)
    created = [a["slot"] for op, a in ops(world.step()) if op == "task.create"]
    assert created == [5] or created == [3, 4] or images(world)[5] == "nginx:2"
    quiet(world)
    assert_converged(world)
    assert status(world)["State"] == "completed"


# -- the store's side: service.status, and a new spec clearing it ---------------------


def test_service_status_op_checks_state_and_version() -> None:
    world = running_world()
    svc = world.store.get(o.SERVICE, "svc1")
    bad = world.apply(c.set_service_update_status("svc1", world.now, "sideways", "?"))
    assert bad.error is not None and bad.error.code == "InvalidArgument"
    stale = c.set_service_update_status(
        "svc1", world.now, "paused", "x", version=svc["Version"]["Index"] - 1
    )
    assert world.apply(stale).error.http_status == 409
    done = world.ok(
        c.set_service_update_status("svc1", world.now, "completed", "update completed", world.now)
    )
    assert done["UpdateStatus"] == {
        "State": "completed",
        "Message": "update completed",
        "StartedAt": c.format_time(world.now),
    }
    assert done["Spec"] == svc["Spec"] and "PreviousSpec" not in done
    world.update_service("svc1", replicas=1)
    assert "UpdateStatus" not in world.store.get(o.SERVICE, "svc1")


def test_time_round_trips_through_the_store_format() -> None:
    for t in (0.0, 1_714_564_805.5, 1_714_564_805.25):
        assert c.parse_time(c.format_time(t)) == t
    assert c.derived_id("a", 1) == c.derived_id("a", 1) != c.derived_id("a", 2)
    assert len(c.derived_id("x")) == 25
