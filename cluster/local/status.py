"""What the cluster looks like right now, gathered from every manager.

`collect` asks each running manager for ``/raft/status`` (in parallel, with
a short timeout: a paused manager must not stall the view) and combines it
with what the supervisor knows (down, paused) into the object that
``status --json`` prints (docs/cli.md).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from cluster.client.http import ApiError, Unreachable, request
from cluster.local.layout import Description
from cluster.local.supervisor import Supervisor

__all__ = [
    "collect",
    "count_reachable",
    "describe_network",
    "manager_role",
    "network",
    "quorum",
    "reachability",
    "reachable_side",
]

#: The roles docs/cli.md lists; the core's "pre-candidate" is shown as "candidate".
_ROLES = {"pre-candidate": "candidate"}


def quorum(managers: int) -> int:
    """Raft's majority, and Swarm's: (N/2)+1 managers must be reachable."""
    return managers // 2 + 1


#: The roles of a manager that answers and votes (a learner answers but does not vote).
_ANSWERING = ("leader", "follower", "candidate")


def reachable_side(st: dict[str, Any]) -> int | None:
    """Which side of a partition counts as "the swarm": the leader's, or with no
    leader the side where most voters answer.  ``None`` when there is no partition.

    Groups are indexes into ``st["partition"]``; a manager in no group is on side -1.
    """
    groups = st.get("partition") or []
    if not groups:
        return None
    group_of = {n: i for i, g in enumerate(groups) for n in g}
    if st.get("leader"):
        return group_of.get(st["leader"], -1)
    sizes: dict[int, int] = {}
    for n in st["nodes"]:
        if n["role"] in _ANSWERING:
            g = group_of.get(n["name"], -1)
            sizes[g] = sizes.get(g, 0) + 1
    return max(sizes, key=lambda g: sizes[g]) if sizes else -1


def reachability(st: dict[str, Any], node: dict[str, Any]) -> str:
    """A manager as the swarm sees it (Docker's MANAGER STATUS, the watch view):
    ``"yes"`` (answers, on the side that counts), ``"cut off"`` (answers, but on
    another side of a partition: a stale leader there is no leader of the swarm)
    or ``"no"`` (down, paused, locked, or not answering)."""
    if node["role"] not in (*_ANSWERING, "learner"):
        return "no"
    side = reachable_side(st)
    if side is None:
        return "yes"
    group_of = {n: i for i, g in enumerate(st["partition"]) for n in g}
    return "yes" if group_of.get(node["name"], -1) == side else "cut off"


def manager_role(name: str, process: str, st: dict[str, Any] | None, voters: list[str]) -> str:
    """A manager's role as the views show it: its process's state ("down",
    "paused"), "locked" under autolock, "learner" outside the voters, else the
    role its ``/raft/status`` gives (``pre-candidate`` included)."""
    if process != "running":
        return process
    if st is None:
        return "down"  # alive but not answering (starting, or stuck)
    if st.get("locked"):
        return "locked"
    if voters and name not in voters:
        return "learner"
    return str(st.get("role", "down"))


def count_reachable(
    leader: str | None, partition: list[list[str]], nodes: list[dict[str, Any]]
) -> int:
    """Reachable managers, as Swarm counts them: voters that answer, on the
    leader's side of any partition (`reachability`)."""
    answering = [{**n, "role": _ROLES.get(n["role"], n["role"])} for n in nodes]
    view = {"leader": leader, "partition": partition, "nodes": answering}
    return sum(1 for n in answering if n["role"] in _ANSWERING and reachability(view, n) == "yes")


def _fetch(url: str, timeout: float) -> Any:
    try:
        return request("GET", url, timeout=timeout)
    except (Unreachable, ApiError):
        return None


def collect(sup: Supervisor, desc: Description, timeout: float = 0.6) -> dict[str, Any]:
    """The ``status --json`` object for the cluster in ``desc``."""
    managers = [m for m in desc.members if m.role == "manager"]
    states = {m.name: sup.process_state(m) for m in managers}
    running = [m for m in managers if states[m.name] == "running"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
        raft = dict(
            zip(
                [m.name for m in running],
                pool.map(lambda m: _fetch(f"{m.api_url}/raft/status", timeout), running),
                strict=True,
            )
        )
    # A locked manager's store is empty until it is unlocked: ask another.
    unlocked = [m for m in running if not (raft.get(m.name) or {}).get("locked")]
    store_nodes = _store_nodes(unlocked, timeout)
    availability = {
        n.get("ID"): n.get("Spec", {}).get("Availability", "active") for n in store_nodes.values()
    }

    leaders = [(st["term"], n) for n, st in raft.items() if st and st.get("role") == "leader"]
    term_leader = max(leaders) if leaders else None
    leader = term_leader[1] if term_leader else None
    voters: list[str] = []
    for st in ([raft[leader]] if leader else []) + list(raft.values()):
        if st and st.get("voters"):
            voters = list(st["voters"])
            break
    n_managers = len(voters) or len(managers)

    nodes = []
    for m in managers:
        st = raft.get(m.name)
        state = states[m.name]
        role = _ROLES.get(r := manager_role(m.name, state, st, voters), r)
        nodes.append(
            {
                "name": m.name,
                "id": m.node_id,
                "role": role,
                "term": (st or {}).get("term", 0),
                "commit_index": (st or {}).get("commit_index", 0),
                "applied_index": (st or {}).get("applied_index", 0),
                "last_log_index": (st or {}).get("last_log_index", 0),
                "availability": availability.get(m.node_id, "active"),
                "raft_addr": m.raft_addr,
                "api_url": m.api_url,
                "pid": m.pid if state != "down" else None,
                # "full": it cannot write its Raft log; ``disk_error`` says why.
                "disk": (st or {}).get("disk", "ok"),
                "disk_error": (st or {}).get("disk_error"),
            }
        )

    reachable = count_reachable(leader, desc.partition, nodes)
    return {
        "leader": leader,
        "term": term_leader[0] if term_leader else max((n["term"] for n in nodes), default=0),
        "managers": n_managers,
        "quorum": quorum(n_managers),
        "reachable": reachable,
        "partition": desc.partition,
        "network": network(desc),
        "nodes": nodes,
        "workers": _workers(sup, desc, store_nodes),
    }


def network(desc: Description) -> dict[str, Any]:
    """The network mode and the network faults in force (``status --json``'s "network")."""
    out: dict[str, Any] = {"mode": "transport", "oneway": desc.oneway}
    if desc.netns is not None:
        cfg = desc.netns
        out.update(
            mode="netns",
            bridge=cfg.bridge_addr,
            prefix=cfg.prefix,
            loss=cfg.loss,
            delay=cfg.delay,
            delay_via=cfg.delay_via,
        )
    return out


def describe_network(net: dict[str, Any] | None) -> str:
    """One line for the status table and the live view: the mode and its faults
    ("" in the default mode with no one-way cut)."""
    if not net:
        return ""
    parts = []
    if net.get("mode") == "netns":
        parts.append(f"network: netns (bridge {net['bridge']}, kernel drops)")
        for name, pct in sorted(net.get("loss", {}).items()):
            parts.append(f"loss {name} {pct}%")
        for name, ms in sorted(net.get("delay", {}).items()):
            parts.append(f"delay {name} {ms}ms ({net['delay_via']})")
    if net.get("oneway"):
        src, dst = net["oneway"]
        parts.append(f"one-way cut: {','.join(src)} -> {','.join(dst)}")
    return ", ".join(parts)


def _workers(sup: Supervisor, desc: Description, store_nodes: dict[str, Any]) -> list[Any]:
    """The worker agents (kept apart from "nodes", which docs/cli.md fixes as managers).

    ``state`` is the process's ("down", "paused") or, while it runs, what the
    leader's dispatcher concluded from its heartbeats ("ready" / "down"), as
    replicated in the store.
    """
    out = []
    for m in desc.members:
        if m.role != "worker":
            continue
        process = sup.process_state(m)
        node = store_nodes.get(m.node_id, {})
        observed = node.get("Status", {}).get("State", "unknown")
        state = observed if process == "running" else process
        out.append(
            {
                "name": m.name,
                "id": m.node_id,
                "role": "worker",
                "state": state,
                "availability": node.get("Spec", {}).get("Availability", "active"),
                "api_url": m.api_url,
                "pid": m.pid if process != "down" else None,
            }
        )
    return out


def _store_nodes(running: list[Any], timeout: float) -> dict[str, Any]:
    """The node objects by ID, read locally (no barrier) on any running manager."""
    for m in running:
        nodes = _fetch(f"{m.api_url}/nodes?consistency=local", timeout)
        if isinstance(nodes, list):
            return {n.get("ID"): n for n in nodes if isinstance(n, dict)}
    return {}
