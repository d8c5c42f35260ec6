"""The manager's own agent: a manager runs tasks too, as in Swarm.

A worker agent (`cluster.worker`) learns its tasks from the leader's
dispatcher over the swarm port; a manager already holds the whole store, so
its agent reads its tasks from its own replica and reports each step of
their state machine (`cluster.control.agent.next_reports`) as a write --
through Raft if it leads, else to the leader's API.  The secrets of its
running tasks are decrypted into this process's memory only, never a disk.

A separate module because it is a client of the manager, not a part of it:
it only reads the store and writes like any other client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from cluster.api.backend import NoQuorumError, NotLeaderError, UnavailableError
from cluster.api.common import write_reports
from cluster.control import agent
from cluster.manager.backend import RaftBackend
from cluster.manager.duties import DUTY_INTERVAL
from cluster.manager.keyring import KeyRing
from cluster.manager.settings import ManagerSettings
from cluster.security import crypto
from cluster.state.store import Store

__all__ = ["ManagerAgent"]

logger = logging.getLogger("cluster.manager")


class ManagerAgent:
    """Plays the containers of the tasks assigned to this manager's node."""

    def __init__(
        self, settings: ManagerSettings, store: Store, backend: RaftBackend, keyring: KeyRing
    ) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.keyring = keyring
        #: Secrets of running tasks, decrypted into memory only (never a disk).
        self._mounted: dict[str, dict[str, bytes]] = {}
        #: Configs of running tasks: plain data, as Swarm mounts a config.
        self._configs: dict[str, dict[str, bytes]] = {}

    @property
    def name(self) -> str:
        return self.settings.name

    async def run(self) -> None:
        """Play the containers of the tasks assigned to this node (`cluster.control.agent`).

        Each round looks only at the tasks `agent.TaskWatch` names (those that
        changed, and now and then all of them), and sends what it finds as a
        few entries of up to `agent.REPORTS_PER_ENTRY` reports each.
        """
        import aiohttp

        await self.keyring.wait_unlocked()
        watch = agent.TaskWatch(self.settings.node_id)
        async with aiohttp.ClientSession() as http:
            while True:
                await asyncio.sleep(DUTY_INTERVAL)
                if self.store.cluster() is None:
                    continue
                tasks, changed = watch.step(self.store, time.time())
                self._mount_secrets(tasks, changed)
                reports = agent.next_reports(self.settings.node_id, tasks)
                watch.reported({r.task_id for r in reports})
                for i in range(0, len(reports), agent.REPORTS_PER_ENTRY):
                    try:
                        await self._send_reports(http, reports[i : i + agent.REPORTS_PER_ENTRY])
                    except (NotLeaderError, NoQuorumError, UnavailableError) as e:
                        logger.debug("%s: task reports deferred: %s", self.name, e)
                        break

    async def _send_reports(self, http: Any, reports: list[agent.Report]) -> None:
        """One round's reports: through Raft if we lead, else to the leader's API in one call."""
        try:
            await write_reports(self.backend.write, reports, time.time())
            return
        except NotLeaderError as e:
            if e.leader_api_url is None:
                raise
            url = e.leader_api_url
        body = {"Reports": [_report_body(r) for r in reports]}
        import aiohttp

        try:
            async with asyncio.timeout(self.backend.request_timeout):
                async with http.post(f"{url}/tasks/status", json=body):
                    pass
        except (aiohttp.ClientError, TimeoutError) as e:
            # The leader we knew of just died or moved: try again next round.
            raise UnavailableError(f"the leader did not take the reports: {e}") from None

    def _mount_secrets(self, tasks: list[dict[str, Any]], changed: set[str] | None) -> None:
        """Decrypt the secrets of this node's running tasks into memory; drop the rest.

        ``tasks`` are the ones this round looked at; ``changed`` the IDs that
        changed since the last round (``None``: ``tasks`` is every task of ours).
        """
        mine = {
            t["ID"]: t
            for t in tasks
            if t.get("NodeID") == self.settings.node_id
            and t.get("Status", {}).get("State") == "running"
        }
        gone = self._mounted.keys() - mine.keys()
        if changed is not None:
            gone &= changed  # a task that did not change is still where it was
        for task_id in gone:
            del self._mounted[task_id]  # the task ended or moved: its secrets go
        for task_id, t in mine.items():
            if task_id in self._mounted:
                continue
            files: dict[str, bytes] = {}
            for secret_id, target in agent.wants_secrets(t):
                with contextlib.suppress(Exception):
                    sealed = self.store.sealed_secret(secret_id)
                    files[target] = crypto.decrypt_secret(
                        self.keyring.data_key(), secret_id, sealed
                    )
            self._mounted[task_id] = files
        self._mount_configs(mine, changed)

    def _mount_configs(self, mine: dict[str, dict[str, Any]], changed: set[str] | None) -> None:
        """The configs of this node's running tasks, read from the replica (plain);
        the same rule as for secrets: a task that did not change keeps its files."""
        gone = self._configs.keys() - mine.keys()
        if changed is not None:
            gone &= changed
        for task_id in gone:
            del self._configs[task_id]
        for task_id, t in mine.items():
            if task_id not in self._configs:
                files: dict[str, bytes] = {}
                for config_id, target in agent.wants_configs(t):
                    with contextlib.suppress(Exception):
                        files[target] = self.store.get("config", config_id)["Spec"]["Data"]
                self._configs[task_id] = files

    def files_held(self) -> dict[str, dict[str, list[str]]]:
        """``{"Secrets": {task: [file names]}, "Configs": {...}}``: names, never data."""
        configs = {task: sorted(files) for task, files in self._configs.items()}
        return {"Secrets": self.mounted_secrets(), "Configs": configs}

    def mounted_secrets(self) -> dict[str, list[str]]:
        """Which task holds which secret files -- names only, never the data."""
        return {task: sorted(files) for task, files in self._mounted.items()}


def _report_body(r: agent.Report) -> dict[str, str]:
    """One report as ``POST /tasks/status`` takes it."""
    body = {"ID": r.task_id, "State": r.state, "Message": r.message}
    if r.err:
        body["Err"] = r.err
    return body
