"""The leader's dispatcher: how worker agents join, stay alive and get their work.

Theory of operation
-------------------
A worker (`cluster.worker.process`) is a light process with no Raft state.  It
joined once with the swarm's worker token and holds a certificate naming its
node ID (`cluster.security.pki`); from then on it talks to the leader's swarm port
over mutual TLS (`cluster.api.swarm`), and who it is comes from that
certificate, never from what it says:

1. ``POST /dispatcher/register``: the node (still a worker in the store) is
   marked ``ready``; the answer carries a fresh ``SessionID``.  Sessions live
   in the leader's memory only, so after a change of leader every worker is
   told its session is unknown (401) and registers again -- swarmkit's
   agents do the same.
2. ``POST /dispatcher/heartbeat`` ``{SessionID, SecretsHeld}`` every
   `HEARTBEAT_PERIOD` seconds.  ``SecretsHeld`` maps task IDs to the *names*
   of the secret files the agent holds for them (never their data), so the
   API can show who holds what.
3. ``GET /dispatcher/assignments?session=S``: the node's tasks, and for each
   of its running tasks that references secrets, their plaintext (base64);
   likewise the data of the configs they reference (`configs_to_deliver`).
   Only the node that runs such a task gets it, only inside the TLS
   connection, and it is never logged; the agent keeps it in memory and
   drops it when the task ends.
4. ``POST /dispatcher/tasks/{id}/status``: the state of one of its own tasks.

The leader's duty loop calls `Dispatcher.node_updates`: a worker silent for
`DOWN_AFTER` seconds is marked ``down`` (and the orchestrator replaces its
tasks once it stays down past its grace period); one heard again is
``ready``.  A new leader gives every worker `DOWN_AFTER` seconds from the
moment it took over, so an election does not mark live workers down.

The pure parts (`join_role`, `assigned_tasks`, `secrets_to_deliver`,
`liveness_changes`) are tested without a cluster.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cluster.control import agent
from cluster.state import objects as o

__all__ = [
    "DOWN_AFTER",
    "HEARTBEAT_PERIOD",
    "Dispatcher",
    "assigned_tasks",
    "configs_to_deliver",
    "is_worker_node",
    "join_role",
    "liveness_changes",
    "secrets_to_deliver",
]

#: Seconds between a worker's heartbeats (the answer to a heartbeat says so).
HEARTBEAT_PERIOD = 0.5
#: A worker not heard from for this long is marked down.
DOWN_AFTER = 3.0


def join_role(cluster: o.Obj | None, token: object) -> str | None:
    """The role a join token grants: "worker", "manager", or None for no valid token.

    The role comes from *which* token it is, never from what the newcomer
    asks for: that is what keeps a worker token from making a manager.
    Both comparisons run, in constant time, whatever the outcome.
    """
    if cluster is None or not isinstance(token, str):
        return None
    tokens = cluster.get("JoinTokens", {})
    found = None
    for role in ("Worker", "Manager"):
        want = tokens.get(role, "")
        if isinstance(want, str) and want and hmac.compare_digest(want.encode(), token.encode()):
            found = role.lower()
    return found


def assigned_tasks(tasks: Iterable[o.Obj], node_id: str) -> list[o.Obj]:
    """The tasks an agent must act on: on this node and not yet ended."""
    return [
        t
        for t in tasks
        if t.get("NodeID") == node_id
        and t.get("Status", {}).get("State") not in o.TERMINAL_TASK_STATES
    ]


def secrets_to_deliver(tasks: Iterable[o.Obj]) -> dict[str, list[tuple[str, str]]]:
    """task ID -> (secret ID, file name) for every running task that wants secrets."""
    return _to_deliver(tasks, agent.wants_secrets)


def configs_to_deliver(tasks: Iterable[o.Obj]) -> dict[str, list[tuple[str, str]]]:
    """task ID -> (config ID, file name) for every running task that wants configs.

    The same rule as for secrets -- only the node that runs the task gets it --
    although a config is no secret: a node needs no file it has no task for."""
    return _to_deliver(tasks, agent.wants_configs)


def _to_deliver(
    tasks: Iterable[o.Obj], wants: Callable[[o.Obj], list[tuple[str, str]]]
) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for t in tasks:
        running = t.get("Status", {}).get("State") == "running"
        if running and t.get("DesiredState") == "running":
            wanted = wants(t)
            if wanted:
                out[t["ID"]] = wanted
    return out


def liveness_changes(
    workers: Iterable[o.Obj], last_seen: dict[str, float], now: float, down_after: float
) -> list[tuple[str, str]]:
    """(node ID, new state) for each worker whose ``ready``/``down`` state is wrong.

    ``last_seen`` maps node IDs to when (monotonic seconds) they were last
    heard; a worker missing from it counts as never heard.
    """
    out = []
    for node in workers:
        seen = last_seen.get(node["ID"])
        alive = seen is not None and now - seen < down_after
        want = "ready" if alive else "down"
        if node.get("Status", {}).get("State") != want:
            out.append((node["ID"], want))
    return out


@dataclass
class Dispatcher:
    """The leader's memory of its workers: sessions, heartbeats, secrets held.

    ``clock`` is monotonic seconds (injected for tests).  `reset` is called
    when this manager becomes leader: it forgets every session and gives
    every worker a fresh `DOWN_AFTER` to check in.
    """

    clock: Callable[[], float]
    down_after: float = DOWN_AFTER
    sessions: dict[str, str] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)
    held: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    _since: float | None = None

    def reset(self) -> None:
        self.sessions.clear()
        self.held.clear()
        self.last_seen.clear()
        self._since = self.clock()

    def open_session(self, node_id: str) -> str:
        session = secrets.token_hex(16)
        self.sessions[node_id] = session
        self.last_seen[node_id] = self.clock()
        return session

    def check_session(self, node_id: str, session: object) -> bool:
        want = self.sessions.get(node_id)
        return (
            want is not None
            and isinstance(session, str)
            and hmac.compare_digest(want.encode(), session.encode())
        )

    def heartbeat(self, node_id: str, held: dict[str, list[str]]) -> None:
        self.last_seen[node_id] = self.clock()
        self.held[node_id] = {str(k): sorted(map(str, v)) for k, v in held.items()}

    def node_updates(self, workers: Iterable[o.Obj]) -> list[tuple[str, str]]:
        """Liveness changes to write now (see `liveness_changes`)."""
        workers = list(workers)
        now = self.clock()
        seen = dict(self.last_seen)
        if self._since is not None:
            # Just became leader: nobody has had a chance to check in yet.
            for node in workers:
                seen.setdefault(node["ID"], self._since)
        return liveness_changes(workers, seen, now, self.down_after)

    def secrets_held(self) -> dict[str, dict[str, list[str]]]:
        """node ID -> task ID -> secret file names, as the workers last reported."""
        return {n: dict(tasks) for n, tasks in self.held.items() if n in self.sessions}


def is_worker_node(node: o.Obj, manager_names: Iterable[str]) -> bool:
    """A node played by a worker agent: role worker and not one of our manager processes."""
    names = set(manager_names)
    return (
        node.get("Spec", {}).get("Role") == "worker"
        and node.get("Description", {}).get("Hostname") not in names
    )
