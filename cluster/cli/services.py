"""The ``service`` verbs: create, ls, ps, inspect, scale, update, rm.

Each is a thin client of the API (`cluster.cli.api.Api`): it turns its
arguments into a ServiceSpec with `cluster.cli.format`, sends it, and prints
what came back in docker's columns.  Updates are compare-and-set: the verb
reads the service, changes its spec and sends it back with the
``Version.Index`` it read; if someone else wrote in between, the API refuses
with 409 and the user sees that one line.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cluster.cli.api import Api, remove_each
from cluster.cli.format import (
    SERVICE_COLUMNS,
    TASK_COLUMNS,
    Obj,
    filters_param,
    format_duration,
    pretty,
    print_json,
    print_table,
    service_mode,
    service_rows,
    service_spec,
    task_rows,
    updated_spec,
)
from cluster.local.layout import ClusterError

__all__ = [
    "cmd_service_create",
    "cmd_service_inspect",
    "cmd_service_ls",
    "cmd_service_ps",
    "cmd_service_rm",
    "cmd_service_scale",
    "cmd_service_update",
]


def cmd_service_create(ctx: Any) -> int:
    api = Api(ctx)
    spec = service_spec(ctx.args, api.lookup)
    created = api.call("POST", "/services/create", spec)
    print(created["ID"])
    return 0


def cmd_service_ls(ctx: Any) -> int:
    a = ctx.args
    api = Api(ctx)
    services = api.get("/services", status="true", filters=filters_param(a.filter))
    if a.json:
        print_json(services)
    elif a.quiet:
        for s in services:
            print(s["ID"])
    else:
        print_table(SERVICE_COLUMNS, service_rows(services))
    return 0


def cmd_service_ps(ctx: Any) -> int:
    a = ctx.args
    api = Api(ctx)
    services = {}
    for ref in a.services:
        s = api.lookup("service", ref)
        services[s["ID"]] = s
    filters = json.loads(filters_param(a.filter) or "{}")
    filters["service"] = list(services)
    tasks = api.get("/tasks", filters=json.dumps(filters))
    if a.json:
        print_json(tasks)
    elif a.quiet:
        for t in tasks:
            print(t["ID"])
    else:
        nodes = api.get("/nodes")
        hostnames = {n["ID"]: n.get("Description", {}).get("Hostname", "") for n in nodes}
        print_table(TASK_COLUMNS, task_rows(tasks, services, hostnames, time.time(), a.trunc))
    return 0


def _pretty_service(s: Obj) -> None:
    spec = s["Spec"]
    cs = spec["TaskTemplate"]["ContainerSpec"]
    pairs: list[tuple[str, Any]] = [("ID", s["ID"]), ("Name", spec.get("Name", ""))]
    if spec.get("Labels"):
        pairs.append(("Labels", None))
        pairs += [(f" {k}", v) for k, v in spec["Labels"].items()]
    if service_mode(s) == "global":
        pairs.append(("Service Mode", "Global"))
    else:
        pairs += [
            ("Service Mode", "Replicated"),
            (" Replicas", spec["Mode"]["Replicated"]["Replicas"]),
        ]
    if s.get("UpdateStatus"):
        u = s["UpdateStatus"]
        pairs += [
            ("UpdateStatus", None),
            (" State", u.get("State")),
            (" Message", u.get("Message")),
        ]
    uc = spec.get("UpdateConfig", {})
    pairs += [
        ("UpdateConfig", None),
        (" Parallelism", uc.get("Parallelism", 1)),
        (" Delay", format_duration(uc.get("Delay", 0))) if uc.get("Delay") else ("", ""),
        (" On failure", uc.get("FailureAction", "pause")),
        (" Monitoring Period", format_duration(uc.get("Monitor", 0))),
        (" Max failure ratio", uc.get("MaxFailureRatio", 0)),
        (" Update order", uc.get("Order", "stop-first")),
        ("ContainerSpec", None),
        (" Image", cs["Image"]),
    ]
    pairs = [p for p in pairs if p != ("", "")]
    if cs.get("Args"):
        pairs.append((" Args", " ".join(cs["Args"])))
    if cs.get("Env"):
        pairs.append((" Env", " ".join(cs["Env"])))
    for kind in ("Secrets", "Configs"):
        if cs.get(kind):
            pairs.append((kind, None))
            for r in cs[kind]:
                pairs += [(" Target", r["File"]["Name"]), ("  Source", r[f"{kind[:-1]}Name"])]
    ports = spec.get("EndpointSpec", {}).get("Ports", [])
    if ports:
        pairs.append(("Ports", None))
        for p in ports:
            pairs += [
                (" PublishedPort", p.get("PublishedPort", 0)),
                ("  Protocol", p.get("Protocol", "tcp")),
                ("  TargetPort", p["TargetPort"]),
                ("  PublishMode", p.get("PublishMode", "ingress")),
            ]
    pretty(pairs)


def cmd_service_inspect(ctx: Any) -> int:
    api = Api(ctx)
    found = [api.lookup("service", ref) for ref in ctx.args.services]
    if ctx.args.pretty:
        for n, s in enumerate(found):
            if n:
                print()
            _pretty_service(s)
    else:
        print_json(found)
    return 0


def _update_service(api: Api, service: Obj, spec: Obj) -> Obj:
    version = service["Version"]["Index"]
    return api.call("POST", f"/services/{service['ID']}/update", spec, query={"version": version})


def cmd_service_scale(ctx: Any) -> int:
    wanted = []
    for item in ctx.args.scales:
        ref, eq, n = item.partition("=")
        if not eq or not ref or not n.isdigit():
            raise ClusterError(f"invalid scale specifier {item!r}: expected SERVICE=REPLICAS")
        wanted.append((ref, int(n)))
    api = Api(ctx)
    for ref, n in wanted:
        service = api.lookup("service", ref)
        spec = service["Spec"]
        if "Replicated" not in spec["Mode"]:
            raise ClusterError(f"{ref}: scale can only be used with replicated mode")
        spec["Mode"]["Replicated"]["Replicas"] = n
        _update_service(api, service, spec)
        print(f"{ref} scaled to {n}")
    return 0


def cmd_service_update(ctx: Any) -> int:
    a = ctx.args
    api = Api(ctx)
    service = api.lookup("service", a.service)
    if a.rollback:
        version = service["Version"]["Index"]
        api.call(
            "POST",
            f"/services/{service['ID']}/update",
            query={"version": version, "rollback": "previous"},
        )
    else:
        _update_service(api, service, updated_spec(service["Spec"], a, api.lookup))
    print(a.service)
    return 0


def cmd_service_rm(ctx: Any) -> int:
    return remove_each(ctx, "service", ctx.args.services)
