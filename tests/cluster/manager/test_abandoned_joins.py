"""An abandoned manager join (`cluster.manager.joins.abandoned_joins`), on a real store.

The rule: a manager node still ``unknown`` (never heard by any leader),
created more than the grace period ago, not heard by a leader that has led
for at least that long.  Each clause is shown to matter by a case that
differs from an abandoned join in that clause only.
"""

from __future__ import annotations

from cluster.manager.joins import ABANDONED_JOIN_AFTER, abandoned_joins
from cluster.state import commands as c
from cluster.state.store import Store

T0 = 1_700_000_000.0
LATER = T0 + ABANDONED_JOIN_AFTER + 1
ENDPOINTS = {"Endpoints": {"Raft": "127.0.0.1:9", "API": "http://x", "Swarm": "https://x"}}


def store_with(*commands: bytes) -> Store:
    store = Store()
    for command in commands:
        assert store.apply(store.applied_index + 1, command).ok
    return store


def joined(node_id: str, name: str, state: str = "unknown", role: str = "manager") -> bytes:
    return c.create_node(
        node_id,
        T0,
        hostname=name,
        role=role,
        manager_addr="127.0.0.1:9" if role == "manager" else None,
        description=ENDPOINTS,
        state=state,
    )


def names(store: Store, now: float, heard: dict[str, float], leading_for: float) -> list[str]:
    found = abandoned_joins(store, now, heard.get, leading_for)
    return sorted(n["Description"]["Hostname"] for n in found)


def test_a_manager_that_never_showed_up_is_abandoned_after_the_grace_period() -> None:
    store = store_with(joined("n1", "manager4"))
    assert names(store, LATER, {}, leading_for=LATER) == ["manager4"]
    assert names(store, T0 + ABANDONED_JOIN_AFTER - 1, {}, leading_for=LATER) == []


def test_a_manager_that_was_heard_or_came_up_is_kept() -> None:
    store = store_with(joined("n1", "manager4"), joined("n2", "manager5", state="ready"))
    assert names(store, LATER, {"manager4": 5.0}, leading_for=LATER) == []
    # Ready once (then perhaps down): a real manager, never undone here.
    store = store_with(joined("n2", "manager5", state="down"))
    assert names(store, LATER, {}, leading_for=LATER) == []


def test_a_new_leader_waits_before_judging() -> None:
    store = store_with(joined("n1", "manager4"))
    assert names(store, LATER, {}, leading_for=ABANDONED_JOIN_AFTER - 1) == []


def test_workers_and_founding_managers_are_not_judged() -> None:
    founding = c.create_node("n3", T0, hostname="manager1", role="manager", state="unknown")
    store = store_with(joined("n1", "worker1", role="worker"), founding)
    assert names(store, LATER, {}, leading_for=LATER) == []


def test_the_undo_commits_as_a_demotion_and_a_removal() -> None:
    founding = c.create_node("n0", T0, hostname="manager1", role="manager")
    store = store_with(founding, joined("n1", "manager4"))
    [node] = abandoned_joins(store, LATER, {}.get, LATER)
    undo = c.batch(
        c.update_node("n1", node["Version"]["Index"], {**node["Spec"], "Role": "worker"}, LATER),
        c.remove_node("n1", force=True),
    )
    assert store.apply(store.applied_index + 1, undo).ok
    assert [n["ID"] for n in store.list("node")] == ["n0"]
