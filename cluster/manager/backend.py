"""What the API asks of Raft: writes in a client session, read barriers, transfers.

Theory of operation
-------------------
The HTTP API (`cluster.api`) is written against `cluster.api.backend.Backend`;
most of that protocol is a conversation with the Raft node, and this module
holds it.  It turns the node's exceptions into the API's errors
(`NotLeaderError`, `NoQuorumError`, `UnavailableError`, and `StorageFullError`
-- HTTP 507 -- while this manager's disk is full) with a message a user can
act on, so no Raft exception ever reaches a client.

Writes are exactly-once: every command travels in a client session
(`raft.core.session`, dissertation §6.3) owned by this manager, so a proposal
retried after a timeout -- or an HTTP request retried with the same
``X-Request-ID`` -- is applied once and answered with the first result.  The
session's id is the log index of its register entry; it belongs to the term
in which it was registered, so a new leadership opens a new one
(`RaftBackend.drop_session`, called by the duties loop).

Apart from the keys and the leader's duties because it is the one part every
request goes through, and the one part that must never hang: every call is
bounded by the request timeout.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
from collections.abc import Callable
from typing import Any

from cluster.api.backend import NoQuorumError, StorageFullError, UnavailableError
from cluster.manager.machine import decode_answer
from cluster.manager.peers import Peers
from cluster.manager.settings import ManagerSettings
from cluster.state.errors import FailedPrecondition, NotFound
from cluster.state.store import Result, Store
from raft.core.protocol import ConfChangeError, NotLeader, ProposalDropped
from raft.core.session import CommandFailed, SessionError, encode_command, encode_register
from raft.runtime.node import DiskFull, NodeStopped, ProposalLost, ProposalTimeout, RaftNode

__all__ = ["RaftBackend"]

#: Remembered X-Request-IDs (each maps to the session sequence number it used).
REQUEST_ID_MEMORY = 4096


class RaftBackend:
    """Writes, reads and leadership transfers through this manager's Raft node."""

    def __init__(
        self,
        settings: ManagerSettings,
        node: RaftNode,
        store: Store,
        peers: Peers,
        check_unlocked: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.node = node
        self.store = store
        self.peers = peers
        #: Raises `UnavailableError` while autolock keeps this manager locked.
        self.check_unlocked = check_unlocked
        # Our client session (§6.3): the id is the log index of its register
        # entry; it belongs to the term in which it was registered.
        self._client_id: int | None = None
        self._seq = itertools.count(1)
        self._in_flight: set[int] = set()
        self._session_lock = asyncio.Lock()
        self._by_request: collections.OrderedDict[str, int] = collections.OrderedDict()

    @property
    def request_timeout(self) -> float:
        return self.settings.request_timeout

    # ------------------------------------------------------------ writes

    async def write(self, command: bytes, *, request_id: str | None = None) -> Result:
        self.check_unlocked()
        for attempt in range(2):
            client = await self._session()
            if request_id is not None and request_id in self._by_request:
                seq = self._by_request[request_id]
            else:
                seq = next(self._seq)
                if request_id is not None:
                    self._by_request[request_id] = seq
                    while len(self._by_request) > REQUEST_ID_MEMORY:
                        self._by_request.popitem(last=False)
            ack = min(self._in_flight, default=seq)
            self._in_flight.add(seq)
            try:
                answer = await self._propose(encode_command(client, seq, command, ack=ack))
            finally:
                self._in_flight.discard(seq)
            if isinstance(answer, SessionError):
                if answer.kind == "expired" and attempt == 0:
                    # Our session was dropped (or never reached this log): the
                    # command was not applied; open a new session and retry.
                    self._client_id = None
                    self._by_request.pop(request_id or "", None)
                    continue
                raise UnavailableError(f"the outcome of this write is unknown: {answer.detail}")
            if isinstance(answer, CommandFailed):
                raise UnavailableError(f"the state machine failed: {answer.message}")
            return decode_answer(answer)
        raise UnavailableError("could not open a client session")

    def drop_session(self) -> None:
        """Forget our session: the next write registers a new one (a new leadership)."""
        self._client_id = None

    async def _session(self) -> int:
        if self._client_id is not None:
            return self._client_id  # the usual case: no lock to take on every write
        async with self._session_lock:  # one registration, however many writers wait
            return await self._open_session()

    async def _open_session(self) -> int:
        if self._client_id is None:
            client = await self._propose(encode_register())
            if not isinstance(client, int):
                raise UnavailableError(f"could not open a client session: {client}")
            self._client_id = client
            self._seq = itertools.count(1)
            self._in_flight.clear()
            self._by_request.clear()
        return self._client_id

    async def _propose(self, data: bytes) -> Any:
        try:
            return await self.node.propose(data, timeout=self.request_timeout)
        except NotLeader as e:
            raise self.peers.not_leader(e.leader) from None
        except ProposalDropped as e:
            raise UnavailableError(str(e)) from None
        except ProposalTimeout:
            raise NoQuorumError(
                f"the write did not commit within {self.request_timeout:g}s: the leader "
                "cannot reach a majority of managers (it may still commit later)"
            ) from None
        except ProposalLost:
            raise UnavailableError(
                "leadership changed while the write was in flight and it was not kept; "
                "retry the request"
            ) from None
        except NodeStopped as e:
            raise UnavailableError(f"this manager is stopping: {e}") from None
        except DiskFull as e:
            raise StorageFullError(str(e)) from None

    # ------------------------------------------------------------ reads

    async def read_barrier(self, timeout: float) -> None:
        self.check_unlocked()
        try:
            await self.node.read_index(timeout=timeout)
        except NotLeader as e:
            # No leader to ask, or it stepped down mid-read: the API answers
            # 503 (or forwards the read to the leader named).
            if e.leader is None:
                raise NoQuorumError() from None
            raise self.peers.not_leader(e.leader) from None
        except ProposalTimeout:
            raise NoQuorumError(
                f"no leader confirmed a read within {timeout:g}s: there is no quorum"
            ) from None
        except NodeStopped as e:
            raise UnavailableError(f"this manager is stopping: {e}") from None
        except DiskFull as e:
            raise StorageFullError(str(e)) from None

    # ------------------------------------------------------------ leadership

    def require_leader(self) -> None:
        """`NotLeaderError` (the API forwards) unless this manager leads now."""
        self.check_unlocked()
        if not self.node.is_leader:
            raise self.peers.not_leader(self.node.status().get("leader"))

    async def transfer_leadership(self, target: str | None) -> str:
        self.check_unlocked()
        if target is not None and target not in self.peers.known:
            if self.store.find_by_name("node", target) is not None:
                raise FailedPrecondition(f"{target} is not a manager: only a manager can lead")
            raise NotFound(f"node {target} not found")
        try:
            chosen = self.node.transfer_leadership(target)
        except NotLeader as e:
            raise self.peers.not_leader(e.leader) from None
        except ConfChangeError as e:
            raise FailedPrecondition(str(e)) from None
        # Wait (bounded) for the outcome so the caller learns whether it worked (§3.10).
        deadline = time.monotonic() + self.settings.election_timeout * 2
        while time.monotonic() < deadline:
            leader = self.node.status().get("leader")
            if leader == chosen:
                return chosen
            await asyncio.sleep(self.settings.tick_interval)
        raise FailedPrecondition(f"leadership transfer to {chosen} did not complete")
