"""A fake manager for the HTTP API's tests: commands go straight into a `Store`.

`FakeBackend` implements `cluster.api.backend.Backend` without Raft.  Its
``mode`` decides how it answers, so one test can play every situation the
API must handle:

* ``"leader"``: writes are applied at once (with client sessions: a repeated
  request ID gets the first result back), barriers pass;
* ``"follower"``: writes and transfers raise `NotLeaderError` naming
  ``leader_name`` / ``leader_url`` (``None`` for "no known leader"); reads
  pass, because tests let a follower share the leader's `Store` to play a
  caught-up replica;
* ``"no-quorum"``: writes, barriers and transfers raise `NoQuorumError`;
* ``"slow"``: they never return, to check that the API bounds the wait.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from cluster.api.backend import NoQuorumError, NotLeaderError
from cluster.control.dispatcher import Dispatcher
from cluster.security import crypto
from cluster.security.pki import CertificateAuthority, root_digest
from cluster.state import commands as c
from cluster.state.errors import NotFound
from cluster.state.store import Result, Store

NOW = "2024-05-01T12:00:00Z"
MODES = ("leader", "follower", "no-quorum", "slow")

#: Node IDs chosen so that ``aa`` is an ambiguous prefix and ``bb`` is not.
NODE_IDS = {
    "manager1": "aa1manager1xxxxxxxxxxxxxx",
    "manager2": "aa2manager2xxxxxxxxxxxxxx",
    "manager3": "aa3manager3xxxxxxxxxxxxxx",
    "worker1": "bb1worker1xxxxxxxxxxxxxxx",
}
MANAGERS = ("manager1", "manager2", "manager3")


class FakeBackend:
    """One fake manager; see the module docstring for the modes."""

    def __init__(
        self,
        name: str = "manager1",
        store: Store | None = None,
        *,
        mode: str = "leader",
        request_timeout: float = 0.3,
        dek: crypto.DataKey | None = None,
    ) -> None:
        self.name = name
        self.store = store if store is not None else Store()
        self.mode = mode
        self.request_timeout = request_timeout
        self.dek = dek or crypto.generate_dek()
        self.leader_name: str | None = "manager1"
        self.leader_url: str | None = None
        #: Every command applied, to check what reached the "log".
        self.commands: list[bytes] = []
        #: The request ID of every write call, in order.
        self.request_ids: list[str | None] = []
        self.transfers: list[str | None] = []
        #: Commands this replica has not applied yet; a read barrier applies them,
        #: playing a follower (or a new leader) that lags behind the commit index.
        self.lagging: list[bytes] = []
        #: A follower that cannot serve linearizable reads itself.
        self.reads_need_leader = False
        self._sessions: dict[str, Result] = {}

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self._mode = mode

    async def _gate(self) -> None:
        """Answer as the mode says for anything that needs the leader or a quorum."""
        if self.mode == "follower":
            raise NotLeaderError(self.leader_name, self.leader_url)
        if self.mode == "no-quorum":
            raise NoQuorumError()
        if self.mode == "slow":
            await asyncio.sleep(3600)

    def apply(self, command: bytes) -> Result:
        """Append a command to the fake log, as the manager's own loops would."""
        self.commands.append(command)
        return self.store.apply(self.store.applied_index + 1, command)

    def ok(self, command: bytes) -> Any:
        return self.apply(command).unwrap()

    # -- the Backend protocol ---------------------------------------------------

    async def write(self, command: bytes, *, request_id: str | None = None) -> Result:
        self.request_ids.append(request_id)
        await self._gate()
        if request_id is not None and request_id in self._sessions:
            return self._sessions[request_id]
        result = self.apply(command)
        if request_id is not None:
            self._sessions[request_id] = result
        return result

    async def read_barrier(self, timeout: float) -> None:
        if self.mode != "follower" or self.reads_need_leader:
            await self._gate()
        while self.lagging:
            self.apply(self.lagging.pop(0))

    def data_key(self) -> crypto.DataKey:
        return self.dek

    def raft_status(self) -> dict[str, Any]:
        applied = self.store.applied_index
        leader = None if self.mode in ("no-quorum", "slow") else self.leader_name
        if self.mode == "leader":
            leader = self.name
        return {
            "id": self.name,
            "role": "leader" if self.mode == "leader" else "follower",
            "term": 3,
            "leader": leader,
            "vote": leader,
            "commit_index": applied,
            "applied_index": applied,
            "last_log_index": applied,
            "last_log_term": 3,
            "snapshot_index": 0,
        }

    async def transfer_leadership(self, target: str | None) -> str:
        await self._gate()
        if target is not None and target not in MANAGERS:
            raise NotFound(f"manager {target} not found")
        chosen = target or next(m for m in MANAGERS if m != self.name)
        self.transfers.append(target)
        return chosen

    def info(self) -> dict[str, Any]:
        return {
            "Managers": len(MANAGERS),
            "Raft": {
                "HeartbeatTick": 1,
                "ElectionTick": 10,
                "SnapshotInterval": 1000,
                "TickInterval": 0.05,
            },
        }


def bootstrap(backend: FakeBackend) -> FakeBackend:
    """What ``swarm init`` and the joins leave: cluster, DEK, three managers, a worker."""
    rng = random.Random(1)
    backend.ok(c.init_cluster(c.new_id(rng), NOW, c.new_join_token(rng), c.new_join_token(rng)))
    backend.ok(c.put_data_key(crypto.wrap_dek(backend.dek, crypto.generate_kek()), NOW))
    for name, node_id in NODE_IDS.items():
        role = "manager" if name in MANAGERS else "worker"
        backend.ok(c.create_node(node_id, NOW, name, role=role, labels={"zone": name[-1]}))
    backend.ok(
        c.set_node_status(
            NODE_IDS["manager1"],
            NOW,
            manager={"Leader": True, "Reachability": "reachable", "Addr": "127.0.0.1:7001"},
        )
    )
    return backend


class SwarmBackend(FakeBackend):
    """The fake manager plus what the swarm port needs: a CA and swarm URLs."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.cluster_id = "cluster-a"
        self.ca = CertificateAuthority.create(self.cluster_id)
        self.dispatcher = Dispatcher(lambda: 0.0)
        self.swarm_urls = {
            "manager1": "https://127.0.0.1:9001",
            "manager2": "https://127.0.0.1:9002",
        }

    async def read_barrier(self, timeout: float) -> None:
        await asyncio.sleep(0.01)  # real barriers and writes wait: let joins interleave
        await super().read_barrier(timeout)

    async def write(self, command: bytes, *, request_id: str | None = None) -> Any:
        await asyncio.sleep(0.01)
        return await super().write(command, request_id=request_id)

    def root_ca_pem(self) -> bytes:
        return self.ca.cert_pem()

    def certificate_authority(self) -> CertificateAuthority:
        return self.ca

    def trust_bundle_pem(self) -> bytes:
        return self.ca.cert_pem()  # no rotation in the fake

    def renewal_ca(self) -> tuple[CertificateAuthority, bytes, str]:
        return self.ca, b"", root_digest(self.ca.cert)

    def require_leader(self) -> None:
        if self.mode == "follower":
            raise NotLeaderError(self.leader_name, None)
