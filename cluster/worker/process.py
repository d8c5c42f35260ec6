"""A worker agent: a node that runs tasks but holds no Raft state.

``python -m cluster.worker --config DIR/workerK/config.json``

Theory of operation
-------------------
A worker joined the swarm once, before it first ran: the supervisor sent a
signing request with the worker join token to the leader's swarm port and
wrote the certificate it got into ``DIR/workerK/keys`` (`cluster.api.swarm`,
`cluster.security.pki`).  That certificate -- CN = its node ID, OU = swarm-worker --
is who it is from then on; the token is not kept.  It knows the managers'
swarm URLs (its config, then each registration's answer, so it learns of
managers that joined later) and loops every heartbeat period, over mutual
TLS:

1. not registered yet: ``POST /dispatcher/register``, which gives it a
   session;
2. ``POST /dispatcher/heartbeat`` with the names of the secrets it holds;
3. ``GET /dispatcher/assignments``: its tasks, plus the plaintext of the
   secrets its running tasks reference;
4. plays the containers (`cluster.control.agent.next_reports`: one state step per
   task per round; an image tagged ``:fail`` fails) and reports each step
   with ``POST /dispatcher/tasks/{id}/status``.

Finding the leader: a follower answers 421 with the leader's name and URL,
and the worker calls the leader from then on.  A manager that does not
answer, answers 503, or shows a certificate that is not a manager's makes
the worker try the next one; a 401 (the new leader does not know its
session) makes it register again.  A 403 (the node was removed from the
swarm, or is no longer a worker) ends the process: it would never be let in.

Secrets are kept in this process's memory only (a dict of bytes), mounted
when a task runs and dropped when it stops; they are never written or
logged.  The worker's own tiny status endpoint (``GET /status`` on its API
port) shows its tasks and which secret *names* each holds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import json
import logging
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509

from cluster.control import agent
from cluster.control.dispatcher import HEARTBEAT_PERIOD
from cluster.security import pki
from cluster.security.renewal import Renewer, issued_by
from raft.runtime import eventloop
from raft.runtime.plain import from_plain
from raft.runtime.tls import MANAGER_ROLE, FreshContexts, TLSFiles, identity_of, peer_identity

__all__ = ["Worker", "WorkerSettings", "main"]

logger = logging.getLogger("cluster.worker")

#: 421 answers followed at once in a row; then the next one waits a period
#: (leadership moving while we chase it).
MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The contents of a worker's ``config.json`` (written by the supervisor)."""

    name: str
    node_id: str
    data_dir: Path
    api_port: int
    #: Every manager's swarm URL by name (HTTPS, `cluster.api.swarm`).
    managers: dict[str, str]
    #: Our certificate: paths of "ca", "cert" and "key" (PEM).
    tls: dict[str, str]
    api_host: str = "127.0.0.1"
    request_timeout: float = 3.0
    log_level: str = "INFO"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> WorkerSettings:
        """The settings in ``path``; keys this version does not know are kept in ``extra``."""
        return from_plain(cls, json.loads(path.read_text()), str(path), unknown_into="extra")


class SessionLost(Exception):
    """401: the leader does not know our session (it changed): register again."""


class Refused(Exception):
    """A 4xx other than 401: the request itself was refused."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ManagerUnavailable(Exception):
    """No answer, or a 5xx: try another manager."""


class Redirected(Exception):
    """421: that manager is not the leader; it named the one to call."""


class Worker:
    """One worker agent's state: its session, its tasks, the secrets it holds."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        #: Manager name -> swarm URL; grows when a registration names more.
        self.managers = dict(settings.managers)
        self.manager: str | None = min(self.managers) if self.managers else None
        self.tls = TLSFiles.from_config(settings.tls)
        #: Our swarm, as our certificate says (O): managers must show the same.
        cert = x509.load_pem_x509_certificate(self.tls.cert.read_bytes())
        self.cluster_id = identity_of(cert).cluster_id
        self.session: str | None = None
        self.period = HEARTBEAT_PERIOD
        self.tasks: dict[str, dict[str, Any]] = {}
        #: task ID -> secret file name -> data: in memory only, never on a disk.
        self._mounted: dict[str, dict[str, bytes]] = {}
        #: task ID -> config file name -> data: plain (a config is no secret),
        #: held in memory here only because this agent plays its containers.
        self._configs: dict[str, dict[str, bytes]] = {}
        self.last_contact: float | None = None
        #: Renews our certificate before it expires (`cluster.security.renewal`).
        self.renewer: Renewer | None = None
        #: The new root of the rotation we last renewed onto (once per rotation).
        self._renewed_onto: str | None = None

    # ------------------------------------------------------------ secrets

    def secrets_held(self) -> dict[str, list[str]]:
        """Which task holds which secret files -- names only, never the data."""
        return {task: sorted(files) for task, files in self._mounted.items()}

    def files_held(self) -> dict[str, dict[str, list[str]]]:
        """``{"Secrets": {task: [file names]}, "Configs": {...}}``: names, never data."""
        configs = {task: sorted(files) for task, files in self._configs.items()}
        return {"Secrets": self.secrets_held(), "Configs": configs}

    def mount(
        self,
        tasks: list[dict[str, Any]],
        delivered: dict[str, dict[str, str]],
        configs: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """Hold the secrets (and configs) of running tasks; drop those of tasks that stopped."""
        running = {
            t["ID"]
            for t in tasks
            if t.get("Status", {}).get("State") == "running" and t.get("DesiredState") == "running"
        }
        for held, given in ((self._mounted, delivered), (self._configs, configs or {})):
            for task_id in list(held):
                if task_id not in running:
                    del held[task_id]
            for task_id, files in given.items():
                if task_id in running and task_id not in held:
                    held[task_id] = {name: base64.b64decode(data) for name, data in files.items()}

    # ------------------------------------------------------------ talking

    def _next_manager(self) -> None:
        order = sorted(self.managers)
        if not order:
            return
        i = order.index(self.manager) if self.manager in order else -1
        self.manager = order[(i + 1) % len(order)]

    async def _call(
        self,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        assert self.manager is not None
        url = self.managers[self.manager] + path
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout * 2 + 1)
        try:
            async with http.request(method, url, json=body, params=params, timeout=timeout) as resp:
                payload = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise ManagerUnavailable(f"{self.manager}: {type(e).__name__} {e}") from None
        message = payload.get("message", "") if isinstance(payload, dict) else ""
        if resp.status == 421 and isinstance(payload, dict):
            leader, leader_url = payload.get("Leader"), payload.get("LeaderURL")
            if isinstance(leader, str) and isinstance(leader_url, str):
                self.managers[leader] = leader_url
                self.manager = leader
                raise Redirected(leader)
            raise ManagerUnavailable(f"{self.manager}: {message}")
        if resp.status == 401:
            raise SessionLost(message)
        if 400 <= resp.status < 500:
            raise Refused(resp.status, message)
        if resp.status >= 500:
            raise ManagerUnavailable(f"{self.manager}: {resp.status} {message}")
        self.last_contact = time.time()
        return payload

    async def register(self, http: aiohttp.ClientSession) -> None:
        s = self.settings
        answer = await self._call(http, "POST", "/dispatcher/register", {})
        self.session = answer["SessionID"]
        known = answer.get("Managers")
        if isinstance(known, dict):
            self.managers.update({str(k): str(v) for k, v in known.items()})
        self.period = float(answer.get("HeartbeatPeriod", HEARTBEAT_PERIOD))
        logger.info("%s: registered with %s", s.name, self.manager)

    async def round(self, http: aiohttp.ClientSession) -> None:
        """One heartbeat, one look at the assignments, one step of every task."""
        if self.session is None:
            await self.register(http)
        s = self.settings
        beat = await self._call(
            http,
            "POST",
            "/dispatcher/heartbeat",
            {"SessionID": self.session, "SecretsHeld": self.secrets_held()},
        )
        if isinstance(beat, dict):
            self.follow_roots(beat.get("TrustRoots"), beat.get("RootRotation"))
        answer = await self._call(
            http, "GET", "/dispatcher/assignments", params={"session": self.session or ""}
        )
        tasks = answer.get("Tasks", [])
        self.mount(tasks, answer.get("Secrets", {}), answer.get("Configs", {}))
        self.tasks = {t["ID"]: t for t in tasks}
        for r in agent.next_reports(s.node_id, tasks):
            body = {"State": r.state, "Message": r.message}
            if r.err:
                body["Err"] = r.err
            try:
                await self._call(http, "POST", f"/dispatcher/tasks/{r.task_id}/status", body)
            except Refused as e:  # e.g. the task moved on meanwhile
                logger.debug("%s: report on %s refused: %s", s.name, r.task_id, e)

    def follow_roots(self, trust: Any, new_root: Any) -> None:
        """A root CA rotation, as the leader tells it (`cluster.manager.rotation`):
        trust the roots it names, and renew onto the new root once per rotation."""
        if not isinstance(trust, str) or "BEGIN CERTIFICATE" not in trust:
            return
        try:
            if self.tls.ca.read_text() != trust:
                pki.write_trust(self.tls.ca, trust.encode())
                logger.info("%s: trust file now holds %d root(s)", self.settings.name,
                            trust.count("BEGIN CERTIFICATE"))  # fmt: skip
        except (OSError, ValueError) as e:
            logger.error("%s: cannot update the trust file: %s", self.settings.name, e)
            return
        if not isinstance(new_root, str) or new_root == self._renewed_onto:
            return
        self._renewed_onto = new_root
        if self.renewer is not None and not issued_by(self.renewer.certificate(), new_root):
            self.renewer.renew_soon()

    async def renew(self, http: aiohttp.ClientSession, csr: bytes) -> tuple[bytes, bytes]:
        """Our `Renewer`'s ``ask``: ``POST /renew`` to the leader (a redirection followed)."""
        for _ in range(MAX_REDIRECTS):
            try:
                body = await self._call(http, "POST", "/renew", {"CSR": csr.decode()})
            except Redirected:
                continue
            except (ManagerUnavailable, Refused, SessionLost) as e:
                raise OSError(str(e)) from None
            return body["Certificate"].encode(), body["CACertificate"].encode()
        raise OSError("the leader moved while renewing")

    async def run(self) -> None:
        connector = ManagersOnly(self.tls, self.cluster_id)
        async with aiohttp.ClientSession(connector=connector) as http:
            self.renewer = Renewer(
                self.settings.name, self.tls, functools.partial(self.renew, http), random.Random()
            )
            # Beside the rounds, on the same session: renewing is never urgent
            # enough to hold a heartbeat back, nor a heartbeat to hold it back.
            renewal = asyncio.create_task(self.renewer.run())
            try:
                await self._rounds(http)
            finally:
                renewal.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewal

    async def _rounds(self, http: aiohttp.ClientSession) -> None:
        redirects = 0
        while True:
            try:
                await self.round(http)
            except SessionLost:
                self.session = None
                continue
            except Redirected:
                redirects += 1
                if redirects <= MAX_REDIRECTS:
                    continue  # call the leader now; a few hops at most
            except ManagerUnavailable as e:
                logger.debug("%s: %s; trying another manager", self.settings.name, e)
                self._next_manager()
            except Refused as e:
                if e.status == 403:
                    raise
                logger.warning("%s: request refused: %s", self.settings.name, e)
            else:
                redirects = 0
            await asyncio.sleep(self.period)

    def status(self) -> dict[str, Any]:
        return {
            "Name": self.settings.name,
            "NodeID": self.settings.node_id,
            "Role": "worker",
            "Registered": self.session is not None,
            "Manager": self.manager,
            "LastContact": self.last_contact,
            "Tasks": {tid: t.get("Status", {}).get("State") for tid, t in self.tasks.items()},
            "SecretsHeld": self.secrets_held(),
            "pid": os.getpid(),
        }


class ManagersOnly(aiohttp.TCPConnector):
    """A connector that hangs up on any server whose certificate is not a manager's.

    TLS already proved that the server's certificate comes from our CA; a
    worker's certificate does too, so the role (OU) and swarm (O) must be
    checked as well: only a manager may hand out tasks and secrets.  The
    check runs on each new connection, before any request is sent on it.
    (aiohttp has no public hook at that moment, hence the override.)
    """

    def __init__(self, tls: TLSFiles, cluster_id: str) -> None:
        self._contexts = FreshContexts(tls, TLSFiles.client_context)
        super().__init__(ssl=self._contexts.get())
        self.cluster_id = cluster_id

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ssl"):
            kwargs["ssl"] = self._contexts.get()  # a renewed certificate, from now on
        transport, protocol = await super()._wrap_create_connection(*args, **kwargs)
        who = peer_identity(transport.get_extra_info("ssl_object"))
        why = None
        if who is None:
            why = "no verified certificate"
        elif who.role != MANAGER_ROLE or who.cluster_id != self.cluster_id:
            why = f"its certificate ({who.node_id}, {who.role}) is not a manager's of this swarm"
        if why:
            transport.close()
            raise aiohttp.ClientConnectionError(f"refused the server: {why}")
        return transport, protocol


def make_status_app(worker: Worker) -> web.Application:
    """The worker's own tiny API: ``GET /status``, ``GET /secrets-held``, ``GET /files``
    (the names of the secret and config files each task holds), ``GET /_ping``."""

    async def status(request: web.Request) -> web.Response:
        return web.json_response(worker.status())

    async def held(request: web.Request) -> web.Response:
        return web.json_response(worker.secrets_held())

    async def files(request: web.Request) -> web.Response:
        return web.json_response(worker.files_held())

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/files", files)
    app.router.add_get("/status", status)
    app.router.add_get("/secrets-held", held)
    app.router.add_get("/_ping", ping)
    return app


async def serve(settings: WorkerSettings) -> int:
    """Run one worker until SIGTERM/SIGINT; returns the exit status."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(settings)
    runner = web.AppRunner(make_status_app(worker), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, settings.api_host, settings.api_port).start()
    logger.info("%s: serving status on %s:%d", settings.name, settings.api_host, settings.api_port)

    async def play() -> int:
        try:
            await worker.run()
        except Refused as e:
            logger.error("%s: the swarm refused this worker: %s", settings.name, e)
            return 1
        return 0

    status = 0
    async with asyncio.TaskGroup() as tg:
        agent_task = tg.create_task(play())
        waiter = tg.create_task(stop.wait())
        await asyncio.wait({agent_task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if agent_task.done():
            status = agent_task.result()
        for t in (agent_task, waiter):
            t.cancel()
    logger.info("%s: stopping", settings.name)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await runner.cleanup()
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m cluster.worker --config DIR/workerN/config.json``."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # workers have no network fault rules
    parser = argparse.ArgumentParser(prog="python -m cluster.worker", description=main.__doc__)
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        settings = WorkerSettings.load(args.config)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"cluster.worker.process: cannot read {args.config}: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format=f"%(asctime)s {settings.name} %(levelname)s %(message)s",
    )
    try:
        return eventloop.run(serve(settings))
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        logger.error("cannot run %s: %s", settings.name, e)
        return 2
