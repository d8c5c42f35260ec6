"""The swarm port: where nodes, not users, talk to managers -- over mutual TLS.

Theory of operation
-------------------
Every manager serves two HTTP listeners on 127.0.0.1.  The *API*
(`cluster.api.server`) is for users and tools, like Docker's engine socket.  The
*swarm port* (this module, Docker's 2377) is for nodes: it speaks HTTPS
with the manager's certificate, asks every client for a certificate of this
swarm's CA, and acts on the identity in it.  Three kinds of callers:

* **A newcomer** has no certificate yet, so a client certificate is
  optional at the TLS layer.  It may only ``GET /ca`` (the root
  certificate, public anyway; the newcomer checks it against the digest in
  its join token, `cluster.security.pki`) and ``POST /join``.
* **``POST /join``** ``{JoinToken, CSR, Hostname?, Role?, Endpoints?}``
  (leader only): the token decides the role -- a worker token makes a
  worker, a manager token a manager, and asking for the other role is
  refused (403), so a worker token cannot join as a manager.  The leader
  signs the request's key (CN = node ID for a worker, the Raft id for a
  manager; OU = role; O = cluster), and records the node in the store, in
  state ``unknown`` until it checks in.  A manager also gives its
  ``Endpoints`` (Raft address, API URL, swarm URL): once that entry commits,
  every manager learns the address, and the leader adds it to Raft as a
  learner and then a voter (`cluster.manager.duties`, dissertation §4.2.1).
* **``POST /renew``** ``{CSR}`` (leader only): any node of this swarm renews
  its certificate with the one it still holds (`cluster.security.renewal`).
  The identity to certify again comes from that certificate, and its node
  must still be in the store with the same role; the lifetime is the
  cluster's certificate expiry (`cluster.security.expiry`).
* **A worker** (`cluster.worker.process`) calls the dispatcher routes with its
  certificate.  Who it is comes from the certificate, never from the body:
  OU must be ``swarm-worker``, O this cluster, and CN a node of the store
  that is still a worker -- so removing a node revokes its certificate.

A follower does not forward these calls (it would have to vouch for the
caller's identity); it answers 421 with the leader's name and swarm URL
(``Leader``, ``LeaderURL``), and the node calls the leader itself.  Errors have the API's shape,
``{"message": ...}``.  Secrets leave a manager only through
``/dispatcher/assignments``, over this TLS channel, to the one node that
runs a task using them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cluster.api.backend import BackendError, NotLeaderError
from cluster.api.common import (
    BACKEND,
    MAX_BODY,
    SERVED_BY_HEADER,
    ApiError,
    backend_of,
    bounded,
    error_reply,
    read_json,
    reply,
    task_report,
    write,
)
from cluster.api.server import serve_app
from cluster.control.dispatcher import (
    HEARTBEAT_PERIOD,
    assigned_tasks,
    configs_to_deliver,
    join_role,
    secrets_to_deliver,
)
from cluster.security import crypto
from cluster.security.expiry import expiry_of
from cluster.security.roles import MANAGER_ROLE, WORKER_ROLE
from cluster.state import commands as c
from cluster.state import objects as o
from cluster.state.errors import NotFound, StoreError
from raft.runtime.tls import FreshContexts, PeerIdentity, TLSFiles, identity_of, peer_identity

__all__ = ["make_swarm_app", "run_swarm_api", "swarm_server_context"]

log = logging.getLogger("cluster.api.swarm")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: One join at a time on a leader: choosing a free hostname and recording the
#: node must not interleave with another join (hostnames are Raft ids).
JOIN_LOCK: web.AppKey[asyncio.Lock] = web.AppKey("join_lock", asyncio.Lock)

_HOSTNAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_ROLES = {"worker": WORKER_ROLE, "manager": MANAGER_ROLE}
_ENDPOINTS = ("Raft", "API", "Swarm")

routes = web.RouteTableDef()


def _context(files: TLSFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_cert_chain(str(files.cert), str(files.key), password=files.key_password())
    return ctx


def swarm_server_context(files: TLSFiles) -> ssl.SSLContext:
    """Our certificate out; a client certificate checked against our CA *if* sent.

    Optional, because a newcomer has none yet: the routes decide who needs
    one (`_identity`).  A certificate from another CA still fails the
    handshake itself.

    The listening socket keeps the context it was started with, so the
    files' newest version (a renewed certificate, a rotated root) is
    swapped in per connection, at the first moment OpenSSL offers: the
    server-name callback, which runs on every ClientHello, SNI or not.
    """
    fresh = FreshContexts(files, _context)
    listening = _context(files)

    def newest(ssl_object: Any, server_name: str | None, initial: ssl.SSLContext) -> None:
        ctx = fresh.get()
        if ctx is not initial:
            ssl_object.context = ctx

    listening.sni_callback = newest
    return listening


def make_swarm_app(backend: Any) -> web.Application:
    """The swarm port's app for one manager (serve it with `run_swarm_api`)."""
    app = web.Application(middlewares=[_middleware], client_max_size=MAX_BODY)
    app[BACKEND] = backend
    app[JOIN_LOCK] = asyncio.Lock()
    app.add_routes(routes)
    return app


async def run_swarm_api(
    backend: Any, files: TLSFiles, host: str = "127.0.0.1", port: int = 0
) -> web.AppRunner:
    """Start serving HTTPS on ``host:port``; stop with ``await runner.cleanup()``."""
    return await serve_app(make_swarm_app(backend), host, port, swarm_server_context(files))


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    backend = request.app[BACKEND]
    try:
        response = await handler(request)
    except NotLeaderError as exc:
        # No forwarding: the caller's identity is in *its* TLS connection.
        body = {"message": f"{backend.name} is not the leader: {exc.message}"}
        url = backend.swarm_urls.get(exc.leader_name or "")
        if url:
            body |= {"Leader": exc.leader_name, "LeaderURL": url}
        response = web.json_response(body, status=421)
    except ApiError as exc:
        response = error_reply(exc.status, exc.message)
    except StoreError as exc:
        response = error_reply(exc.http_status, str(exc))
    except BackendError as exc:
        response = error_reply(exc.http_status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_reply(exc.status, exc.text or exc.reason)
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        response = error_reply(500, "internal error in the manager; see its log")
    response.headers[SERVED_BY_HEADER] = backend.name
    log.debug("%s %s -> %d", request.method, request.path, response.status)
    return response


def _identity(request: web.Request) -> PeerIdentity | None:
    return peer_identity(
        request.transport.get_extra_info("ssl_object") if request.transport else None
    )


# -- newcomers -------------------------------------------------------------------


@routes.get("/_ping")
async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK")


@routes.get("/ca")
async def root_certificate(request: web.Request) -> web.Response:
    """The root certificate (PEM): public; the caller checks it against its token."""
    return web.Response(
        body=backend_of(request).root_ca_pem(), content_type="application/x-pem-file"
    )


def _string(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise ApiError(400, f"{name} must be a non-empty string")
    return value


def _endpoints(body: dict[str, Any]) -> dict[str, str]:
    raw = body.get("Endpoints")
    if not isinstance(raw, dict) or any(not isinstance(raw.get(k), str) for k in _ENDPOINTS):
        raise ApiError(400, "a manager must give Endpoints: {Raft, API, Swarm}")
    host, _, port = raw["Raft"].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ApiError(400, "Endpoints.Raft must be host:port")
    return {k: raw[k][:200] for k in _ENDPOINTS}


def _next_hostname(store: Any, role: str) -> str:
    taken = {n.get("Description", {}).get("Hostname") for n in store.list(o.NODE)}
    n = 1
    while f"{role}{n}" in taken:
        n += 1
    return f"{role}{n}"


@routes.post("/join")
async def join(request: web.Request) -> web.Response:
    """A newcomer's signing request and join token -> its certificate (leader only)."""
    body = await read_json(request)
    assert body is not None
    unknown = set(body) - {"JoinToken", "CSR", "Hostname", "Role", "Endpoints"}
    if unknown:
        raise ApiError(400, f"unknown field {sorted(unknown)[0]!r} in join request")
    token, csr = _string(body, "JoinToken"), _string(body, "CSR")
    asked = _string(body, "Role", required=False)
    hostname = _string(body, "Hostname", required=False)
    if asked is not None and asked not in _ROLES:
        raise ApiError(400, "Role must be worker or manager")
    if hostname is not None and not _HOSTNAME.match(hostname):
        raise ApiError(400, "Hostname must be lowercase letters, digits and dashes")
    async with request.app[JOIN_LOCK]:
        return await _join(request, token, csr, asked, hostname, body)


async def _join(
    request: web.Request,
    token: str | None,
    csr: str | None,
    asked: str | None,
    hostname: str | None,
    body: dict[str, Any],
) -> web.Response:
    backend = backend_of(request)
    backend.require_leader()
    # A token rotated by an earlier leader must be refused: read the latest state.
    await bounded(backend, "read barrier", backend.read_barrier(backend.request_timeout))
    store = backend.store
    role = join_role(store.cluster(), token)
    if role is None:
        raise ApiError(403, "invalid join token")
    if asked is not None and asked != role:
        raise ApiError(403, f"a {role} join token cannot join as a {asked}")
    endpoints = _endpoints(body) if role == "manager" else None
    if hostname is None:
        hostname = _next_hostname(store, role)
    elif store.find_by_name(o.NODE, hostname) is not None:
        raise ApiError(409, f"a node named {hostname} is already part of this swarm")
    ca = backend.certificate_authority()
    node_id = c.new_id()
    # A manager's certificate names its Raft id (checked by raft.runtime.tls on every
    # Raft connection); a worker's names the node ID the dispatcher knows it by.
    subject = hostname if role == "manager" else node_id
    assert csr is not None
    try:
        cert = ca.sign_csr(csr.encode(), subject, _ROLES[role], backend.cluster_id, hostname)
    except ValueError as e:
        raise ApiError(400, f"bad signing request: {e}") from None
    cert_pem = _pem(cert)
    description: dict[str, Any] = {
        "TLSInfo": {
            "TrustRoot": backend.root_ca_pem().decode(),
            "CertIssuerSubject": "swarmraft root CA",
        }
    }
    if endpoints:
        description["Endpoints"] = endpoints
    await write(
        request,
        c.create_node(
            node_id,
            time.time(),
            hostname=hostname,
            role=role,
            manager_addr=endpoints["Raft"] if endpoints else None,
            description=description,
            state="unknown",
        ),
    )
    log.info("%s: %s joined as a %s", backend.name, hostname, role)
    return reply(
        {
            "NodeID": node_id,
            "Hostname": hostname,
            "Role": role,
            "Certificate": cert_pem,
            "CACertificate": backend.root_ca_pem().decode(),
        }
    )


def _pem(cert: Any) -> str:
    """A signed certificate as PEM text (``cryptography`` is loaded by then: it signed it)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return str(cert.public_bytes(Encoding.PEM).decode())


# -- renewal ---------------------------------------------------------------------


@routes.post("/renew")
async def renew(request: web.Request) -> web.Response:
    """A node's new key, certified again with the identity of its current certificate."""
    backend = backend_of(request)
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise ApiError(401, "renewal needs the certificate being renewed")
    from cryptography import x509

    current = x509.load_der_x509_certificate(der)
    who = identity_of(current)
    if who.cluster_id != backend.cluster_id:
        raise ApiError(403, "certificate of another swarm")
    body = await read_json(request)
    assert body is not None
    unknown = set(body) - {"CSR"}
    if unknown:
        raise ApiError(400, f"unknown field {sorted(unknown)[0]!r} in renewal request")
    csr = _string(body, "CSR")
    assert csr is not None
    backend.require_leader()
    store = backend.store
    # A manager's certificate names its Raft id (its hostname), a worker's its node ID.
    role = "manager" if who.role == MANAGER_ROLE else "worker"
    if role == "manager":
        node = store.find_by_name(o.NODE, who.node_id)
    else:
        try:
            node = store.get(o.NODE, who.node_id)
        except NotFound:
            node = None
    if node is None or node["Spec"].get("Role") != role:
        raise ApiError(403, f"{who.node_id[:40]} is not a {role} of this swarm any more")
    cluster = store.cluster()
    # During a root rotation: the new root signs, and the cross-signed new root
    # follows the certificate, for peers that still trust only the old root.
    ca, chain, issuer = backend.renewal_ca()
    try:
        cert = ca.renew(csr.encode(), current, expiry_of(cluster["Spec"] if cluster else None))
    except ValueError as e:
        raise ApiError(400, f"bad signing request: {e}") from None
    # Recorded before the answer: a rotation counts a node once this commits.
    await write(request, c.node_certificate(node["ID"], issuer, time.time()))
    log.info("%s: renewed the certificate of %s", backend.name, who.node_id)
    return reply(
        {
            "Certificate": _pem(cert) + chain.decode(),
            "CACertificate": backend.trust_bundle_pem().decode(),
        }
    )


# -- workers ---------------------------------------------------------------------


def _worker(request: web.Request) -> tuple[Any, Any, o.Obj]:
    """The calling worker's node (from its certificate), on the leader.

    Every dispatcher route calls it first, before reading the body: a
    stranger's bytes are not even parsed.
    """
    backend = backend_of(request)
    who = _identity(request)
    if who is None:
        raise ApiError(401, "a certificate of this swarm is required (join first)")
    if who.role != WORKER_ROLE or who.cluster_id != backend.cluster_id:
        raise ApiError(403, f"certificate of {who.node_id[:40]} ({who.role}) is not a worker's")
    dispatcher = backend.dispatcher
    backend.require_leader()
    try:
        node = backend.store.get(o.NODE, who.node_id)
    except NotFound:
        raise ApiError(403, f"node {who.node_id[:40]} is not a member of this swarm") from None
    if node["Spec"]["Role"] != "worker":
        raise ApiError(403, f"node {who.node_id[:40]} is a manager: it cannot act as a worker")
    return backend, dispatcher, node


def _session(dispatcher: Any, node_id: str, session: object) -> None:
    if not dispatcher.check_session(node_id, session):
        raise ApiError(401, f"unknown session for node {node_id[:40]}: register again")


@routes.post("/dispatcher/register")
async def dispatcher_register(request: web.Request) -> web.Response:
    """A worker checks in: -> ``{SessionID, HeartbeatPeriod, Managers}``."""
    backend, dispatcher, node = _worker(request)
    await read_json(request, required=False)
    if node["Status"]["State"] != "ready":
        await write(request, c.set_node_status(node["ID"], time.time(), state="ready"))
    session = dispatcher.open_session(node["ID"])
    return reply(
        {
            "SessionID": session,
            "NodeID": node["ID"],
            "Hostname": node["Description"]["Hostname"],
            "HeartbeatPeriod": HEARTBEAT_PERIOD,
            "Managers": backend.swarm_urls,
        }
    )


@routes.post("/dispatcher/heartbeat")
async def dispatcher_heartbeat(request: web.Request) -> web.Response:
    """``{SessionID, SecretsHeld: {task ID: [secret file names]}}``."""
    backend, dispatcher, node = _worker(request)
    body = await read_json(request)
    assert body is not None
    held = body.get("SecretsHeld", {})
    ok = isinstance(held, dict) and all(
        isinstance(v, list) and all(isinstance(n, str) for n in v) for v in held.values()
    )
    if not ok:
        raise ApiError(400, "SecretsHeld maps task IDs to lists of secret names")
    _session(dispatcher, node["ID"], body.get("SessionID"))
    dispatcher.heartbeat(node["ID"], held)
    # The roots to trust, and the new one while a rotation runs: a worker
    # follows them as managers follow the store (`cluster.manager.rotation`).
    rotation = (backend.store.cluster() or {}).get("RootRotation")
    return reply(
        {
            "HeartbeatPeriod": HEARTBEAT_PERIOD,
            "TrustRoots": backend.trust_bundle_pem().decode(),
            "RootRotation": rotation["CACert"] if rotation else None,
        }
    )


@routes.get("/dispatcher/assignments")
async def dispatcher_assignments(request: web.Request) -> web.Response:
    """``?session=S``: the node's live tasks and its running tasks' secrets and configs.

    Secret data leaves a manager only here: decrypted for the one node that
    runs a task referencing it, inside this TLS connection, base64 in
    ``Secrets`` (task ID -> file name -> data).  Never logged.
    """
    backend, dispatcher, node = _worker(request)
    _session(dispatcher, node["ID"], request.query.get("session"))
    store = backend.store
    tasks = assigned_tasks(store.tasks(node_id=node["ID"]), node["ID"])
    delivered: dict[str, dict[str, str]] = {}
    for task_id, wanted in secrets_to_deliver(tasks).items():
        files = {}
        for secret_id, name in wanted:
            try:
                sealed = store.sealed_secret(secret_id)
            except NotFound:
                continue  # removed since: the task cannot have it
            plain = crypto.decrypt_secret(backend.data_key(), secret_id, sealed)
            files[name] = base64.b64encode(plain).decode("ascii")
        delivered[task_id] = files
    configs: dict[str, dict[str, str]] = {}
    for task_id, wanted in configs_to_deliver(tasks).items():
        plain_files = {}
        for config_id, name in wanted:
            try:
                data = store.get(o.CONFIG, config_id)["Spec"]["Data"]
            except NotFound:
                continue
            plain_files[name] = base64.b64encode(data).decode("ascii")
        configs[task_id] = plain_files
    return reply({"Tasks": tasks, "Secrets": delivered, "Configs": configs})


@routes.post("/dispatcher/tasks/{id}/status")
async def dispatcher_task_status(request: web.Request) -> web.Response:
    """A worker reports a state of one of *its own* tasks (the store only moves forward)."""
    backend, _, node = _worker(request)
    body = await read_json(request)
    assert body is not None
    state, message, err = task_report(body)
    try:
        task = backend.store.get(o.TASK, request.match_info["id"])
    except NotFound:
        raise ApiError(404, "no such task") from None
    if task.get("NodeID") != node["ID"]:
        raise ApiError(403, "this task is not assigned to the calling node")
    try:
        cmd = c.update_task(task["ID"], time.time(), state=state, message=message, err=err)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"invalid task status ({type(exc).__name__})") from None
    return reply(await write(request, cmd))
