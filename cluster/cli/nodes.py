"""The ``node`` verbs: ls, inspect, update, promote, demote, rm.

``node ls`` without ``--json`` or ``-q`` is the status table of
`cluster.cli.main`; the rest go through the API (`cluster.cli.api.Api`) and, like
service updates, are compare-and-set on the node's ``Version.Index``.
Promotion and demotion change the node's role in the store; the Raft voters
follow (§6), and `cmd_node_role` warns when they have not.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cluster.cli.api import Api, remove_each
from cluster.cli.format import Obj, key_values, pretty, print_json, print_table
from cluster.client.http import ApiError, Unreachable
from cluster.client.wait import attempts
from cluster.local.layout import ClusterError
from cluster.local.status import collect, describe_network, reachability

ENGINE_VERSION = "swarmraft-0.1"

__all__ = [
    "cmd_node_inspect",
    "cmd_node_ls",
    "cmd_node_rm",
    "cmd_node_role",
    "cmd_node_update",
    "cmd_status",
    "manager_status",
]


def cmd_node_ls(ctx: Any) -> int:
    a = ctx.args
    if not (a.json or a.quiet):
        return cmd_status(ctx)
    nodes = Api(ctx).get("/nodes")
    if a.json:
        print_json(nodes)
    else:
        for n in nodes:
            print(n["ID"])
    return 0


def _pretty_node(n: Obj) -> None:
    spec, status = n["Spec"], n.get("Status", {})
    pairs: list[tuple[str, Any]] = [
        ("ID", n["ID"]),
        ("Hostname", n.get("Description", {}).get("Hostname", "")),
        ("Joined at", n.get("CreatedAt")),
        ("Status", None),
        (" State", status.get("State", "").capitalize()),
        (" Availability", spec.get("Availability", "").capitalize()),
        (" Address", status.get("Addr", "")),
    ]
    if spec.get("Labels"):
        pairs.append(("Labels", None))
        pairs += [(f" - {k}", v) for k, v in spec["Labels"].items()]
    ms = n.get("ManagerStatus")
    if ms:
        pairs += [
            ("Manager Status", None),
            (" Address", ms.get("Addr", "")),
            (" Raft Status", ms.get("Reachability", "").capitalize()),
            (" Leader", "Yes" if ms.get("Leader") else "No"),
        ]
    pretty(pairs)


def cmd_node_inspect(ctx: Any) -> int:
    api = Api(ctx)
    found = [api.lookup("node", ref) for ref in ctx.args.refs]
    if ctx.args.pretty:
        for i, n in enumerate(found):
            if i:
                print()
            _pretty_node(n)
    else:
        print_json(found)
    return 0


def _update_node(api: Api, node: Obj, changes: Obj) -> Obj:
    version = node["Version"]["Index"]
    return api.call("POST", f"/nodes/{node['ID']}/update", changes, query={"version": version})


def cmd_node_update(ctx: Any) -> int:
    a = ctx.args
    api = Api(ctx)
    node = api.lookup("node", a.ref)
    changes: Obj = {}
    if a.availability:
        changes["Availability"] = a.availability
    if a.role:
        changes["Role"] = a.role
    if a.label_add or a.label_rm:
        labels = {k: v for k, v in node["Spec"].get("Labels", {}).items() if k not in a.label_rm}
        changes["Labels"] = {**labels, **key_values(a.label_add, "label")}
    if not changes:
        raise ClusterError("node update: nothing to change (try --availability drain)")
    _update_node(api, node, changes)
    print(a.ref)
    return 0


def cmd_node_role(ctx: Any) -> int:
    """``node promote`` / ``node demote``: the node's Spec.Role, through the API.

    Raft membership is what really makes a manager (§6); after the store
    accepted the role, check that the voters followed and say so if not.
    """
    a = ctx.args
    role = "manager" if a.node_cmd == "promote" else "worker"
    api = Api(ctx)
    for ref in a.refs:
        node = api.lookup("node", ref)
        name = node.get("Description", {}).get("Hostname") or ref
        if node["Spec"]["Role"] == role:
            print(f"Node {name} is already a {role}.")
            continue
        _update_node(api, node, {"Role": role})
        if role == "manager":
            print(f"Node {name} promoted to a manager in the swarm.")
        else:
            print(f"Manager {name} demoted in the swarm.")
        _check_membership(api, name, role == "manager")
    return 0


def cmd_node_rm(ctx: Any) -> int:
    """``node rm [--force]``: a node leaves the swarm's store; its certificate stops
    working, since the dispatcher admits only nodes that are still there."""
    return remove_each(ctx, "node", ctx.args.refs, "?force=true" if ctx.args.force else "")


def _check_membership(api: Api, name: str, voter: bool, wait: float = 3.0) -> None:
    voters: list[str] = []
    for _ in attempts(within=wait, every=0.2):
        try:
            voters = api.get("/raft/status").get("voters") or []
        except (ApiError, Unreachable):
            return
        if (name in voters) == voter:
            return
    print(
        f"warning: the store records {name} as a {'manager' if voter else 'worker'}, "
        f"but the Raft voters are still {', '.join(voters) or 'unknown'}",
        file=sys.stderr,
    )


def manager_status(st: dict[str, Any], node: dict[str, Any]) -> str:
    """Docker's MANAGER STATUS, as the swarm's leader sees the manager: a manager
    cut off by a partition is Unreachable, even a stale leader still there."""
    if node["name"] == st["leader"]:
        return "Leader"
    return "Reachable" if reachability(st, node) == "yes" else "Unreachable"


def cmd_status(ctx: Any) -> int:
    desc = ctx.cdir.load()
    st = collect(ctx.sup, desc)
    if ctx.args.json:
        print(json.dumps(st if ctx.args.cmd == "status" else st["nodes"], indent=2))
        return 0
    rows = []
    for n in st["nodes"]:
        up = n["role"] not in ("down", "paused")
        rows.append(
            (
                n["id"][:25] + (" *" if n["name"] == st["leader"] else ""),
                n["name"],
                "Ready" if up else "Down",
                n["availability"].capitalize(),
                manager_status(st, n),
                ENGINE_VERSION,
                n["role"] + (" (disk full)" if n.get("disk") == "full" else ""),
                n["term"],
                n["commit_index"],
                n["applied_index"],
            )
        )
    for w in st.get("workers", []):
        rows.append(
            (
                w["id"][:25],
                w["name"],
                "Ready" if w["state"] == "ready" else "Down",
                w["availability"].capitalize(),
                "",
                ENGINE_VERSION,
                "worker" if w["state"] in ("ready", "down") else w["state"],
                "-",
                "-",
                "-",
            )
        )
    print_table(
        (
            "ID",
            "HOSTNAME",
            "STATUS",
            "AVAILABILITY",
            "MANAGER STATUS",
            "ENGINE VERSION",
            "ROLE",
            "TERM",
            "COMMIT",
            "APPLIED",
        ),
        rows,
    )
    for n in st["nodes"]:
        if n.get("disk_error"):
            print(f"{n['name']}: {n['disk_error']}")
    if ctx.args.cmd == "status":
        ok = st["reachable"] >= st["quorum"]
        parts = [
            f"leader: {st['leader'] or 'none'}",
            f"term: {st['term']}",
            f"quorum: {st['reachable']} of {st['managers']} managers reachable, "
            f"{st['quorum']} needed ({'ok' if ok else 'LOST'})",
        ]
        if st["partition"]:
            parts.append("partition: " + " | ".join(",".join(g) for g in st["partition"]))
        if net := describe_network(st.get("network")):
            parts.append(net)
        full = [n["name"] for n in st["nodes"] if n.get("disk") == "full"]
        if full:  # they neither vote nor acknowledge: no quorum counts on them
            parts.append("disk full: " + ",".join(full))
        print("\n" + "   ".join(parts))
    return 0
