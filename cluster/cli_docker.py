"""The docker verbs: ``service``, ``secret``, ``config`` and ``node``.

Each verb is a thin client of one manager's HTTP API (DESIGN.md, HTTP API
contract), with docker's flags and table columns where docker has them.
Which manager: ``--node NAME`` picks one; otherwise the first running
manager that answers a quick ``/raft/status`` (paused and stopped ones are
skipped, and during a partition the managers on its largest side are tried
first).  Writes need not go to the leader: the API forwards them there.

The API resolves every reference (a name, an ID prefix, or for nodes the
word ``leader``), so the CLI passes what the user typed.  Updates are
compare-and-set: the CLI reads the object, changes its spec and sends it
back with the ``Version.Index`` it read; if someone else wrote in between,
the API refuses with 409 and the user sees that one line.

The module is in three parts: the client (`Api`), pure helpers that turn
arguments into specs and objects into table rows (tested without a
cluster), and the commands with their parser.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from cluster.httpclient import ApiError, Unreachable, request
from cluster.layout import ClusterError, Description, Member

__all__ = [
    "Api",
    "human_duration",
    "parse_duration",
    "parse_publish",
    "parse_reference",
    "register",
    "service_rows",
    "service_spec",
    "task_rows",
]

Obj = dict[str, Any]

#: How long a manager gets to answer the "are you there" probe.
PROBE_TIMEOUT = 0.5
#: A failure faster than this (connection refused) means "try the next manager".
FAST_FAILURE = 1.0


# ---------------------------------------------------------------- the client


class Api:
    """One manager's HTTP API, chosen as the module docstring says."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.desc: Description = ctx.cdir.load()
        self.pinned: str | None = getattr(ctx.args, "via", None)
        self._tried: set[str] = set()
        self._member: Member | None = None
        t = self.desc.timing
        # The API bounds its own answer (a few election timeouts, plus one
        # forwarding hop); wait a little longer than that, never forever.
        self.timeout = t.request_timeout * 2 + 2.0

    def _candidates(self) -> list[Member]:
        sup = self.ctx.sup
        if self.pinned:
            m = sup.resolve(self.desc, self.pinned)
            state = sup.process_state(m)
            if state != "running":
                raise ClusterError(f"{m.name} is {state}; pick a running manager with --node")
            return [m]
        managers = [m for m in self.desc.members if m.role == "manager"]
        running = [m for m in managers if sup.process_state(m) == "running"]
        if not running:
            raise ClusterError(
                "no manager is running (start the cluster with: python -m cluster up -d)"
            )
        sizes = {n: len(g) for g in self.desc.partition for n in g}
        # A stable sort: manager order within a side, the largest side first.
        return sorted(running, key=lambda m: -sizes.get(m.name, 0))

    def _pick(self) -> Member:
        if self._member is not None:
            return self._member
        tried = []
        for m in self._candidates():
            if m.name in self._tried:
                continue
            tried.append(m.name)
            try:
                st = request("GET", f"{m.api_url}/raft/status", timeout=PROBE_TIMEOUT)
            except (Unreachable, ApiError):
                self._tried.add(m.name)
                continue
            if isinstance(st, dict) and st.get("locked") and not self.pinned:
                self._tried.add(m.name)  # autolock: it serves nothing until unlocked
                continue
            self._member = m
            return m
        if not tried:
            raise ClusterError("no manager answered")
        raise ClusterError(f"no manager answered (tried {', '.join(tried)})")

    @property
    def manager(self) -> Member:
        return self._pick()

    def call(
        self, method: str, path: str, body: Any = None, *, query: dict[str, Any] | None = None
    ) -> Any:
        """One API request; a write carries a request ID so a retry is not applied twice."""
        if query:
            path += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"X-Request-ID": uuid.uuid4().hex} if method != "GET" else None
        while True:
            m = self._pick()
            started = time.monotonic()
            try:
                return request(
                    method, m.api_url + path, body, timeout=self.timeout, headers=headers
                )
            except Unreachable:
                # It died between the probe and the request: try another one,
                # unless it is the one the user asked for or it hung.
                if self.pinned or time.monotonic() - started > FAST_FAILURE:
                    raise
                self._tried.add(m.name)
                self._member = None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query or None)

    def lookup(self, kind: str, ref: str) -> Obj:
        """An object by name, ID prefix (or ``leader`` for a node), resolved by the API."""
        return self.get(f"/{kind}s/{quote(ref, safe='')}")


def _filters(items: Sequence[str] | None) -> str | None:
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


# ---------------------------------------------------------------- pure helpers

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


def _key_values(items: Iterable[str] | None, what: str) -> dict[str, str]:
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
        "Labels": _key_values(args.label, "label"),
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
        spec["Labels"] = {**labels, **_key_values(args.label_add, "label")}
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
    from cluster.commands import parse_time

    try:
        return human_duration(now - parse_time(stamp)) + " ago"
    except ValueError:
        return stamp


def _mode(service: Obj) -> str:
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
            desired = len(mine) if _mode(s) == "global" else spec["Mode"]["Replicated"]["Replicas"]
        else:
            status = s.get("ServiceStatus") or {}
            running, desired = status.get("RunningTasks", 0), status.get("DesiredTasks", 0)
        ports = s.get("Endpoint", {}).get("Ports") or spec.get("EndpointSpec", {}).get("Ports", [])
        rows.append(
            (
                s["ID"][:12],
                spec.get("Name", ""),
                _mode(s),
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


def _pretty(pairs: Sequence[tuple[str, Any]]) -> None:
    """``Key:   value`` lines, values aligned; a leading space nests a key."""
    width = max((len(k) for k, _ in pairs), default=0) + 2
    for key, value in pairs:
        if value is None:
            print(f"{key}:")
        else:
            print(f"{key + ':':<{width}}{value}")


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=4))


# ---------------------------------------------------------------- services


def cmd_service_create(ctx: Any) -> int:
    api = Api(ctx)
    spec = service_spec(ctx.args, api.lookup)
    created = api.call("POST", "/services/create", spec)
    print(created["ID"])
    return 0


def cmd_service_ls(ctx: Any) -> int:
    a = ctx.args
    api = Api(ctx)
    services = api.get("/services", status="true", filters=_filters(a.filter))
    if a.json:
        _print_json(services)
    elif a.quiet:
        for s in services:
            print(s["ID"])
    else:
        from cluster.cli import print_table

        print_table(SERVICE_COLUMNS, service_rows(services))
    return 0


def cmd_service_ps(ctx: Any) -> int:
    a = ctx.args
    api = Api(ctx)
    services = {}
    for ref in a.services:
        s = api.lookup("service", ref)
        services[s["ID"]] = s
    filters = json.loads(_filters(a.filter) or "{}")
    filters["service"] = list(services)
    tasks = api.get("/tasks", filters=json.dumps(filters))
    if a.json:
        _print_json(tasks)
    elif a.quiet:
        for t in tasks:
            print(t["ID"])
    else:
        from cluster.cli import print_table

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
    if _mode(s) == "global":
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
    _pretty(pairs)


def cmd_service_inspect(ctx: Any) -> int:
    api = Api(ctx)
    found = [api.lookup("service", ref) for ref in ctx.args.services]
    if ctx.args.pretty:
        for n, s in enumerate(found):
            if n:
                print()
            _pretty_service(s)
    else:
        _print_json(found)
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


def _remove_each(ctx: Any, kind: str, refs: Sequence[str]) -> int:
    """docker's ``rm``: remove each one, report each failure, fail if any failed."""
    api = Api(ctx)
    failed = 0
    for ref in refs:
        try:
            obj = api.lookup(kind, ref)
            api.call("DELETE", f"/{kind}s/{obj['ID']}")
        except ApiError as e:
            print(f"error: {e.message}", file=sys.stderr)
            failed += 1
            continue
        print(ref)
    return 1 if failed else 0


def cmd_service_rm(ctx: Any) -> int:
    return _remove_each(ctx, "service", ctx.args.services)


# ---------------------------------------------------------------- secrets and configs


def _read_data(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as e:
        raise ClusterError(f"cannot read {source}: {e.strerror}") from None


def cmd_named_create(ctx: Any) -> int:
    a = ctx.args
    data = _read_data(a.file)
    api = Api(ctx)
    body = {
        "Name": a.name,
        "Labels": _key_values(a.label, "label"),
        "Data": base64.b64encode(data).decode("ascii"),
    }
    created = api.call("POST", f"/{a.cmd}s/create", body)
    print(created["ID"])
    return 0


def cmd_named_ls(ctx: Any) -> int:
    a = ctx.args
    found = Api(ctx).get(f"/{a.cmd}s", filters=_filters(a.filter))
    if a.json:
        _print_json(found)
    elif a.quiet:
        for x in found:
            print(x["ID"])
    else:
        from cluster.cli import print_table

        print_table(NAMED_COLUMNS, named_rows(found, time.time()))
    return 0


def cmd_named_inspect(ctx: Any) -> int:
    a = ctx.args
    api = Api(ctx)
    found = [api.lookup(a.cmd, ref) for ref in a.refs]
    if a.cmd == "secret":
        for x in found:  # the API never sends it; make sure of it here too
            x.get("Spec", {}).pop("Data", None)
    if not a.pretty:
        _print_json(found)
        return 0
    for n, x in enumerate(found):
        if n:
            print()
        pairs: list[tuple[str, Any]] = [("ID", x["ID"]), ("Name", x["Spec"]["Name"])]
        if x["Spec"].get("Labels"):
            pairs.append(("Labels", None))
            pairs += [(f" - {k}", v) for k, v in x["Spec"]["Labels"].items()]
        pairs += [("Created at", x.get("CreatedAt")), ("Updated at", x.get("UpdatedAt"))]
        _pretty(pairs)
        if a.cmd == "config":
            print("Data:")
            raw = base64.b64decode(x["Spec"].get("Data", ""))
            print(raw.decode("utf-8", errors="replace"))
    return 0


def cmd_named_rm(ctx: Any) -> int:
    return _remove_each(ctx, ctx.args.cmd, ctx.args.refs)


# ---------------------------------------------------------------- nodes


def cmd_node_ls(ctx: Any) -> int:
    a = ctx.args
    if not (a.json or a.quiet):
        from cluster.cli import cmd_status

        return cmd_status(ctx)
    nodes = Api(ctx).get("/nodes")
    if a.json:
        _print_json(nodes)
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
    _pretty(pairs)


def cmd_node_inspect(ctx: Any) -> int:
    api = Api(ctx)
    found = [api.lookup("node", ref) for ref in ctx.args.refs]
    if ctx.args.pretty:
        for i, n in enumerate(found):
            if i:
                print()
            _pretty_node(n)
    else:
        _print_json(found)
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
        changes["Labels"] = {**labels, **_key_values(a.label_add, "label")}
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


def _check_membership(api: Api, name: str, voter: bool, wait: float = 3.0) -> None:
    deadline = time.monotonic() + wait
    voters: list[str] = []
    while time.monotonic() < deadline:
        try:
            voters = api.get("/raft/status").get("voters") or []
        except (ApiError, Unreachable):
            return
        if (name in voters) == voter:
            return
        time.sleep(0.2)
    print(
        f"warning: the store records {name} as a {'manager' if voter else 'worker'}, "
        f"but the Raft voters are still {', '.join(voters) or 'unknown'}",
        file=sys.stderr,
    )


# ---------------------------------------------------------------- parser


def _common(sub: argparse._SubParsersAction, name: str, help: str, **kw: Any) -> Any:
    p = sub.add_parser(name, help=help, **kw)
    p.add_argument(
        "--node",
        dest="via",
        metavar="NAME",
        help="the manager to talk to (default: the first one that answers)",
    )
    return p


def _listing(p: argparse.ArgumentParser, filters: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="one JSON array, the API's objects")
    p.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    if filters:
        p.add_argument("-f", "--filter", action="append", metavar="KEY=VALUE")


def _update_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--update-parallelism", type=int, metavar="N")
    p.add_argument("--update-delay", metavar="DURATION", help="e.g. 10s")
    p.add_argument("--update-failure-action", choices=("pause", "continue", "rollback"))
    p.add_argument("--update-order", choices=("stop-first", "start-first"))
    p.add_argument("--update-monitor", metavar="DURATION")


def _register_service(sub: argparse._SubParsersAction) -> None:
    service = sub.add_parser("service", help="manage services")
    ss = service.add_subparsers(dest="service_cmd", metavar="COMMAND", required=True)

    p = _common(ss, "create", "create a service")
    p.add_argument("--name")
    p.add_argument("--replicas", type=int, metavar="N")
    p.add_argument("--mode", choices=("replicated", "global"), default="replicated")
    p.add_argument("-p", "--publish", action="append", metavar="PUBLISHED:TARGET[/PROTO]")
    p.add_argument("--secret", action="append", metavar="NAME[,target=T]")
    p.add_argument("--config", action="append", metavar="NAME[,target=T]")
    p.add_argument("-e", "--env", action="append", metavar="K=V")
    p.add_argument("-l", "--label", action="append", metavar="K=V")
    p.add_argument("-d", "--detach", action="store_true", help="accepted for docker compatibility")
    _update_flags(p)
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.set_defaults(func=cmd_service_create)

    p = _common(ss, "ls", "list services")
    _listing(p)
    p.set_defaults(func=cmd_service_ls)

    p = _common(ss, "ps", "list the tasks of services")
    _listing(p)
    p.add_argument("--no-trunc", dest="trunc", action="store_false")
    p.add_argument("services", nargs="+", metavar="SERVICE")
    p.set_defaults(func=cmd_service_ps)

    p = _common(ss, "inspect", "show services in detail")
    p.add_argument("--pretty", action="store_true")
    p.add_argument("services", nargs="+", metavar="SERVICE")
    p.set_defaults(func=cmd_service_inspect)

    p = _common(ss, "scale", "set the replicas of services")
    p.add_argument("-d", "--detach", action="store_true", help="accepted for docker compatibility")
    p.add_argument("scales", nargs="+", metavar="SERVICE=REPLICAS")
    p.set_defaults(func=cmd_service_scale)

    p = _common(ss, "update", "update a service (compare-and-set on its version)")
    p.add_argument("--image")
    p.add_argument("--replicas", type=int, metavar="N")
    p.add_argument("--args", metavar="'COMMAND ARGS'")
    for flag in ("env", "label", "publish", "secret", "config"):
        p.add_argument(f"--{flag}-add", action="append", metavar="VALUE")
        p.add_argument(f"--{flag}-rm", action="append", metavar="VALUE")
    p.add_argument("--force", action="store_true", help="redeploy even without a change")
    p.add_argument("--rollback", action="store_true", help="go back to the previous spec")
    p.add_argument("-d", "--detach", action="store_true", help="accepted for docker compatibility")
    _update_flags(p)
    p.add_argument("service", metavar="SERVICE")
    p.set_defaults(func=cmd_service_update)

    p = _common(ss, "rm", "remove services")
    p.add_argument("services", nargs="+", metavar="SERVICE")
    p.set_defaults(func=cmd_service_rm)


def _register_named(sub: argparse._SubParsersAction, kind: str) -> None:
    top = sub.add_parser(kind, help=f"manage {kind}s")
    ks = top.add_subparsers(dest=f"{kind}_cmd", metavar="COMMAND", required=True)
    p = _common(ks, "create", f"create a {kind} from a file or stdin (-)")
    p.add_argument("-l", "--label", action="append", metavar="K=V")
    p.add_argument("name", metavar="NAME")
    p.add_argument("file", metavar="FILE|-")
    p.set_defaults(func=cmd_named_create)

    p = _common(ks, "ls", f"list {kind}s")
    _listing(p)
    p.set_defaults(func=cmd_named_ls)

    what = "never its data" if kind == "secret" else "data in base64"
    p = _common(ks, "inspect", f"show {kind}s in detail ({what})")
    p.add_argument("--pretty", action="store_true")
    p.add_argument("refs", nargs="+", metavar=kind.upper())
    p.set_defaults(func=cmd_named_inspect)

    p = _common(ks, "rm", f"remove {kind}s")
    p.add_argument("refs", nargs="+", metavar=kind.upper())
    p.set_defaults(func=cmd_named_rm)


def _register_node(sub: argparse._SubParsersAction) -> None:
    node = sub.add_parser("node", help="manage nodes")
    ns = node.add_subparsers(dest="node_cmd", metavar="COMMAND", required=True)
    p = _common(ns, "ls", "list nodes (the status table)")
    _listing(p, filters=False)
    p.set_defaults(func=cmd_node_ls)

    p = _common(ns, "inspect", "show nodes in detail")
    p.add_argument("--pretty", action="store_true")
    p.add_argument("refs", nargs="+", metavar="NODE", help="name, ID prefix, or 'leader'")
    p.set_defaults(func=cmd_node_inspect)

    p = _common(ns, "update", "change a node's availability, role or labels")
    p.add_argument("--availability", choices=("active", "pause", "drain"))
    p.add_argument("--role", choices=("manager", "worker"))
    p.add_argument("--label-add", action="append", metavar="K=V")
    p.add_argument("--label-rm", action="append", default=[], metavar="K")
    p.add_argument("ref", metavar="NODE", help="name, ID prefix, or 'leader'")
    p.set_defaults(func=cmd_node_update)

    for verb, what in (("promote", "make nodes managers"), ("demote", "make managers workers")):
        p = _common(ns, verb, what)
        p.add_argument("refs", nargs="+", metavar="NODE")
        p.set_defaults(func=cmd_node_role)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the docker verbs to the top-level parser."""
    _register_service(sub)
    _register_named(sub, "secret")
    _register_named(sub, "config")
    _register_node(sub)
