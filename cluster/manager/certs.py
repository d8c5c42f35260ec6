"""A manager renews its own certificate, through the leader's swarm port.

Theory of operation
-------------------
`cluster.security.renewal.Renewer` decides *when*; this module says *how*
for a manager: ``POST /renew`` to the swarm port of the manager that Raft
says leads (ourselves included -- the CA is wherever the leader is), over
mutual TLS with the certificate being renewed.  A follower that is asked
answers 421 naming the leader, which is then called once.  The client's
TLS context follows the files (`raft.runtime.tls.FreshContexts`), so after a
renewal the next request shows the new certificate.
"""

from __future__ import annotations

import random
from typing import Any

import aiohttp

from cluster.manager.peers import Peers
from cluster.security.renewal import Renewer
from raft.runtime.node import RaftNode
from raft.runtime.tls import FreshContexts, TLSFiles

__all__ = ["ManagerRenewal"]


class ManagerRenewal:
    """The ``ask`` of a manager's `Renewer`: the leader's swarm port, found through Raft."""

    def __init__(self, name: str, node: RaftNode, peers: Peers, timeout: float) -> None:
        self.name = name
        self.node = node
        self.peers = peers
        self.timeout = timeout
        self._client: FreshContexts | None = None

    def renewer(self, files: TLSFiles, rng: random.Random) -> Renewer:
        self._client = FreshContexts(files, TLSFiles.client_context)
        return Renewer(self.name, files, self.ask, rng)

    def _leader_url(self) -> str:
        leader = self.node.status().get("leader")
        peer = self.peers.known.get(leader) if isinstance(leader, str) else None
        if peer is None or not peer.swarm_url:
            raise OSError("no leader with a swarm port is known yet")
        return peer.swarm_url

    async def ask(self, csr: bytes) -> tuple[bytes, bytes]:
        """POST /renew to the leader; follow one 421 redirection."""
        assert self._client is not None, "renewer() first"
        url = self._leader_url()
        timeout = aiohttp.ClientTimeout(total=self.timeout * 2 + 1)
        connector = aiohttp.TCPConnector(ssl=self._client.get())
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            for _ in range(2):
                try:
                    async with http.post(url + "/renew", json={"CSR": csr.decode()}) as resp:
                        body: Any = await resp.json(content_type=None)
                except aiohttp.ClientError as e:
                    raise OSError(f"{url}: {type(e).__name__} {e}") from None
                if resp.status == 421 and isinstance(body, dict) and body.get("LeaderURL"):
                    url = str(body["LeaderURL"])
                    continue
                message = body.get("message") if isinstance(body, dict) else None
                if resp.status != 200 or not isinstance(body, dict):
                    raise OSError(f"{url}: {resp.status} {message or body}")
                return body["Certificate"].encode(), body["CACertificate"].encode()
        raise OSError("the leader moved while renewing")
