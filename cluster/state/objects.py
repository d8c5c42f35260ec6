"""The Swarm object kinds, shaped the way the Docker Engine API shapes them.

Objects are plain dicts whose keys are the Engine API's (``ID``,
``Version.Index``, ``Spec.Name`` ...).  Plain dicts because they travel as
msgpack inside Raft commands and snapshots, and because a reader who knows
``docker service inspect`` recognises them at once.  The one difference from
the wire JSON is that byte fields (a config's ``Spec.Data``) are ``bytes``
here; `render` turns them into base64 for the HTTP API.

A secret's object holds *no* data at all: its AES-GCM ciphertext lives beside
it in the store (see `cluster.security.crypto`), so an object can be handed to the API
without any chance of leaking it.

Validation lives here too, as pure functions that the store calls while
applying a command and that the proposer may call early to fail fast.  They
raise `cluster.state.errors.InvalidArgument` with Docker's wording where Docker has
one.
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterator
from typing import Any

from cluster.state.errors import InvalidArgument

Obj = dict[str, Any]

NODE, SERVICE, TASK, SECRET, CONFIG, CLUSTER = (
    "node",
    "service",
    "task",
    "secret",
    "config",
    "cluster",
)
#: Every kind the store keeps, in the order snapshots list them.
KINDS: tuple[str, ...] = (CLUSTER, NODE, SECRET, CONFIG, SERVICE, TASK)
#: Kinds whose ``Spec.Name`` is unique within the kind.
NAMED_KINDS: tuple[str, ...] = (SERVICE, SECRET, CONFIG)

NODE_ROLES = ("manager", "worker")
NODE_AVAILABILITY = ("active", "pause", "drain")
NODE_STATES = ("unknown", "down", "ready", "disconnected")
REACHABILITY = ("unknown", "unreachable", "reachable")

#: Swarm task states in the order a task moves through them.  A task never
#: goes back: the store refuses a status update to an earlier state, which is
#: what keeps a slow agent's stale report from resurrecting a dead task.
TASK_STATES: tuple[str, ...] = (
    "new",
    "allocated",
    "pending",
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
    "running",
    "complete",
    "shutdown",
    "failed",
    "rejected",
    "remove",
    "orphaned",
)
TASK_STATE_RANK = {state: rank for rank, state in enumerate(TASK_STATES)}
TERMINAL_TASK_STATES = frozenset(TASK_STATES[TASK_STATE_RANK["complete"] :])

#: The states of a service's rolling update (``UpdateStatus.State``), as Docker names them.
UPDATE_STATES = (
    "updating",
    "paused",
    "completed",
    "rollback_started",
    "rollback_paused",
    "rollback_completed",
)

PROTOCOLS = ("tcp", "udp", "sctp")
PUBLISH_MODES = ("ingress", "host")
FAILURE_ACTIONS = ("pause", "continue", "rollback")
UPDATE_ORDERS = ("stop-first", "start-first")

#: Docker's limit for a secret's or a config's data: 500 KiB, exclusive.
MAX_SECRET_SIZE = 500 * 1024
MAX_CONFIG_SIZE = 500 * 1024

#: Where swarmkit picks a published port when an ingress port names none.
DYNAMIC_PORT_RANGE = (30000, 32767)

_SECRET_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9._-]{0,62}[a-zA-Z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
_INVALID_SECRET_NAME = (
    "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, "
    "and the start and end character must be [a-zA-Z0-9]"
)


# -- small checks ------------------------------------------------------------


def _expect(cond: bool, desc: str) -> None:
    if not cond:
        raise InvalidArgument(desc)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_map(value: Any, what: str) -> dict[str, str]:
    """Labels and the like: a map of strings to strings (absent means empty)."""
    if value is None:
        return {}
    _expect(isinstance(value, dict), f"{what} must be a map of strings")
    for k, v in value.items():
        _expect(isinstance(k, str) and isinstance(v, str), f"{what} must be a map of strings")
    return dict(value)


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    _expect(isinstance(value, list), f"{what} must be a list of strings")
    _expect(all(isinstance(v, str) for v in value), f"{what} must be a list of strings")
    return list(value)


def validate_secret_name(name: Any) -> str:
    """Docker's rule for secret and config names (also used for configs)."""
    _expect(isinstance(name, str) and name != "", "name must be provided")
    _expect(bool(_SECRET_NAME.match(name)), _INVALID_SECRET_NAME)
    return name


def validate_service_name(name: Any) -> str:
    """A service name becomes a DNS name on the overlay, hence the DNS rule."""
    _expect(isinstance(name, str) and name != "", "meta: name must be provided")
    _expect(bool(_DNS_LABEL.match(name)), "name must be valid as a DNS name component")
    return name


def check_payload(kind: str, size: int) -> None:
    """Refuse empty data and data of 500 KiB or more, as Docker does."""
    limit = MAX_SECRET_SIZE if kind == SECRET else MAX_CONFIG_SIZE
    _expect(
        0 < size < limit,
        f"{kind} data must be larger than 0 and less than {limit} bytes",
    )


# -- specs -------------------------------------------------------------------


def normalize_secret_spec(spec: Any, kind: str = SECRET) -> Obj:
    """The name/labels part of a secret or config spec, checked and copied."""
    _expect(isinstance(spec, dict), f"{kind} spec must be a map")
    return {
        "Name": validate_secret_name(spec.get("Name")),
        "Labels": _str_map(spec.get("Labels"), "Labels"),
    }


def _normalize_refs(refs: Any, kind: str) -> list[Obj]:
    """Secret or config references of a container spec."""
    if refs is None:
        return []
    title = kind.capitalize()
    _expect(isinstance(refs, list), f"{title}s must be a list")
    out = []
    for ref in refs:
        _expect(isinstance(ref, dict), f"{title}s must be a list of references")
        ref_id, ref_name = ref.get(f"{title}ID"), ref.get(f"{title}Name")
        _expect(isinstance(ref_id, str) and ref_id != "", f"{kind} reference must name an ID")
        _expect(isinstance(ref_name, str) and ref_name != "", f"{kind} reference must name a name")
        item = copy.deepcopy(ref)
        target = item.get("File")
        if target is None:
            item["File"] = {"Name": ref_name, "UID": "0", "GID": "0", "Mode": 0o444}
        else:
            _expect(isinstance(target, dict), f"{kind} reference File must be a map")
            _expect(isinstance(target.get("Name", ref_name), str), "File.Name must be a string")
            item["File"] = {"Name": ref_name, "UID": "0", "GID": "0", "Mode": 0o444, **target}
        out.append(item)
    return out


def _normalize_ports(ports: Any) -> list[Obj]:
    if ports is None:
        return []
    _expect(isinstance(ports, list), "EndpointSpec.Ports must be a list")
    out, seen = [], set()
    for port in ports:
        _expect(isinstance(port, dict), "EndpointSpec.Ports must be a list of maps")
        p = {
            "Protocol": port.get("Protocol", "tcp"),
            "TargetPort": port.get("TargetPort"),
            "PublishedPort": port.get("PublishedPort", 0),
            "PublishMode": port.get("PublishMode", "ingress"),
        }
        if "Name" in port:
            p["Name"] = port["Name"]
        _expect(p["Protocol"] in PROTOCOLS, f"invalid protocol {p['Protocol']!r}")
        _expect(p["PublishMode"] in PUBLISH_MODES, f"invalid publish mode {p['PublishMode']!r}")
        for field in ("TargetPort", "PublishedPort"):
            _expect(_is_int(p[field]) and 0 <= p[field] <= 65535, f"invalid {field}")
        _expect(p["TargetPort"] > 0, "TargetPort must be provided")
        if p["PublishedPort"]:
            key = (p["PublishedPort"], p["Protocol"])
            _expect(key not in seen, "duplicate published ports provided")
            seen.add(key)
        out.append(p)
    return out


def _normalize_update_config(cfg: Any, what: str) -> Obj:
    if cfg is None:
        cfg = {}
    _expect(isinstance(cfg, dict), f"{what} must be a map")
    out = {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
        **cfg,
    }
    _expect(_is_int(out["Parallelism"]) and out["Parallelism"] >= 0, f"{what}: bad Parallelism")
    _expect(_is_int(out.get("Delay", 0)) and out.get("Delay", 0) >= 0, f"{what}: bad Delay")
    _expect(_is_int(out["Monitor"]) and out["Monitor"] >= 0, f"{what}: bad Monitor")
    _expect(out["FailureAction"] in FAILURE_ACTIONS, f"{what}: bad FailureAction")
    _expect(out["Order"] in UPDATE_ORDERS, f"{what}: bad Order")
    return out


def normalize_service_spec(spec: Any) -> Obj:
    """Check a ServiceSpec and fill the defaults Docker fills.

    Pure and deterministic, so it may run inside `Store.apply`: every replica
    turns the same submitted spec into the same stored spec.
    """
    _expect(isinstance(spec, dict), "service spec must be a map")
    out = copy.deepcopy(spec)
    validate_service_name(out.get("Name"))
    out["Labels"] = _str_map(out.get("Labels"), "Labels")

    mode = out.get("Mode") or {"Replicated": {"Replicas": 1}}
    _expect(isinstance(mode, dict), "Mode must be a map")
    _expect(
        len(mode) == 1 and next(iter(mode)) in ("Replicated", "Global"),
        "service mode must be either Replicated or Global",
    )
    if "Replicated" in mode:
        rep = mode["Replicated"] or {}
        _expect(isinstance(rep, dict), "Mode.Replicated must be a map")
        replicas = rep.get("Replicas", 1)
        _expect(_is_int(replicas) and replicas >= 0, "Replicas must be a non-negative integer")
        mode = {"Replicated": {**rep, "Replicas": replicas}}
    else:
        _expect(isinstance(mode["Global"] or {}, dict), "Mode.Global must be a map")
        mode = {"Global": mode["Global"] or {}}
    out["Mode"] = mode

    template = out.get("TaskTemplate")
    _expect(isinstance(template, dict), "TaskTemplate must be provided")
    cs = template.get("ContainerSpec")
    _expect(isinstance(cs, dict), "ContainerSpec: missing in service spec")
    image = cs.get("Image")
    _expect(
        isinstance(image, str) and image != "", "ContainerSpec: image reference must be provided"
    )
    for field in ("Command", "Args", "Env"):
        if field in cs:
            cs[field] = _str_list(cs[field], f"ContainerSpec.{field}")
    if "Labels" in cs:
        cs["Labels"] = _str_map(cs["Labels"], "ContainerSpec.Labels")
    for kind in (SECRET, CONFIG):
        field = f"{kind.capitalize()}s"
        if field in cs:
            cs[field] = _normalize_refs(cs[field], kind)

    endpoint = out.get("EndpointSpec") or {}
    _expect(isinstance(endpoint, dict), "EndpointSpec must be a map")
    out["EndpointSpec"] = {
        "Mode": endpoint.get("Mode", "vip"),
        "Ports": _normalize_ports(endpoint.get("Ports")),
    }
    _expect(
        out["EndpointSpec"]["Mode"] in ("vip", "dnsrr"), "EndpointSpec.Mode must be vip or dnsrr"
    )
    out["UpdateConfig"] = _normalize_update_config(out.get("UpdateConfig"), "UpdateConfig")
    if "RollbackConfig" in out:
        out["RollbackConfig"] = _normalize_update_config(out["RollbackConfig"], "RollbackConfig")
    return out


def references(spec: Obj, kind: str) -> Iterator[Obj]:
    """The secret (or config) references of a service spec, if any."""
    cs = spec.get("TaskTemplate", {}).get("ContainerSpec", {})
    yield from cs.get(f"{kind.capitalize()}s", [])


def is_global(spec: Obj) -> bool:
    return "Global" in spec.get("Mode", {})


def replicas(spec: Obj) -> int:
    """Desired replica count; a global service has no fixed count (``0``)."""
    return spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 0)


def normalize_node_spec(spec: Any) -> Obj:
    """A NodeSpec: role and availability from Docker's fixed vocabularies."""
    _expect(isinstance(spec, dict), "node spec must be a map")
    out = {
        "Labels": _str_map(spec.get("Labels"), "Labels"),
        "Role": spec.get("Role", "worker"),
        "Availability": spec.get("Availability", "active"),
    }
    if spec.get("Name"):
        _expect(isinstance(spec["Name"], str), "Name must be a string")
        out["Name"] = spec["Name"]
    _expect(out["Role"] in NODE_ROLES, f"invalid role {out['Role']!r}")
    _expect(
        out["Availability"] in NODE_AVAILABILITY, f"invalid availability {out['Availability']!r}"
    )
    return out


def default_cluster_spec() -> Obj:
    """The settings `docker swarm init` starts with, in Engine API units (ns)."""
    return {
        "Name": "default",
        "Labels": {},
        "Orchestration": {"TaskHistoryRetentionLimit": 5},
        "Raft": {
            "SnapshotInterval": 10000,
            "KeepOldSnapshots": 0,
            "LogEntriesForSlowFollowers": 500,
            "ElectionTick": 10,
            "HeartbeatTick": 1,
        },
        "Dispatcher": {"HeartbeatPeriod": 5_000_000_000},
        "CAConfig": {"NodeCertExpiry": 7_776_000_000_000_000},
        "TaskDefaults": {},
        "EncryptionConfig": {"AutoLockManagers": False},
    }


# -- constructors ------------------------------------------------------------


def meta(obj_id: str, index: int, at: str) -> Obj:
    """The fields every object starts with."""
    return {"ID": obj_id, "Version": {"Index": index}, "CreatedAt": at, "UpdatedAt": at}


def touch(obj: Obj, index: int, at: str) -> None:
    """Record a change: the version becomes the Raft index that made it."""
    obj["Version"] = {"Index": index}
    obj["UpdatedAt"] = at


def task_is_live(task: Obj) -> bool:
    """Meant to run and not yet ended: the task that fills its slot (or node).

    The control loops count only live tasks, so a failed task, or one told
    to shut down, leaves its slot open for a replacement.
    """
    running = TASK_STATE_RANK["running"]
    desired = TASK_STATE_RANK.get(task.get("DesiredState", ""), running + 1)
    state = TASK_STATE_RANK.get(task.get("Status", {}).get("State", ""), running + 1)
    return desired <= running and state <= running


def task_name(service: Obj | None, task: Obj) -> str:
    """``web.3`` for a replicated slot, ``web.<node id>`` for a global task."""
    base = service["Spec"]["Name"] if service else task["ServiceID"]
    return f"{base}.{task['Slot']}" if task.get("Slot") else f"{base}.{task.get('NodeID', '')}"


def render(obj: Obj) -> Obj:
    """A JSON-ready deep copy: bytes become base64 text, as the Engine API sends them."""

    def conv(value: Any) -> Any:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        if isinstance(value, dict):
            return {k: conv(v) for k, v in value.items()}
        if isinstance(value, list):
            return [conv(v) for v in value]
        return value

    return conv(obj)
