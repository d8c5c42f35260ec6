"""One handler per command op: the rules of the Swarm state machine.

`HANDLERS` maps an op name (``"service.create"``) to a function
``handler(tx, args) -> value``.  A handler checks its arguments, checks the
rules against the current state, and writes through the `Txn`; any rule it
breaks is raised as a `StoreError`, which `Store.apply` turns into the
entry's result after rolling the transaction back.  Handlers are pure: no
clock (``at`` comes in the command), no randomness (IDs come in the
command), no I/O.

The rules, with Docker's wording where Docker has one:

* every change sets ``Version.Index`` to the entry's index; an update names
  the version it read, and a stale one is refused (`VersionConflict`);
* services, secrets and configs have unique names within their kind;
* a secret or config referenced by a service cannot be removed, and neither
  can change in place except for its labels;
* secret and config data must be under 500 KiB (secrets are measured through
  their ciphertext: the store never sees their plaintext);
* a task's state and desired state only move forward;
* a manager must be demoted before removal, and the last one cannot be.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from cluster.security import crypto
from cluster.state import objects as o
from cluster.state.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unimplemented,
    VersionConflict,
)
from cluster.state.txn import Txn

if TYPE_CHECKING:
    from collections.abc import Callable

_ABSENT = object()


def _arg(
    args: dict[str, Any], name: str, types: type | tuple[type, ...], default: Any = _ABSENT
) -> Any:
    """One typed argument of a command; a missing or mistyped one is `InvalidArgument`."""
    value = args.get(name, _ABSENT)
    if value is _ABSENT or (value is None and default is not _ABSENT):
        if default is _ABSENT:
            raise InvalidArgument(f"malformed command: missing argument {name!r}")
        return default
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise InvalidArgument(f"malformed command: argument {name!r} has the wrong type")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _existing(tx: Txn, kind: str, obj_id: str) -> o.Obj:
    """A private copy of a stored object, ready to be changed and put back."""
    obj = tx.get(kind, obj_id)
    if obj is None:
        raise NotFound(f"{kind} {obj_id} not found")
    return copy.deepcopy(obj)


def _check_version(obj: o.Obj, args: dict[str, Any], required: bool = True) -> None:
    """Compare-and-set: the caller's version must be the object's current one."""
    version = _arg(args, "version", int) if required else _arg(args, "version", int, None)
    if version is not None and version != obj["Version"]["Index"]:
        raise VersionConflict()


def _check_new_id(tx: Txn, kind: str, obj_id: str) -> None:
    if not obj_id:
        raise InvalidArgument("malformed command: empty ID")
    if tx.get(kind, obj_id) is not None:
        raise AlreadyExists(f"{kind} {obj_id} already exists")


def _by_name(tx: Txn, kind: str, name: str) -> o.Obj | None:
    return next((x for x in tx.named(kind, name) if x["Spec"]["Name"] == name), None)


def _removed(tx: Txn, kind: str, obj_id: str) -> dict[str, str]:
    tx.delete(kind, obj_id)
    return {"ID": obj_id}


# -- cluster and keyring -----------------------------------------------------


def cluster_init(tx: Txn, args: dict[str, Any]) -> o.Obj:
    if any(True for _ in tx.rows(o.CLUSTER)):
        raise FailedPrecondition("This node is already part of a swarm.")
    obj_id, at = _arg(args, "id", str), _arg(args, "at", str)
    spec = {**o.default_cluster_spec(), **_arg(args, "spec", dict, {})}
    tokens = _arg(args, "join_tokens", dict)
    if not all(isinstance(tokens.get(k), str) for k in ("Worker", "Manager")):
        raise InvalidArgument("malformed command: join_tokens needs Worker and Manager")
    cluster = {
        **o.meta(obj_id, tx.index, at),
        "Spec": spec,
        "JoinTokens": {"Worker": tokens["Worker"], "Manager": tokens["Manager"]},
        "RootRotationInProgress": False,
        "DataPathPort": 4789,
        "DefaultAddrPool": ["10.0.0.0/8"],
        "SubnetSize": 24,
    }
    return tx.put(o.CLUSTER, obj_id, cluster)


def cluster_update(tx: Txn, args: dict[str, Any]) -> o.Obj:
    current = next(iter(tx.rows(o.CLUSTER)), None)
    if current is None:
        raise FailedPrecondition("This node is not a swarm manager.")
    cluster = copy.deepcopy(current)
    _check_version(cluster, args)
    spec = _arg(args, "spec", dict, None)
    if spec is not None:
        cluster["Spec"] = {**o.default_cluster_spec(), **spec}
    tokens = _arg(args, "join_tokens", dict, None)
    if tokens is not None:
        for role in ("Worker", "Manager"):
            if isinstance(tokens.get(role), str):
                cluster["JoinTokens"][role] = tokens[role]
    o.touch(cluster, tx.index, _arg(args, "at", str))
    return tx.put(o.CLUSTER, cluster["ID"], cluster)


#: The row of the ``sealed`` table that holds the root CA's key (not a secret
#: ID: those are 25 base36 digits).
ROOT_CA_KEY = "root-ca"
#: During a root rotation: the row of the next root's key.
NEXT_ROOT_CA_KEY = "root-ca-next"

_SEALED_FIELDS = ("Alg", "KeyID", "Nonce", "Ciphertext")


def _sealed_arg(args: dict[str, Any]) -> dict[str, Any]:
    sealed = _arg(args, "sealed", dict)
    try:
        crypto.check_sealed(sealed)
    except ValueError as e:
        raise InvalidArgument(f"malformed command: {e}") from None
    return {k: sealed[k] for k in _SEALED_FIELDS}


def cluster_root_ca(tx: Txn, args: dict[str, Any]) -> dict[str, Any]:
    """Store the root CA: the certificate in ``TLSInfo.TrustRoot`` (Docker's place
    for it, shown by ``GET /swarm``), the key sealed like a secret's data.

    Also the last step of a root rotation: the new root becomes the root, and
    the rotation's state and the next key's row are dropped.
    """
    clusters = list(tx.rows(o.CLUSTER))
    if not clusters:
        raise FailedPrecondition("the swarm is not initialised")
    cert, sealed = _arg(args, "cert", str), _sealed_arg(args)
    cluster = copy.deepcopy(clusters[0])
    cluster["TLSInfo"] = {"TrustRoot": cert}
    cluster.pop("RootRotation", None)
    cluster["RootRotationInProgress"] = False
    o.touch(cluster, tx.index, _arg(args, "at", str))
    tx.put(o.CLUSTER, cluster["ID"], cluster)
    tx.put("sealed", ROOT_CA_KEY, sealed)
    tx.delete("sealed", NEXT_ROOT_CA_KEY)
    return {"ID": cluster["ID"]}


def cluster_root_rotation(tx: Txn, args: dict[str, Any]) -> dict[str, Any]:
    """Start a root rotation (``swarm ca --rotate``): the next root's certificate,
    the same certified by the current root (the bridge), its digest, and its
    key sealed like the root's (`cluster.manager.rotation`)."""
    clusters = list(tx.rows(o.CLUSTER))
    if not clusters or not clusters[0].get("TLSInfo", {}).get("TrustRoot"):
        raise FailedPrecondition("this swarm has no root CA to rotate")
    cluster = copy.deepcopy(clusters[0])
    if cluster.get("RootRotation"):
        raise FailedPrecondition("a root CA rotation is already in progress")
    cluster["RootRotation"] = {
        "CACert": _arg(args, "cert", str),
        "CrossSignedCACert": _arg(args, "cross", str),
        "Digest": _arg(args, "digest", str),
    }
    cluster["RootRotationInProgress"] = True
    o.touch(cluster, tx.index, _arg(args, "at", str))
    tx.put(o.CLUSTER, cluster["ID"], cluster)
    tx.put("sealed", NEXT_ROOT_CA_KEY, _sealed_arg(args))
    return {"ID": cluster["ID"]}


def node_certificate(tx: Txn, args: dict[str, Any]) -> o.Obj:
    """The leader signed a node a certificate: ``Description.TLSInfo.CertIssuerDigest``
    names the root that issued it (a rotation counts the nodes on the new root)."""
    node = _existing(tx, o.NODE, _arg(args, "id", str))
    tls_info = dict(node["Description"].get("TLSInfo") or {})
    tls_info["CertIssuerDigest"] = _arg(args, "issuer", str)
    node["Description"]["TLSInfo"] = tls_info
    o.touch(node, tx.index, _arg(args, "at", str))
    return tx.put(o.NODE, node["ID"], node)


def keyring_put(tx: Txn, args: dict[str, Any]) -> dict[str, Any]:
    """Store a wrapped DEK (new, or rewrapped under a new KEK)."""
    key_id, wrapped = _arg(args, "key_id", str), _arg(args, "wrapped", bytes)
    row = {
        "KeyID": key_id,
        "Wrapped": wrapped,
        "Index": tx.index,
        "UpdatedAt": _arg(args, "at", str),
    }
    tx.put("keyring", key_id, row)
    return {"KeyID": key_id, "Index": tx.index}


# -- nodes ---------------------------------------------------------------------


def _managers(tx: Txn) -> list[o.Obj]:
    return [n for n in tx.rows(o.NODE) if n["Spec"]["Role"] == "manager"]


def node_create(tx: Txn, args: dict[str, Any]) -> o.Obj:
    obj_id, at = _arg(args, "id", str), _arg(args, "at", str)
    _check_new_id(tx, o.NODE, obj_id)
    spec = o.normalize_node_spec(_arg(args, "spec", dict, {}))
    description = _arg(args, "description", dict, {})
    hostname = _arg(args, "hostname", str)
    state = _arg(args, "state", str, "ready")
    if state not in o.NODE_STATES:
        raise InvalidArgument(f"invalid node state {state!r}")
    node = {
        **o.meta(obj_id, tx.index, at),
        "Spec": spec,
        "Description": {**copy.deepcopy(description), "Hostname": hostname},
        "Status": {
            "State": state,
            "Addr": _arg(args, "addr", str, "127.0.0.1"),
            "Timestamp": at,
        },
    }
    if spec["Role"] == "manager":
        node["ManagerStatus"] = {
            "Leader": False,
            "Reachability": "reachable",
            "Addr": _arg(args, "manager_addr", str, ""),
        }
    return tx.put(o.NODE, obj_id, node)


def node_update(tx: Txn, args: dict[str, Any]) -> o.Obj:
    """``docker node update`` / promote / demote: replace the NodeSpec (CAS)."""
    node = _existing(tx, o.NODE, _arg(args, "id", str))
    _check_version(node, args)
    spec = o.normalize_node_spec(_arg(args, "spec", dict))
    if node["Spec"]["Role"] == "manager" and spec["Role"] == "worker" and len(_managers(tx)) == 1:
        raise FailedPrecondition("attempting to demote the last manager of the swarm")
    node["Spec"] = spec
    o.touch(node, tx.index, _arg(args, "at", str))
    return tx.put(o.NODE, node["ID"], node)


def node_status(tx: Txn, args: dict[str, Any]) -> o.Obj:
    """What the system observed about a node: up/down, its address, its Raft role.

    ``manager`` replaces ManagerStatus (``None`` drops it after a demotion);
    the version check is optional because the reporter is the system, not a
    user editing a spec.
    """
    node = _existing(tx, o.NODE, _arg(args, "id", str))
    _check_version(node, args, required=False)
    state = _arg(args, "state", str, None)
    if state is not None:
        if state not in o.NODE_STATES:
            raise InvalidArgument(f"invalid node state {state!r}")
        if state != node["Status"]["State"]:
            # When the state last *changed*: the orchestrator measures a down
            # node's grace period from here, so a repeated "down" report must
            # not move it.
            node["Status"]["Timestamp"] = _arg(args, "at", str)
        node["Status"]["State"] = state
    for field, key in (("addr", "Addr"), ("message", "Message")):
        value = _arg(args, field, str, None)
        if value is not None:
            node["Status"][key] = value
    if "manager" in args:
        manager = args["manager"]
        if manager is None:
            node.pop("ManagerStatus", None)
        else:
            ms = {
                "Leader": False,
                "Reachability": "unknown",
                "Addr": "",
                **_arg(args, "manager", dict),
            }
            if ms["Reachability"] not in o.REACHABILITY or not isinstance(ms["Leader"], bool):
                raise InvalidArgument("malformed command: bad manager status")
            node["ManagerStatus"] = ms
    o.touch(node, tx.index, _arg(args, "at", str))
    return tx.put(o.NODE, node["ID"], node)


def node_remove(tx: Txn, args: dict[str, Any]) -> dict[str, str]:
    node = _existing(tx, o.NODE, _arg(args, "id", str))
    if node["Spec"]["Role"] == "manager":
        raise FailedPrecondition(
            f"node {node['ID']} is a cluster manager and is a member of the raft cluster. "
            "It must be demoted to worker before removal"
        )
    if node["Status"]["State"] != "down" and not _arg(args, "force", bool, False):
        raise FailedPrecondition(f"node {node['ID']} is not down and can't be removed")
    return _removed(tx, o.NODE, node["ID"])


# -- services ------------------------------------------------------------------


def _check_refs(tx: Txn, spec: o.Obj) -> None:
    """Every secret and config a service names must exist, under that name."""
    for kind in (o.SECRET, o.CONFIG):
        title = kind.capitalize()
        missing = []
        for ref in o.references(spec, kind):
            target = tx.get(kind, ref[f"{title}ID"])
            if target is None:
                missing.append(ref[f"{title}Name"])
            elif target["Spec"]["Name"] != ref[f"{title}Name"]:
                raise InvalidArgument(
                    f"{kind} reference with mismatched name: {ref[f'{title}Name']}"
                )
        if missing:
            noun = kind if len(missing) == 1 else f"{kind}s"
            raise InvalidArgument(f"{noun} not found: {', '.join(missing)}")


def _resolve_ports(tx: Txn, service_id: str, spec: o.Obj, old: o.Obj | None) -> list[o.Obj]:
    """The endpoint's ports: ingress conflicts refused, dynamic ports picked.

    An ingress port is cluster-wide, so two services cannot publish the same
    one.  One asked for with PublishedPort 0 gets the lowest free port of
    30000-32767 (deterministic, so every replica picks the same), or keeps
    the one it had before an update.
    """
    taken: dict[tuple[int, str], o.Obj] = {}
    for key, services in tx.ingress_ports().items():  # an index: not a scan of every service
        others = [svc for svc in services if svc["ID"] != service_id]
        if others:
            taken[key] = others[-1]
    previous = {
        (p["TargetPort"], p["Protocol"]): p["PublishedPort"]
        for p in (old or {}).get("Endpoint", {}).get("Ports", [])
        if p["PublishMode"] == "ingress"
    }
    ports = copy.deepcopy(spec["EndpointSpec"]["Ports"])
    for p in ports:
        key = (p["PublishedPort"], p["Protocol"])
        if p["PublishMode"] == "ingress" and p["PublishedPort"] and key in taken:
            other = taken[key]
            raise InvalidArgument(
                f"port '{p['PublishedPort']}' is already in use by service "
                f"'{other['Spec']['Name']}' ({other['ID']}) as an ingress port"
            )
    used = set(taken) | {(p["PublishedPort"], p["Protocol"]) for p in ports if p["PublishedPort"]}
    for p in ports:
        if p["PublishMode"] != "ingress" or p["PublishedPort"]:
            continue
        keep = previous.get((p["TargetPort"], p["Protocol"]))
        if keep and (keep, p["Protocol"]) not in used:
            candidates: Any = [keep]
        else:
            candidates = range(o.DYNAMIC_PORT_RANGE[0], o.DYNAMIC_PORT_RANGE[1] + 1)
        port = next((c for c in candidates if (c, p["Protocol"]) not in used), None)
        if port is None:
            raise FailedPrecondition("no free port left in the dynamic port range")
        p["PublishedPort"] = port
        used.add((port, p["Protocol"]))
    return ports


def service_create(tx: Txn, args: dict[str, Any]) -> o.Obj:
    obj_id, at = _arg(args, "id", str), _arg(args, "at", str)
    spec = o.normalize_service_spec(_arg(args, "spec", dict))
    _check_new_id(tx, o.SERVICE, obj_id)
    if _by_name(tx, o.SERVICE, spec["Name"]) is not None:
        raise AlreadyExists(
            f"name conflicts with an existing object: service {spec['Name']} already exists"
        )
    _check_refs(tx, spec)
    ports = _resolve_ports(tx, obj_id, spec, None)
    service = {
        **o.meta(obj_id, tx.index, at),
        "Spec": spec,
        "Endpoint": {"Spec": copy.deepcopy(spec["EndpointSpec"]), "Ports": ports, "VirtualIPs": []},
    }
    return tx.put(o.SERVICE, obj_id, service)


def service_update(tx: Txn, args: dict[str, Any]) -> o.Obj:
    """``docker service update`` / scale / rollback: a new spec, CAS on the version."""
    service = _existing(tx, o.SERVICE, _arg(args, "id", str))
    _check_version(service, args)
    spec = o.normalize_service_spec(_arg(args, "spec", dict))
    if spec["Name"] != service["Spec"]["Name"]:
        raise Unimplemented("renaming services is not supported")
    if o.is_global(spec) != o.is_global(service["Spec"]):
        raise Unimplemented("service mode change is not allowed")
    _check_refs(tx, spec)
    ports = _resolve_ports(tx, service["ID"], spec, service)
    service["PreviousSpec"] = service["Spec"]
    service["Spec"] = spec
    # A new spec starts a new rollout, as in swarmkit: the updater sees no
    # status and begins afresh (this is also how a paused update resumes).
    service.pop("UpdateStatus", None)
    service["Endpoint"] = {
        **service["Endpoint"],
        "Spec": copy.deepcopy(spec["EndpointSpec"]),
        "Ports": ports,
    }
    o.touch(service, tx.index, _arg(args, "at", str))
    return tx.put(o.SERVICE, service["ID"], service)


def service_status(tx: Txn, args: dict[str, Any]) -> o.Obj:
    """The updater's record of a rolling update: ``UpdateStatus`` as Docker shows it.

    Separate from ``service.update`` because it is the system reporting
    progress, not a user changing the spec: it neither touches PreviousSpec
    nor resets the status.  The version check is optional, so the updater can
    guard against acting on a stale read.
    """
    service = _existing(tx, o.SERVICE, _arg(args, "id", str))
    _check_version(service, args, required=False)
    status = _arg(args, "update_status", dict)
    if status.get("State") not in o.UPDATE_STATES:
        raise InvalidArgument(f"invalid update state {status.get('State')!r}")
    fields = ("State", "StartedAt", "CompletedAt", "Message")
    if any(not isinstance(status.get(f, ""), str) for f in fields) or set(status) - set(fields):
        raise InvalidArgument("malformed command: bad update status")
    service["UpdateStatus"] = dict(status)
    o.touch(service, tx.index, _arg(args, "at", str))
    return tx.put(o.SERVICE, service["ID"], service)


def service_remove(tx: Txn, args: dict[str, Any]) -> dict[str, str]:
    """Remove the service; its tasks stay for the orchestrator to shut down."""
    service = _existing(tx, o.SERVICE, _arg(args, "id", str))
    return _removed(tx, o.SERVICE, service["ID"])


# -- tasks ---------------------------------------------------------------------


def _check_forward(what: str, old: str, new: str) -> None:
    if new not in o.TASK_STATE_RANK:
        raise InvalidArgument(f"invalid task state {new!r}")
    if o.TASK_STATE_RANK[new] < o.TASK_STATE_RANK[old]:
        raise FailedPrecondition(f"task {what} cannot go back from {old} to {new}")


def task_create(tx: Txn, args: dict[str, Any]) -> o.Obj:
    """A task for one slot of a replicated service or one node of a global one."""
    obj_id, at = _arg(args, "id", str), _arg(args, "at", str)
    _check_new_id(tx, o.TASK, obj_id)
    service = _existing(tx, o.SERVICE, _arg(args, "service_id", str))
    slot, node_id = _arg(args, "slot", int, None), _arg(args, "node_id", str, None)
    if o.is_global(service["Spec"]) and node_id is None:
        raise InvalidArgument("a task of a global service needs a node")
    if not o.is_global(service["Spec"]) and (slot is None or slot < 1):
        raise InvalidArgument("a task of a replicated service needs a slot >= 1")
    if node_id is not None and tx.get(o.NODE, node_id) is None:
        raise NotFound(f"node {node_id} not found")
    desired, state = _arg(args, "desired_state", str, "running"), _arg(args, "state", str, "new")
    _check_forward("desired state", "new", desired)
    _check_forward("state", "new", state)
    task = {
        **o.meta(obj_id, tx.index, at),
        "Labels": {},
        "Spec": copy.deepcopy(_arg(args, "spec", dict, service["Spec"]["TaskTemplate"])),
        "ServiceID": service["ID"],
        "Status": {
            "Timestamp": at,
            "State": state,
            "Message": _arg(args, "message", str, "created"),
        },
        "DesiredState": desired,
    }
    if slot is not None:
        task["Slot"] = slot
    if node_id is not None:
        task["NodeID"] = node_id
    return tx.put(o.TASK, obj_id, task)


def task_update(tx: Txn, args: dict[str, Any]) -> o.Obj:
    """The scheduler assigns a node, an agent reports a state, the orchestrator stops it."""
    task = _existing(tx, o.TASK, _arg(args, "id", str))
    _check_version(task, args, required=False)
    at = _arg(args, "at", str)
    changed = False
    node_id = _arg(args, "node_id", str, None)
    if node_id is not None and node_id != task.get("NodeID"):
        if task.get("NodeID"):
            raise FailedPrecondition(
                f"task {task['ID']} is already assigned to node {task['NodeID']}"
            )
        if tx.get(o.NODE, node_id) is None:
            raise NotFound(f"node {node_id} not found")
        task["NodeID"], changed = node_id, True
    desired = _arg(args, "desired_state", str, None)
    if desired is not None:
        _check_forward("desired state", task["DesiredState"], desired)
        task["DesiredState"], changed = desired, True
    state = _arg(args, "state", str, None)
    if state is not None:
        _check_forward("state", task["Status"]["State"], state)
        task["Status"] = {
            "Timestamp": at,
            "State": state,
            "Message": _arg(args, "message", str, ""),
        }
        err = _arg(args, "err", str, None)
        if err:
            task["Status"]["Err"] = err
        changed = True
    if not changed:
        raise InvalidArgument("malformed command: task.update changes nothing")
    o.touch(task, tx.index, at)
    return tx.put(o.TASK, task["ID"], task)


def task_remove(tx: Txn, args: dict[str, Any]) -> dict[str, str]:
    task = _existing(tx, o.TASK, _arg(args, "id", str))
    return _removed(tx, o.TASK, task["ID"])


# -- secrets and configs -------------------------------------------------------


def _create_named(tx: Txn, kind: str, args: dict[str, Any], spec: o.Obj) -> o.Obj:
    obj_id, at = _arg(args, "id", str), _arg(args, "at", str)
    _check_new_id(tx, kind, obj_id)
    if _by_name(tx, kind, spec["Name"]) is not None:
        raise AlreadyExists(f"{kind} {spec['Name']} already exists")
    return tx.put(kind, obj_id, {**o.meta(obj_id, tx.index, at), "Spec": spec})


def secret_create(tx: Txn, args: dict[str, Any]) -> o.Obj:
    """Store a secret whose data arrives already sealed by the proposer."""
    spec = o.normalize_secret_spec(_arg(args, "spec", dict))
    if "Data" in _arg(args, "spec", dict):
        raise InvalidArgument("malformed command: secret data must arrive sealed, not in the spec")
    sealed = _arg(args, "sealed", dict)
    try:
        size = crypto.check_sealed(sealed)
    except ValueError as exc:
        raise InvalidArgument(f"malformed command: {exc}") from None
    o.check_payload(o.SECRET, size)
    obj = _create_named(tx, o.SECRET, args, spec)
    tx.put("sealed", obj["ID"], {k: sealed[k] for k in ("Alg", "KeyID", "Nonce", "Ciphertext")})
    return obj


def config_create(tx: Txn, args: dict[str, Any]) -> o.Obj:
    """Store a config; unlike a secret, its data sits in the spec in plain."""
    raw = _arg(args, "spec", dict)
    spec = o.normalize_secret_spec(raw, o.CONFIG)
    data = raw.get("Data")
    if not isinstance(data, bytes):
        raise InvalidArgument("malformed command: config Data must be bytes")
    o.check_payload(o.CONFIG, len(data))
    spec["Data"] = data
    return _create_named(tx, o.CONFIG, args, spec)


def _update_labels(tx: Txn, kind: str, args: dict[str, Any]) -> o.Obj:
    """Secrets and configs are immutable except for their labels, as in Docker."""
    current = tx.get(kind, _arg(args, "id", str))  # read only: never changed in place
    if current is None:
        raise NotFound(f"{kind} {_arg(args, 'id', str)} not found")
    _check_version(current, args)
    raw = _arg(args, "spec", dict)
    spec = o.normalize_secret_spec(raw, kind)
    data_changed = (
        bool(raw.get("Data"))
        if kind == o.SECRET
        else raw.get("Data") not in (None, current["Spec"]["Data"])
    )
    if spec["Name"] != current["Spec"]["Name"] or data_changed:
        raise InvalidArgument("only updates to Labels are allowed")
    # A new object sharing the unchanged parts with the old one (stored values
    # are never changed in place, see `Txn`), not a deep copy of the old one:
    # deep copies were 10% of the leader's event loop under label updates.
    obj = {**current, "Spec": {**current["Spec"], "Labels": spec["Labels"]}}
    o.touch(obj, tx.index, _arg(args, "at", str))
    return tx.put(kind, obj["ID"], obj)


def _remove_unused(tx: Txn, kind: str, args: dict[str, Any]) -> dict[str, str]:
    obj = _existing(tx, kind, _arg(args, "id", str))
    ref_id = f"{kind.capitalize()}ID"
    users = sorted(
        s["Spec"]["Name"]
        for s in tx.rows(o.SERVICE)
        if any(r.get(ref_id) == obj["ID"] for r in o.references(s["Spec"], kind))
    )
    if users:
        noun = "service" if len(users) == 1 else "services"
        raise InvalidArgument(
            f"{kind} '{obj['Spec']['Name']}' is in use by the following {noun}: {', '.join(users)}"
        )
    if kind == o.SECRET:
        tx.delete("sealed", obj["ID"])
    return _removed(tx, kind, obj["ID"])


HANDLERS: dict[str, Callable[[Txn, dict[str, Any]], Any]] = {
    "cluster.init": cluster_init,
    "cluster.update": cluster_update,
    "keyring.put": keyring_put,
    "cluster.root_ca": cluster_root_ca,
    "cluster.root_rotation": cluster_root_rotation,
    "node.certificate": node_certificate,
    "node.create": node_create,
    "node.update": node_update,
    "node.status": node_status,
    "node.remove": node_remove,
    "service.create": service_create,
    "service.update": service_update,
    "service.status": service_status,
    "service.remove": service_remove,
    "task.create": task_create,
    "task.update": task_update,
    "task.remove": task_remove,
    "secret.create": secret_create,
    "secret.update": lambda tx, a: _update_labels(tx, o.SECRET, a),
    "secret.remove": lambda tx, a: _remove_unused(tx, o.SECRET, a),
    "config.create": config_create,
    "config.update": lambda tx, a: _update_labels(tx, o.CONFIG, a),
    "config.remove": lambda tx, a: _remove_unused(tx, o.CONFIG, a),
}
