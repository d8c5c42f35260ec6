"""The docker verbs' pure helpers: arguments into specs, objects into text.

Parsing goes one way (``--publish 8080:80``, ``--update-delay 1m30s``,
``--secret db,target=pw`` into the Engine API's ServiceSpec shapes) and
formatting the other (objects into ``service ls`` / ``service ps`` /
``secret ls`` rows, docker's "2 minutes ago", ``inspect --pretty`` lines).
Nothing here sends a request or reads the cluster's directory, so all of it
is tested without a cluster; the verbs that use it are in
`cluster.cli.services`, `cluster.cli.secrets` and `cluster.cli.nodes`.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cluster.local.layout import ClusterError

__all__ = [
    "NAMED_COLUMNS",
    "SERVICE_COLUMNS",
    "TASK_COLUMNS",
    "Obj",
    "Resolver",
    "filters_param",
    "format_duration",
    "human_duration",
    "key_values",
    "named_rows",
    "parse_duration",
    "parse_publish",
    "parse_reference",
    "pretty",
    "print_json",
    "service_mode",
    "service_rows",
    "service_spec",
    "task_rows",
    "updated_spec",
]

#: An object in the Engine API's JSON shape (a service, a task, a node, ...).
Obj = dict[str, Any]


def filters_param(items: Sequence[str] | None) -> str | None:
    """docker's ``--filter key=value`` (repeatable) as the API's ``filters`` JSON."""
    if not items:
        return None
    out: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ClusterError(f"invalid filter {item!r}: expected key=value")
        out.setdefault(key.strip().lower(), []).append(value)
    return json.dumps(out)


# ---------------------------------------------------------------- specs

_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_DURATION_UNITS["h"] = 3600 * 10**9
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """A Go duration (``10s``, ``1m30s``, ``500ms``) in nanoseconds, as the API wants it."""
    s = text.strip()
    if s == "0":
        return 0
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s) or not s:
        raise ClusterError(f"invalid duration {text!r}: expected e.g. 10s, 1m30s, 500ms")
    return round(total)


def format_duration(ns: int) -> str:
    """Nanoseconds as a short Go-style duration: ``10s``, ``1m30s``, ``500ms``."""
    if ns == 0:
        return "0s"
    if ns < 10**9:
        return f"{ns / 1e6:g}ms"
    seconds = ns / 1e9
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{int(hours)}h" if hours else "") + (f"{int(minutes)}m" if minutes or hours else "")
    return out + f"{secs:g}s"


def parse_publish(text: str) -> Obj:
    """``published:target[/proto][,mode=host]`` or docker's long form
    ``published=P,target=T[,protocol=udp][,mode=host]`` as an EndpointSpec port."""
    port: Obj = {"Protocol": "tcp", "PublishMode": "ingress"}
    for n, part in enumerate(text.split(",")):
        key, eq, value = part.partition("=")
        if not eq and n == 0:
            published, colon, target = part.rpartition(":")
            target, _, proto = target.partition("/")
            port["TargetPort"] = _port_number(target, text)
            port["PublishedPort"] = _port_number(published, text) if colon else 0
            if proto:
                port["Protocol"] = proto
        elif key in ("published", "target"):
            port[f"{key.capitalize()}Port"] = _port_number(value, text)
        elif key in ("protocol", "mode"):
            port["Protocol" if key == "protocol" else "PublishMode"] = value
        else:
            raise ClusterError(f"invalid publish {text!r}: unknown field {key!r}")
    if "TargetPort" not in port:
        raise ClusterError(f"invalid publish {text!r}: no target port")
    if port["Protocol"] not in ("tcp", "udp", "sctp"):
        raise ClusterError(f"invalid publish {text!r}: protocol must be tcp, udp or sctp")
    if port["PublishMode"] not in ("ingress", "host"):
        raise ClusterError(f"invalid publish {text!r}: mode must be ingress or host")
    port.setdefault("PublishedPort", 0)
    return port


def _port_number(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise ClusterError(f"invalid publish {whole!r}: {text!r} is not a port number")
    return int(text)


def parse_reference(text: str) -> tuple[str, Obj]:
    """``NAME[,target=T]`` (or ``source=NAME,target=T,uid=..,gid=..,mode=0400``):
    the source name and the File part of a secret or config reference."""
    source, file = "", {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not eq:
            source = part
        elif key in ("source", "src"):
            source = value
        elif key == "target":
            file["Name"] = value
        elif key in ("uid", "gid"):
            file[key.upper()] = value
        elif key == "mode":
            try:
                file["Mode"] = int(value, 8)
            except ValueError:
                raise ClusterError(
                    f"invalid mode {value!r} in {text!r}: octal, e.g. 0400"
                ) from None
        else:
            raise ClusterError(f"invalid reference {text!r}: unknown field {key!r}")
    if not source:
        raise ClusterError(f"invalid reference {text!r}: no source name")
    return source, file


def key_values(items: Iterable[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        if not key:
            raise ClusterError(f"invalid {what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


Resolver = Callable[[str, str], Obj]


def _refs(kind: str, items: Iterable[str] | None, resolve: Resolver) -> list[Obj]:
    """Secret or config references in the Engine API's shape (IDs looked up by name)."""
    title = kind.capitalize()
    out = []
    for item in items or []:
        source, file = parse_reference(item)
        obj = resolve(kind, source)
        name = obj["Spec"]["Name"]
        default_target = name if kind == "secret" else f"/{name}"
        out.append(
            {
                f"{title}ID": obj["ID"],
                f"{title}Name": name,
                "File": {"Name": default_target, "UID": "0", "GID": "0", "Mode": 0o444, **file},
            }
        )
    return out


def _update_config(args: argparse.Namespace, current: Obj | None = None) -> Obj | None:
    cfg = dict(current or {})
    if args.update_parallelism is not None:
        cfg["Parallelism"] = args.update_parallelism
    if args.update_delay is not None:
        cfg["Delay"] = parse_duration(args.update_delay)
    if args.update_failure_action is not None:
        cfg["FailureAction"] = args.update_failure_action
    if args.update_order is not None:
        cfg["Order"] = args.update_order
    if args.update_monitor is not None:
        cfg["Monitor"] = parse_duration(args.update_monitor)
    return cfg or None


def service_spec(args: argparse.Namespace, resolve: Resolver) -> Obj:
    """The ServiceSpec ``service create`` sends, from its arguments."""
    if args.mode == "global" and args.replicas is not None:
        raise ClusterError("--replicas can only be used with replicated mode")
    container: Obj = {"Image": args.image}
    if args.command:
        container["Args"] = list(args.command)
    if args.env:
        container["Env"] = list(args.env)
    if args.secret:
        container["Secrets"] = _refs("secret", args.secret, resolve)
    if args.config:
        container["Configs"] = _refs("config", args.config, resolve)
    spec: Obj = {
        "Labels": key_values(args.label, "label"),
        "TaskTemplate": {"ContainerSpec": container},
        "Mode": (
            {"Global": {}}
            if args.mode == "global"
            else {"Replicated": {"Replicas": 1 if args.replicas is None else args.replicas}}
        ),
    }
    if args.name:
        spec["Name"] = args.name
    if args.publish:
        spec["EndpointSpec"] = {"Ports": [parse_publish(p) for p in args.publish]}
    update = _update_config(args)
    if update:
        spec["UpdateConfig"] = update
    return spec


def _replace_by_key(
    items: list[Any], remove: Iterable[Any], add: Iterable[Any], key: Callable[[Any], Any]
) -> list[Any]:
    gone = set(remove) | {key(x) for x in add}
    return [x for x in items if key(x) not in gone] + list(add)


def updated_spec(spec: Obj, args: argparse.Namespace, resolve: Resolver) -> Obj:
    """The ServiceSpec ``service update`` sends: the current one with the flags applied."""
    spec = json.loads(json.dumps(spec))  # a deep copy we may change
    cs = spec["TaskTemplate"]["ContainerSpec"]
    if args.image:
        cs["Image"] = args.image
    if args.args is not None:
        cs["Args"] = args.args.split()
    if args.replicas is not None:
        if "Replicated" not in spec["Mode"]:
            raise ClusterError("--replicas can only be used with replicated mode")
        spec["Mode"]["Replicated"]["Replicas"] = args.replicas
    if args.env_add or args.env_rm:
        cs["Env"] = _replace_by_key(
            cs.get("Env", []), args.env_rm or [], args.env_add or [], lambda e: e.split("=")[0]
        )
    if args.label_add or args.label_rm:
        labels = {k: v for k, v in spec.get("Labels", {}).items() if k not in (args.label_rm or [])}
        spec["Labels"] = {**labels, **key_values(args.label_add, "label")}
    if args.publish_add or args.publish_rm:
        ports = spec.setdefault("EndpointSpec", {}).get("Ports", [])
        removed = {int(p.split(":")[-1].split("/")[0]) for p in args.publish_rm or []}
        added = [parse_publish(p) for p in args.publish_add or []]
        spec["EndpointSpec"]["Ports"] = _replace_by_key(
            ports, removed, added, lambda p: p["TargetPort"]
        )
    for kind in ("secret", "config"):
        add, rm = getattr(args, f"{kind}_add"), getattr(args, f"{kind}_rm")
        if add or rm:
            field, name = f"{kind.capitalize()}s", f"{kind.capitalize()}Name"
            refs = _refs(kind, add, resolve)
            cs[field] = _replace_by_key(
                cs.get(field, []), rm or [], refs, lambda r, name=name: r[name]
            )
    update = _update_config(args, spec.get("UpdateConfig"))
    if update:
        spec["UpdateConfig"] = update
    if args.force:
        template = spec["TaskTemplate"]
        template["ForceUpdate"] = template.get("ForceUpdate", 0) + 1
    return spec


# ---------------------------------------------------------------- rows and text


def human_duration(seconds: float) -> str:
    """docker's wording for how long ago: "2 minutes", "About an hour", "3 days"."""
    s = max(0.0, seconds)
    if s < 1:
        return "Less than a second"
    if s < 60:
        n = int(s)
        return "1 second" if n == 1 else f"{n} seconds"
    minutes = s / 60
    if minutes < 1.5:
        return "About a minute"
    if minutes < 60:
        return f"{round(minutes)} minutes"
    hours = minutes / 60
    if hours < 1.5:
        return "About an hour"
    if hours < 48:
        return f"{round(hours)} hours"
    days = hours / 24
    if days < 14:
        return f"{int(days)} days"
    if days < 60:
        return f"{int(days / 7)} weeks"
    if days < 730:
        return f"{int(days / 30)} months"
    return f"{int(days / 365)} years"


def _ago(stamp: str | None, now: float) -> str:
    if not stamp:
        return ""
    from cluster.state.commands import parse_time

    try:
        return human_duration(now - parse_time(stamp)) + " ago"
    except ValueError:
        return stamp


def service_mode(service: Obj) -> str:
    return "global" if "Global" in service["Spec"].get("Mode", {}) else "replicated"


def _ports(ports: Iterable[Obj], ingress_only: bool = True) -> str:
    out = []
    for p in ports:
        if ingress_only and p.get("PublishMode", "ingress") != "ingress":
            continue
        published = p.get("PublishedPort") or ""
        prefix = "*:" if p.get("PublishMode", "ingress") == "ingress" else ""
        out.append(f"{prefix}{published}->{p['TargetPort']}/{p.get('Protocol', 'tcp')}")
    return ",".join(out)


def service_rows(services: Sequence[Obj], tasks: Sequence[Obj] | None = None) -> list[tuple]:
    """``service ls`` rows: ID NAME MODE REPLICAS IMAGE PORTS, sorted by name.

    REPLICAS is running/desired.  The API's ``ServiceStatus`` counts them
    from the tasks; with ``tasks`` given, they are counted here instead.
    """
    rows = []
    for s in sorted(services, key=lambda s: s["Spec"].get("Name", "")):
        spec = s["Spec"]
        if tasks is not None:
            mine = [
                t for t in tasks if t["ServiceID"] == s["ID"] and t.get("DesiredState") == "running"
            ]
            running = sum(1 for t in mine if t["Status"]["State"] == "running")
            desired = (
                len(mine) if service_mode(s) == "global" else spec["Mode"]["Replicated"]["Replicas"]
            )
        else:
            status = s.get("ServiceStatus") or {}
            running, desired = status.get("RunningTasks", 0), status.get("DesiredTasks", 0)
        ports = s.get("Endpoint", {}).get("Ports") or spec.get("EndpointSpec", {}).get("Ports", [])
        rows.append(
            (
                s["ID"][:12],
                spec.get("Name", ""),
                service_mode(s),
                f"{running}/{desired}",
                spec["TaskTemplate"]["ContainerSpec"]["Image"],
                _ports(ports),
            )
        )
    return rows


SERVICE_COLUMNS = ("ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS")
TASK_COLUMNS = ("ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS")
NAMED_COLUMNS = ("ID", "NAME", "CREATED", "UPDATED")


def task_rows(
    tasks: Sequence[Obj],
    services: dict[str, Obj],
    hostnames: dict[str, str],
    now: float,
    trunc: bool = True,
) -> list[tuple]:
    """``service ps`` rows.  NAME is ``service.slot``; as in docker, the older
    tasks of a slot follow its newest one, named ``\\_ service.slot``."""

    def name_of(t: Obj) -> str:
        s = services.get(t["ServiceID"])
        base = s["Spec"]["Name"] if s else t["ServiceID"]
        return f"{base}.{t['Slot']}" if t.get("Slot") else f"{base}.{t.get('NodeID', '')}"

    def order(t: Obj) -> tuple:
        return (name_of(t), -t.get("Version", {}).get("Index", 0))

    rows, previous = [], None
    for t in sorted(tasks, key=order):
        name = name_of(t)
        shown = name if name != previous else f" \\_ {name}"
        previous = name
        status = t.get("Status", {})
        err = status.get("Err", "")
        state = status.get("State", "")
        image = t.get("Spec", {}).get("ContainerSpec", {}).get("Image", "")
        node_id = t.get("NodeID", "")
        rows.append(
            (
                t["ID"][:12] if trunc else t["ID"],
                shown,
                image,
                hostnames.get(node_id, node_id[:12]),
                t.get("DesiredState", "").capitalize(),
                f"{state.capitalize()} {_ago(status.get('Timestamp'), now)}".strip(),
                json.dumps(err[:40] if trunc else err) if err else "",
                _ports(status.get("PortStatus", {}).get("Ports", []), ingress_only=False),
            )
        )
    return rows


def named_rows(objs: Sequence[Obj], now: float) -> list[tuple]:
    """``secret ls`` / ``config ls`` rows: ID NAME CREATED UPDATED, sorted by name."""
    return [
        (x["ID"], x["Spec"]["Name"], _ago(x.get("CreatedAt"), now), _ago(x.get("UpdatedAt"), now))
        for x in sorted(objs, key=lambda x: x["Spec"]["Name"])
    ]


def pretty(pairs: Sequence[tuple[str, Any]]) -> None:
    """``Key:   value`` lines, values aligned; a leading space nests a key."""
    width = max((len(k) for k, _ in pairs), default=0) + 2
    for key, value in pairs:
        if value is None:
            print(f"{key}:")
        else:
            print(f"{key + ':':<{width}}{value}")


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=4))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns like docker prints them: left aligned, three spaces apart."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
