"""The HTTP API's routes: Docker Engine API shapes over this manager's Raft.

Each write route checks the body (`cluster.api.schema`), chooses what must
be chosen outside the state machine (a new ID, the time, a secret's
encryption) and builds the command with `cluster.state.commands`, then commits it
with `api_common.write`.  Refusals come back from the store with Docker's
wording and status (`cluster.state.errors`).  A follower's write raises
`NotLeaderError`; the middleware in `cluster.api.server` forwards the original
request to the leader.

Each read route first passes the read barrier (`api_common.linearize`) and
then reads this manager's replica.  ``/info``, ``/_ping`` and
``/raft/status`` read only local facts: they must answer without a quorum,
since that is when people look at them.

Responses: created → 201 ``{"ID"}``; updated → 200 with the object as it is
now (its new ``Version.Index`` is what the next update must send); removed
→ 200 ``{"ID"}``.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from cluster.api.common import (
    ApiError,
    backend_of,
    bounded,
    linearize,
    lookup_fresh,
    query_bool,
    query_version,
    read_json,
    reply,
    task_report,
    task_reports,
    write,
    write_reports,
)
from cluster.api.schema import (
    common_match,
    named_spec,
    node_spec,
    parse_filters,
    service_spec,
    transfer_target,
)
from cluster.state import commands as c
from cluster.state import objects as o
from cluster.state.errors import Ambiguous, InvalidArgument, NotFound
from cluster.state.store import Store

routes = web.RouteTableDef()

#: The words `{id}` of a node also accepts besides an ID, a name or a prefix.
LEADER_ALIAS, SELF_ALIAS = "leader", "self"


def _now() -> str:
    return c.format_time(time.time())


def _build(builder: Any, *args: Any, **kwargs: Any) -> bytes:
    """Build a command from user input; a shape no check foresaw is still a 400."""
    try:
        return builder(*args, **kwargs)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ApiError(400, f"invalid spec ({type(exc).__name__})") from None


def _ref(request: web.Request) -> str:
    return request.match_info["id"]


# -- info --------------------------------------------------------------------


@routes.get("/_ping")
async def ping(request: web.Request) -> web.Response:
    """Docker's liveness probe: this process answers, nothing more."""
    return web.Response(text="OK")


@routes.get("/info")
async def info(request: web.Request) -> web.Response:
    """``docker info``'s Swarm section, from local facts only (works without quorum)."""
    backend = backend_of(request)
    store = backend.store
    facts = backend.info()
    raft = backend.raft_status()
    nodes = store.list(o.NODE)
    managers = [n for n in nodes if n["Spec"]["Role"] == "manager"]
    try:
        me = store.find_by_name(o.NODE, backend.name)
    except Ambiguous:
        me = None
    cluster = store.cluster()
    cluster_info: dict[str, Any] = {}
    if cluster is not None:
        spec = {
            **cluster["Spec"],
            "Raft": {**cluster["Spec"].get("Raft", {}), **facts.get("Raft", {})},
        }
        cluster_info = {k: cluster[k] for k in ("ID", "Version", "CreatedAt", "UpdatedAt")}
        cluster_info["Spec"] = spec
    elif "Raft" in facts:
        cluster_info = {"Spec": {"Raft": facts["Raft"]}}
    swarm = {
        "NodeID": me["ID"] if me else "",
        "NodeAddr": me["Status"].get("Addr", "") if me else "",
        "LocalNodeState": facts.get("LocalNodeState", "active"),
        "ControlAvailable": True,
        "Error": "",
        "RemoteManagers": [
            {"NodeID": n["ID"], "Addr": n.get("ManagerStatus", {}).get("Addr", "")}
            for n in managers
        ],
        "Nodes": facts.get("Nodes", len(nodes)),
        "Managers": facts.get("Managers", len(managers)),
        "Cluster": cluster_info,
        "RaftStatus": raft,
    }
    return reply({"Name": backend.name, "Swarm": swarm})


# -- nodes -------------------------------------------------------------------


def _leader_node(request: web.Request) -> o.Obj:
    """The node the word ``leader`` means: Raft's own view first, then the store's."""
    backend = backend_of(request)
    store = backend.store
    leader = backend.raft_status().get("leader")
    if isinstance(leader, str) and leader:
        try:
            return store.lookup(o.NODE, leader)
        except NotFound:
            pass
    flagged = [n for n in store.list(o.NODE) if n.get("ManagerStatus", {}).get("Leader")]
    if len(flagged) == 1:
        return flagged[0]
    raise NotFound("node leader not found: the swarm has no leader now")


async def _node(request: web.Request, *, after_barrier: bool) -> o.Obj:
    """Resolve a node reference: ID, hostname, ID prefix, ``leader`` or ``self``."""
    ref = _ref(request)
    if ref == LEADER_ALIAS:
        return _leader_node(request)
    if ref == SELF_ALIAS:
        ref = backend_of(request).name
    if after_barrier:
        return backend_of(request).store.lookup(o.NODE, ref)
    return await lookup_fresh(request, o.NODE, ref)


_NODE_FILTERS = ("id", "name", "label", "role", "availability")


@routes.get("/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    filters = parse_filters(request, _NODE_FILTERS)
    await linearize(request)

    def keep(n: o.Obj) -> bool:
        return (
            common_match(o.NODE, n, filters)
            and ("role" not in filters or n["Spec"]["Role"] in filters["role"])
            and (
                "availability" not in filters
                or n["Spec"]["Availability"] in filters["availability"]
            )
        )

    return reply(backend_of(request).store.list(o.NODE, keep))


@routes.get("/nodes/{id}")
async def inspect_node(request: web.Request) -> web.Response:
    await linearize(request)
    return reply(await _node(request, after_barrier=True))


@routes.post("/nodes/{id}/update")
async def update_node(request: web.Request) -> web.Response:
    """A NodeSpec: fields left out keep their current value (not Docker's replace).

    Docker replaces the whole spec, so a hand-written ``{"Availability":
    "drain"}`` would also demote a manager; here it only drains it.
    """
    version = query_version(request)
    changes = node_spec(await read_json(request))
    node = await _node(request, after_barrier=False)
    spec = {**node["Spec"], **changes}
    cmd = _build(c.update_node, node["ID"], version, spec, _now())
    return reply(await write(request, cmd))


@routes.delete("/nodes/{id}")
async def remove_node(request: web.Request) -> web.Response:
    force = query_bool(request, "force")
    node = await _node(request, after_barrier=False)
    return reply(await write(request, c.remove_node(node["ID"], force=force)))


# -- services ----------------------------------------------------------------


def _with_status(store: Store, service: o.Obj) -> o.Obj:
    """Docker's ``ServiceStatus`` (``?status=true``): running vs desired tasks.

    A new map around the stored service (which is frozen), from the task index.
    """
    tasks = store.tasks(service_id=service["ID"], desired_state="running")
    running = sum(1 for t in tasks if t["Status"]["State"] == "running")
    desired = len(tasks) if o.is_global(service["Spec"]) else o.replicas(service["Spec"])
    return {**service, "ServiceStatus": {"RunningTasks": running, "DesiredTasks": desired}}


_SERVICE_FILTERS = ("id", "name", "label", "mode")


@routes.get("/services")
async def list_services(request: web.Request) -> web.Response:
    filters = parse_filters(request, _SERVICE_FILTERS)
    status = query_bool(request, "status")
    await linearize(request)

    def keep(s: o.Obj) -> bool:
        mode = "global" if o.is_global(s["Spec"]) else "replicated"
        return common_match(o.SERVICE, s, filters) and (
            "mode" not in filters or mode in filters["mode"]
        )

    store = backend_of(request).store
    services = store.list(o.SERVICE, keep)
    if status:
        services = [_with_status(store, s) for s in services]
    return reply(services)


@routes.post("/services/create")
async def create_service(request: web.Request) -> web.Response:
    spec = service_spec(await read_json(request))
    cmd = _build(c.create_service, spec, c.new_id(), _now())
    created = await write(request, cmd)
    return reply({"ID": created["ID"]}, status=201)


@routes.get("/services/{id}")
async def inspect_service(request: web.Request) -> web.Response:
    status = query_bool(request, "status")
    await linearize(request)
    store = backend_of(request).store
    service = store.lookup(o.SERVICE, _ref(request))
    return reply(_with_status(store, service) if status else service)


@routes.post("/services/{id}/update")
async def update_service(request: web.Request) -> web.Response:
    """A whole new ServiceSpec, or ``?rollback=previous`` to go back to PreviousSpec."""
    version = query_version(request)
    rollback = request.query.get("rollback")
    if rollback not in (None, "", "previous"):
        raise ApiError(400, f"invalid rollback {rollback[:40]!r}: expected previous")
    body = await read_json(request, required=not rollback)
    service = await lookup_fresh(request, o.SERVICE, _ref(request))
    if rollback:
        if "PreviousSpec" not in service:
            raise InvalidArgument(f"service {service['ID']} does not have a previous spec")
        spec = service["PreviousSpec"]
    else:
        spec = service_spec(body or {})
    cmd = _build(c.update_service, service["ID"], version, spec, _now())
    return reply(await write(request, cmd))


@routes.delete("/services/{id}")
async def remove_service(request: web.Request) -> web.Response:
    service = await lookup_fresh(request, o.SERVICE, _ref(request))
    return reply(await write(request, c.remove_service(service["ID"])))


# -- tasks -------------------------------------------------------------------

_TASK_FILTERS = ("id", "name", "label", "service", "node", "desired-state")


def _resolve_ids(store: Store, kind: str, refs: list[str]) -> set[str]:
    """IDs of the objects the filter values name (ID, name or prefix); unknown ones match none."""
    ids = set()
    for ref in refs:
        try:
            ids.add(store.lookup(kind, ref)["ID"])
        except NotFound:
            continue
    return ids


def _candidate_tasks(store: Store, filters: dict[str, list[str]]) -> list[o.Obj]:
    """The tasks the indexed filters allow (service, node, desired state), by ID.

    ``service ps web`` reads web's tasks from the store's task index instead
    of scanning every task in the swarm; the other filters then look only at
    those.  Values within one filter are alternatives (OR), filters combine
    with AND, as in Docker.
    """
    picks: list[dict[str, o.Obj]] = []
    indexed = (
        ("service", "service_id", lambda refs: _resolve_ids(store, o.SERVICE, refs)),
        ("node", "node_id", lambda refs: _resolve_ids(store, o.NODE, refs)),
        ("desired-state", "desired_state", set),
    )
    for name, arg, values in indexed:
        if name in filters:
            pick: dict[str, o.Obj] = {}
            for value in values(filters[name]):
                pick.update((t["ID"], t) for t in store.tasks(**{arg: value}))
            picks.append(pick)
    if not picks:
        return store.list(o.TASK)
    smallest, *others = sorted(picks, key=len)
    return [smallest[k] for k in sorted(smallest) if all(k in other for other in others)]


@routes.get("/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    filters = parse_filters(request, _TASK_FILTERS)
    await linearize(request)
    store = backend_of(request).store
    services: dict[str, o.Obj | None] = {}

    def service_of(service_id: str) -> o.Obj | None:
        if service_id not in services:
            found = store.many(o.SERVICE, [service_id])
            services[service_id] = found[0] if found else None
        return services[service_id]

    def keep(t: o.Obj) -> bool:
        return (
            ("id" not in filters or any(t["ID"].startswith(v) for v in filters["id"]))
            and (
                "name" not in filters
                or any(
                    o.task_name(service_of(t["ServiceID"]), t).startswith(v)
                    for v in filters["name"]
                )
            )
            and common_match(o.TASK, t, {k: v for k, v in filters.items() if k == "label"})
        )

    return reply([t for t in _candidate_tasks(store, filters) if keep(t)])


@routes.get("/tasks/{id}")
async def inspect_task(request: web.Request) -> web.Response:
    await linearize(request)
    return reply(backend_of(request).store.lookup(o.TASK, _ref(request)))


@routes.post("/tasks/{id}/status")
async def report_task(request: web.Request) -> web.Response:
    """A node's agent reports its task's state (Swarm's dispatcher channel).

    Not part of the Engine API: it is how the simulated container runtime on
    each node tells the leader that a task is starting, running or failed.
    The store only lets states move forward.
    """
    body = await read_json(request)
    assert body is not None
    state, message, err = task_report(body)
    task = await lookup_fresh(request, o.TASK, _ref(request))
    cmd = _build(c.update_task, task["ID"], time.time(), state=state, message=message, err=err)
    return reply(await write(request, cmd))


@routes.post("/tasks/status")
async def report_tasks(request: web.Request) -> web.Response:
    """A round of an agent's reports, ``{"Reports": [{ID, State, Message?, Err?}]}``, one entry.

    How a manager's agent reports on a follower (the leader writes its own):
    one write per round instead of one per task.  Task IDs are exact (agents
    know them).  Answers ``{"Errors": [...]}``, one per report, null when applied.
    """
    body = await read_json(request)
    assert body is not None
    reports = task_reports(body)
    backend = backend_of(request)

    async def commit(command: bytes) -> Any:
        return await bounded(backend, "write", backend.write(command))

    return reply({"Errors": await write_reports(commit, reports, time.time())})


# -- secrets and configs -------------------------------------------------------

_NAMED_FILTERS = ("id", "name", "label")


def _public(kind: str, obj: o.Obj) -> o.Obj:
    """What the API may show: a secret never has data (the store keeps none in
    the object; dropping ``Spec.Data`` again is a second lock on the door)."""
    if kind == o.SECRET and "Data" in obj.get("Spec", {}):
        return {**obj, "Spec": {k: v for k, v in obj["Spec"].items() if k != "Data"}}
    return obj


def _add_named_routes(kind: str) -> None:
    """The same five routes for ``/secrets`` and ``/configs``."""
    base = f"/{kind}s"

    async def listing(request: web.Request) -> web.Response:
        filters = parse_filters(request, _NAMED_FILTERS)
        await linearize(request)
        found = backend_of(request).store.list(kind, lambda x: common_match(kind, x, filters))
        return reply([_public(kind, x) for x in found])

    async def create(request: web.Request) -> web.Response:
        spec, data = named_spec(await read_json(request))
        if kind == o.SECRET:
            # Seal here, at the proposer: the log only ever sees ciphertext.
            dek = backend_of(request).data_key()
            cmd = _build(c.create_secret, spec, data or b"", c.new_id(), _now(), dek)
        else:
            cmd = _build(c.create_config, spec, data or b"", c.new_id(), _now())
        created = await write(request, cmd)
        return reply({"ID": created["ID"]}, status=201)

    async def inspect(request: web.Request) -> web.Response:
        await linearize(request)
        return reply(_public(kind, backend_of(request).store.lookup(kind, _ref(request))))

    async def update(request: web.Request) -> web.Response:
        """Labels only, as in Docker; a missing Name means "the same name"."""
        version = query_version(request)
        spec, data = named_spec(await read_json(request))
        obj = await lookup_fresh(request, kind, _ref(request))
        spec.setdefault("Name", obj["Spec"]["Name"])
        if kind == o.SECRET:
            if data:
                raise InvalidArgument("only updates to Labels are allowed")
            cmd = _build(c.update_secret, obj["ID"], version, spec, _now())
        else:
            if data is not None:
                spec["Data"] = data
            cmd = _build(c.update_config, obj["ID"], version, spec, _now())
        return reply(_public(kind, await write(request, cmd)))

    async def remove(request: web.Request) -> web.Response:
        obj = await lookup_fresh(request, kind, _ref(request))
        remover = c.remove_secret if kind == o.SECRET else c.remove_config
        return reply(await write(request, remover(obj["ID"])))

    routes.get(base)(listing)
    routes.post(f"{base}/create")(create)
    routes.get(f"{base}/{{id}}")(inspect)
    routes.post(f"{base}/{{id}}/update")(update)
    routes.delete(f"{base}/{{id}}")(remove)


_add_named_routes(o.SECRET)
_add_named_routes(o.CONFIG)


# -- raft ----------------------------------------------------------------------


#: The fields docs/http-api.md promises in every ``/raft/status``, with the value a
#: manager that runs no Raft yet (locked by autolock, or still starting) has.
RAFT_STATUS_FIELDS: dict[str, Any] = {
    "role": "down",
    "term": 0,
    "leader": None,
    "voted_for": None,
    "commit_index": 0,
    "applied_index": 0,
    "last_log_index": 0,
    "last_log_term": 0,
    "snapshot_index": 0,
}


@routes.get("/raft/status")
async def raft_status(request: web.Request) -> web.Response:
    """This manager's own Raft state, without a barrier: it must work with no quorum.

    A manager's Raft ID is its name.  On the leader, ``peers`` holds each
    follower's ``match`` and ``next`` index (§5.3).
    """
    backend = backend_of(request)
    facts = {"name": backend.name, "id": backend.name, **RAFT_STATUS_FIELDS}
    return reply({**facts, **backend.raft_status()})


@routes.post("/raft/trace-log")
async def trace_log(request: web.Request) -> web.Response:
    """Write this manager's log (index, term per entry) into its trace now.

    The scenario runner calls it at key instants (before a fault, after an
    election, after heal) so the study note can draw the logs side by side;
    the line is written to the trace file before the answer.
    """
    node = getattr(backend_of(request), "node", None)
    if node is None or not hasattr(node, "trace_log"):
        raise ApiError(501, "this manager cannot trace its log")
    node.trace_log()
    # In the file before the answer: a scenario that kills this manager right
    # after (SIGKILL) must not lose the line its log panel is drawn from.
    writer = getattr(node, "trace", None)
    if writer is not None and hasattr(writer, "flush"):
        await writer.flush()
    return reply({"ok": True})


@routes.post("/raft/bench")
async def raft_bench(request: web.Request) -> web.Response:
    """Raw Raft proposals made inside the leader (no HTTP per entry), for
    ``python -m cluster bench``: ``{"outstanding", "size", "duration", "max_ops"}``
    -> ``{"latencies_ms": [...], "elapsed_s", "errors"}``.  Bounded in time and
    count by the manager; a follower forwards it to the leader like a write."""
    backend = backend_of(request)
    bench = getattr(backend, "bench_proposals", None)
    if bench is None:
        raise ApiError(501, "this manager cannot run the benchmark")
    body = await read_json(request)
    try:
        args = (
            int(body.get("outstanding", 1)),
            int(body.get("size", 16)),
            float(body.get("duration", 1.0)),
            int(body.get("max_ops", 100_000)),
        )
    except (TypeError, ValueError):
        raise ApiError(400, "outstanding, size, max_ops are integers; duration a number") from None
    return reply(await bench(*args))


@routes.post("/raft/transfer-leadership")
async def transfer_leadership(request: web.Request) -> web.Response:
    """Ask the leader to hand over (§3.10); a follower forwards this like a write."""
    backend = backend_of(request)
    target = transfer_target(await read_json(request, required=False))
    chosen = await bounded(backend, "leadership transfer", backend.transfer_leadership(target))
    return reply({"from": backend.name, "target": chosen})


# -- swarm ---------------------------------------------------------------------


@routes.get("/swarm")
async def inspect_swarm(request: web.Request) -> web.Response:
    """Docker's ``GET /swarm``: the cluster object, join tokens included."""
    await linearize(request)
    cluster = backend_of(request).store.cluster()
    if cluster is None:
        raise ApiError(503, "the swarm is not initialised yet")
    return reply(cluster)


def _manager_call(request: web.Request, what: str) -> Any:
    method = getattr(backend_of(request), what, None)
    if method is None:
        raise ApiError(501, f"this manager cannot {what.replace('_', ' ')}")
    return method


@routes.post("/swarm/unlock")
async def unlock_swarm(request: web.Request) -> web.Response:
    """``docker swarm unlock``: ``{"UnlockKey": "SWMKEY-1-..."}``; answered while locked."""
    body = await read_json(request)
    assert body is not None
    key = body.get("UnlockKey")
    if not isinstance(key, str) or set(body) - {"UnlockKey"}:
        raise ApiError(400, 'expected {"UnlockKey": "SWMKEY-1-..."}')
    await _manager_call(request, "unlock")(key)
    return reply({})


@routes.get("/swarm/unlockkey")
async def swarm_unlock_key(request: web.Request) -> web.Response:
    """``docker swarm unlock-key``: only a leader holding the key in memory can say it."""
    return reply({"UnlockKey": _manager_call(request, "unlock_key")()})


@routes.post("/swarm/update")
async def update_swarm(request: web.Request) -> web.Response:
    """``docker swarm update``: a cluster spec at ``version``; ``rotateManagerUnlockKey``,
    ``rotateWorkerToken``, ``rotateManagerToken``.

    Answers the cluster and, when autolock was turned on or the key rotated,
    the new ``UnlockKey`` (shown once: no manager stores it).
    """
    version = query_version(request)
    rotate = query_bool(request, "rotateManagerUnlockKey")
    spec = await read_json(request)
    assert spec is not None
    enc = spec.get("EncryptionConfig", {})
    if not isinstance(enc, dict) or not isinstance(enc.get("AutoLockManagers", False), bool):
        raise ApiError(400, "EncryptionConfig.AutoLockManagers must be a boolean")
    tokens = tuple(
        role for role in ("Worker", "Manager") if query_bool(request, f"rotate{role}Token")
    )
    update = _manager_call(request, "update_swarm")
    cluster, key = await bounded(
        backend_of(request), "swarm update", update(version, spec, rotate, tokens)
    )
    return reply({"Cluster": cluster, "UnlockKey": key})


# -- dispatcher (worker agents; see cluster.control.dispatcher) ------------------------
# Workers talk to the swarm port over mutual TLS (`cluster.api.swarm`); this
# API only shows who holds which secret *names*.


def _dispatcher(request: web.Request) -> tuple[Any, Any]:
    """The backend and its dispatcher, on the leader (a follower forwards)."""
    backend = backend_of(request)
    dispatcher = getattr(backend, "dispatcher", None)
    if dispatcher is None:
        raise ApiError(501, "this manager has no dispatcher")
    backend.require_leader()
    return backend, dispatcher


@routes.get("/dispatcher/secrets-held")
async def dispatcher_secrets_held(request: web.Request) -> web.Response:
    """Which node holds which secret *names* for which task (never the data)."""
    backend, dispatcher = _dispatcher(request)
    held = dispatcher.secrets_held()
    mounted = getattr(backend, "mounted_secrets", None)
    if mounted is not None:
        own = backend.store.find_by_name(o.NODE, backend.name)
        mine = {task: names for task, names in mounted().items() if names}
        if own is not None and mine:
            held[own["ID"]] = mine
    return reply(held)


@routes.get("/agent/files")
async def agent_files(request: web.Request) -> web.Response:
    """This manager's *own* agent (a manager runs tasks too): the names of the secret
    and config files each of its running tasks holds; never the data.  Local: no
    leader needed, since the agent is this process."""
    held = _manager_call(request, "files_held")
    return reply(held())
