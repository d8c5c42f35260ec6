"""The store's derived state: frozen values, the task index and the change log.

None of it is in a snapshot, so each must be rebuilt exactly by `restore` and
kept exactly by `apply`, rollbacks included: after any command sequence the
incremental version must equal one rebuilt from the tables.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.state import commands as c
from cluster.state import objects as o
from cluster.state.changes import ChangeLog
from cluster.state.frozen import FrozenDict, FrozenList, freeze, thaw
from cluster.state.store import Store
from cluster.state.txn import NameIndex, TaskIndex

NOW = 1_714_564_800.0
NODES = ("n1", "n2", "n3")
SERVICES = ("s1", "s2")
STATES = ("assigned", "running", "failed", "shutdown")


def _spec(name: str, replicas: int = 2) -> dict:
    return {
        "Name": name,
        "Mode": {"Replicated": {"Replicas": replicas}},
        "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1", "Args": ["a"]}},
    }


def _random_command(rng: random.Random, store: Store) -> bytes:
    """A command that may succeed or be refused, touching tasks in every indexed way."""
    tasks = [t["ID"] for t in store.tasks()]
    roll = rng.random()
    if roll < 0.3 or not tasks:
        task_id = f"t{rng.randrange(40)}"
        return c.create_task(task_id, NOW, rng.choice(SERVICES), slot=rng.randint(1, 3))
    task_id = rng.choice(tasks)
    if roll < 0.45:
        return c.update_task(task_id, NOW, node_id=rng.choice(NODES), state="assigned")
    if roll < 0.6:
        return c.update_task(task_id, NOW, state=rng.choice(STATES))
    if roll < 0.7:
        return c.update_task(task_id, NOW, desired_state="shutdown")
    if roll < 0.8:
        return c.remove_task(task_id)
    # A batch that may fail half-way: its first part must be rolled back.
    other = f"t{rng.randrange(40)}"
    return c.batch(
        c.update_task(task_id, NOW, desired_state="shutdown"),
        c.create_task(other, NOW, rng.choice(SERVICES), slot=1),
    )


def _world(seed: int, steps: int) -> Store:
    rng = random.Random(seed)
    store = Store()
    log = [c.create_node(n, NOW, f"worker-{n}") for n in NODES]
    log += [c.create_service(_spec(f"web{i}"), s, NOW) for i, s in enumerate(SERVICES)]
    for command in log:
        store.apply(store.applied_index + 1, command)
    for _ in range(steps):
        store.apply(store.applied_index + 1, _random_command(rng, store))
    return store


def _consistent(store: Store) -> None:
    assert store._task_index == TaskIndex(store._tables)
    assert store._names == NameIndex(store._tables)


def _brute(store: Store, **want: str) -> list[str]:
    fields = {
        "service_id": lambda t: t.get("ServiceID"),
        "node_id": lambda t: t.get("NodeID"),
        "desired_state": lambda t: t.get("DesiredState"),
        "state": lambda t: t["Status"]["State"],
    }
    return [t["ID"] for t in store.list(o.TASK) if all(fields[k](t) == v for k, v in want.items())]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_task_index_follows_applies_rollbacks_and_restores(seed: int) -> None:
    store = _world(seed, 60)
    _consistent(store)
    replica = Store.from_snapshot(store.snapshot())
    _consistent(replica)
    assert replica._task_index == store._task_index
    for s in SERVICES:
        for n in (*NODES, None):
            for d in ("running", "shutdown", None):
                want = {
                    k: v
                    for k, v in (("service_id", s), ("node_id", n), ("desired_state", d))
                    if v is not None
                }
                got = [t["ID"] for t in store.tasks(**want)]
                assert got == _brute(store, **want), (seed, want)
    for n in NODES:
        live = sum(1 for t in store.list(o.TASK) if t.get("NodeID") == n and o.task_is_live(t))
        assert store.live_tasks_on(n) == live


def test_a_refused_batch_leaves_the_task_index_as_it_was() -> None:
    store = _world(1, 0)
    store.apply(store.applied_index + 1, c.create_task("t1", NOW, "s1", slot=1))
    before = TaskIndex(store._tables)
    bad = c.batch(
        c.update_task("t1", NOW, node_id="n1", state="assigned"),
        c.create_task("t2", NOW, "nope", slot=1),  # no such service: all of it fails
    )
    assert not store.apply(store.applied_index + 1, bad).ok
    assert store._task_index == before
    assert store.tasks(node_id="n1") == []


def test_filtered_tasks_cost_the_filter_not_the_store() -> None:
    """The index answers without looking at other services' tasks: with those
    made unreadable, ``tasks(service_id=...)`` still works."""
    store = _world(3, 80)
    mine = _brute(store, service_id="s1")
    for task_id in _brute(store, service_id="s2"):
        store._tables[o.TASK][task_id] = None  # reading it would crash
    assert [t["ID"] for t in store.tasks(service_id="s1")] == mine


# -- frozen values -------------------------------------------------------------


def test_frozen_values_refuse_every_change_and_thaw_into_plain_ones() -> None:
    value = freeze({"a": [1, {"b": 2}], "c": (3,)})
    assert isinstance(value, FrozenDict) and isinstance(value["a"], FrozenList)
    assert value == {"a": [1, {"b": 2}], "c": [3]}
    changes = [
        lambda: value.__setitem__("x", 1),
        lambda: value.pop("a"),
        lambda: value.update(x=1),
        lambda: value.setdefault("x", 1),
        lambda: value["a"].append(4),
        lambda: value["a"][1].__setitem__("b", 3),
        lambda: value["a"].sort(),
    ]
    for change in changes:
        with pytest.raises(TypeError):
            change()
    plain = thaw(value)
    assert type(plain) is dict and type(plain["a"]) is list and type(plain["a"][1]) is dict
    plain["a"].append(4)
    assert value["a"] == [1, {"b": 2}]
    assert freeze(value) is value  # already frozen: nothing to copy


def test_stored_values_are_frozen_after_apply_and_restore() -> None:
    store = _world(2, 20)
    for kind in o.KINDS:
        for obj in store.list(kind):
            assert isinstance(obj, FrozenDict)
    for obj in Store.from_snapshot(store.snapshot()).list(o.TASK):
        assert isinstance(obj, FrozenDict) and isinstance(obj["Status"], FrozenDict)


# -- the change log --------------------------------------------------------------


def test_change_log_names_what_each_entry_touched() -> None:
    store = _world(4, 0)
    mark = store.applied_index
    store.apply(mark + 1, c.create_task("t1", NOW, "s1", slot=1))
    store.apply(mark + 2, c.create_task("t2", NOW, "nope", slot=1))  # refused: no change
    store.apply(mark + 3, b"")  # a no-op entry
    assert store.changes_since(mark) == {(o.TASK, "t1")}
    store.apply(mark + 4, c.remove_service("s2"))
    assert store.changes_since(mark + 1) == {(o.SERVICE, "s2")}
    assert store.changes_since(store.applied_index) == set()
    assert (o.NODE, "n1") in store.changes_since(0)


def test_change_log_after_restore_or_trim_says_it_does_not_know() -> None:
    store = _world(5, 10)
    replica = Store.from_snapshot(store.snapshot())
    assert replica.changes_since(store.applied_index - 1) is None
    assert replica.changes_since(store.applied_index) == set()
    log = ChangeLog(limit=3)
    for index in range(1, 9):
        log.record(index, [("task", f"t{index}")])
    assert log.since(8) == set()
    assert log.since(log.horizon) == {("task", f"t{i}") for i in range(log.horizon + 1, 9)}
    assert log.horizon > 0 and log.since(log.horizon - 1) is None


def test_port_index_follows_creates_updates_removals_rollbacks_and_restores() -> None:
    store = Store()

    def apply(command: bytes) -> bool:
        return store.apply(store.applied_index + 1, command).ok

    def ported(name: str, published: int) -> dict:
        port = {"TargetPort": 80, "PublishedPort": published}
        return {**_spec(name), "EndpointSpec": {"Ports": [port]}}

    assert apply(c.create_service(ported("a", 8080), "a", NOW))
    assert apply(c.create_service(ported("b", 0), "b", NOW))  # a dynamic port: 30000
    assert not apply(c.create_service(ported("c", 8080), "c", NOW))  # taken
    bad = c.batch(c.remove_service("a"), c.create_service(ported("d", 30000), "d", NOW))
    assert not apply(bad)  # 30000 is b's: the removal of a is rolled back too
    assert store._task_index.ports == {(8080, "tcp"): {"a"}, (30000, "tcp"): {"b"}}
    assert apply(c.remove_service("a"))
    assert apply(c.create_service(ported("c", 8080), "c", NOW))  # free again
    _consistent(store)
    assert Store.from_snapshot(store.snapshot())._task_index == store._task_index
