"""What the HTTP API needs from a manager: one small interface and three errors.

The API (`cluster.api.server`) is written against `Backend`, not against the manager
process, so it can be tested with a fake that applies commands straight to a
`Store`, and so the manager (RaftNode + Store + keys) is free to change how it
does each thing.  Everything the API does with Raft goes through these calls:

* writes: `Backend.write` proposes a command built by `cluster.state.commands` and
  returns the state machine's `Result` once the entry is applied here;
* reads: the API reads ``backend.store`` (this manager's own replica), after
  `Backend.read_barrier` unless the client asked for a local read;
* secrets: `Backend.data_key` gives the DEK the API seals new secrets with, so
  only ciphertext is ever proposed;
* status: `raft_status`, `info` and `transfer_leadership` for ``/raft/*`` and
  ``/info``.

Errors that mean "not here, not now" are the three below.  They carry
``http_status`` like `cluster.state.errors.StoreError` does; the API answers 503
for all of them, except that it first tries to forward a write that met a
`NotLeaderError` to the leader it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cluster.security.crypto import DataKey
    from cluster.state.store import Result, Store

__all__ = [
    "Backend",
    "BackendError",
    "NoQuorumError",
    "NotLeaderError",
    "StorageFullError",
    "UnavailableError",
]


class BackendError(Exception):
    """Base of the errors that say the cluster cannot serve this request now."""

    http_status = 503

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotLeaderError(BackendError):
    """This manager is not the leader; the API forwards to ``leader_api_url``.

    Both fields are ``None`` when this manager knows of no leader (an election
    is under way or there is no quorum); the API then answers 503.
    """

    def __init__(
        self,
        leader_name: str | None,
        leader_api_url: str | None,
        message: str | None = None,
    ) -> None:
        if message is None:
            message = (
                f"this manager is not the leader; the leader is {leader_name}"
                if leader_name
                else "this manager is not the leader and knows of no leader"
            )
        super().__init__(message)
        self.leader_name = leader_name
        self.leader_api_url = leader_api_url


class NoQuorumError(BackendError):
    """No leader can be elected or the leader cannot reach a majority (§5.2)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "no quorum: the swarm has no leader, or its leader cannot reach a majority "
            "of managers; writes and linearizable reads wait until a majority is back"
        )


class UnavailableError(BackendError):
    """Any other reason this manager cannot serve now (stopping, locked, timed out)."""


class StorageFullError(BackendError):
    """This manager cannot write its Raft log: its disk is full (HTTP 507).

    Writes and linearizable reads wait behind a write to the log, so they
    are refused at once; local reads (``?consistency=local``) still answer
    from what this manager has applied.  It resumes by itself once a write
    fits again.
    """

    http_status = 507


@runtime_checkable
class Backend(Protocol):
    """One manager as the HTTP API sees it.

    Every method may be called concurrently from many requests.  The API
    bounds every awaited call by about `request_timeout` itself, but the
    backend should also give up on its own within that time and say why with
    one of the errors above, which gives the client a better message than a
    bare timeout.
    """

    @property
    def name(self) -> str:
        """This manager's name, e.g. ``"manager1"`` (also its node's hostname)."""
        ...

    @property
    def store(self) -> Store:
        """This manager's replica of the state, read by the API (never written)."""
        ...

    @property
    def request_timeout(self) -> float:
        """Seconds a request may wait for Raft: a few election timeouts."""
        ...

    async def write(self, command: bytes, *, request_id: str | None = None) -> Result:
        """Commit ``command`` through Raft and return its result once applied here.

        On the leader only.  With a ``request_id`` (the client's X-Request-ID)
        the command runs inside a client session, so a retry of the same
        request is applied once and gets the first attempt's result (§8).
        A refusal by the state machine is a `Result` with ``error`` set, not
        an exception.  Raises `NotLeaderError` on a follower,
        `NoQuorumError` or `UnavailableError` when the entry cannot commit
        within `request_timeout` (it may still commit later).
        """
        ...

    async def read_barrier(self, timeout: float) -> None:
        """Return once ``store`` reflects every write acknowledged before the call.

        ReadIndex (§6.4 of the dissertation): the leader confirms it is still
        leader with a heartbeat round; a follower asks the leader for its
        commit index; either then waits until the local store has applied
        that index.  Raises `NoQuorumError` / `UnavailableError` if that cannot
        happen within ``timeout``; may raise `NotLeaderError` if this manager
        cannot serve linearizable reads as a follower (the API then forwards
        the read to the leader).
        """
        ...

    def data_key(self) -> DataKey:
        """The DEK new secrets are sealed with; `UnavailableError` if locked."""
        ...

    def raft_status(self) -> dict[str, Any]:
        """This manager's Raft state, served as ``GET /raft/status``.

        Keys as in `raft.runtime.node.RaftNode.status` (``role``, ``term``, ``leader``,
        ``commit_index``, ``applied_index``, ``last_log_index``, ... and
        ``peers`` on the leader), where ``leader`` is the leader's *name* or
        ``None``.  Must answer without a quorum: it is how users see that
        there is none.
        """
        ...

    async def transfer_leadership(self, target: str | None) -> str:
        """Hand leadership to ``target`` (a manager name), or to the most
        up-to-date follower when ``None`` (dissertation §3.10).

        Returns the name of the manager chosen.  Raises `NotLeaderError` on a
        follower (the API forwards), `cluster.state.errors.NotFound` for an unknown
        target, `cluster.state.errors.FailedPrecondition` if it cannot be done.
        """
        ...

    def info(self) -> dict[str, Any]:
        """Facts for ``GET /info`` that the store does not hold; every key optional.

        ``Managers`` (int, Raft voters), ``Nodes`` (int), ``LocalNodeState``
        (``"active"`` / ``"locked"`` / ...), and ``Raft`` with
        ``HeartbeatTick``, ``ElectionTick`` (ticks), ``SnapshotInterval``
        (entries) and ``TickInterval`` (seconds).  The API falls back to the
        store for anything missing.
        """
        ...
