"""The managers this manager knows: where to dial them, where to send a client.

A separate module because several parts of the manager read the same list
and one part changes it: the duties loop learns managers that joined after
us (`Peers.learn`), while the backend turns "not the leader, ask X" into
X's API URL, the status names the leader's URL, and the leader's duties
walk the managers to report their reachability.  They all hold the same
`Peers` object, so a manager learnt once is seen by all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.api.backend import NotLeaderError
from cluster.manager import joins
from cluster.state.store import Store

__all__ = ["Peer", "Peers"]


@dataclass(frozen=True, slots=True)
class Peer:
    """Another manager as this one knows it."""

    node_id: str
    raft: tuple[str, int]
    api_url: str
    #: Its swarm port (`cluster.api.swarm`), where nodes talk over mutual TLS.
    swarm_url: str | None = None


class Peers:
    """Every manager we know of: those of our config, then those that joined
    later, learnt from their node objects (`joins.learn_peers`)."""

    def __init__(self, name: str, initial: dict[str, Peer]) -> None:
        self.name = name
        self.known: dict[str, Peer] = dict(initial)

    def not_leader(self, leader: str | None) -> NotLeaderError:
        """The error that sends a client to ``leader``'s API (the API forwards)."""
        peer = self.known.get(leader) if leader else None
        return NotLeaderError(leader, peer.api_url if peer else None)

    def api_url(self, name: str | None) -> str | None:
        """A manager's API URL, or None if we do not know it."""
        return self.known[name].api_url if name in self.known else None

    def learn(self, store: Store) -> list[str]:
        """Managers that joined after us: their addresses, from their node objects.

        Returns the names whose address is new or changed (empty: nothing new).
        """
        learnt = joins.learn_peers(store, self.known, Peer, self.name)
        if learnt is None:
            return []
        changed = sorted(n for n in learnt if self.known.get(n) != learnt[n])
        self.known = learnt  # type: ignore[assignment]
        return changed

    def raft_addresses(self) -> dict[str, tuple[str, int]]:
        """Every manager's Raft address by name, for the transport to dial."""
        return {name: p.raft for name, p in self.known.items()}
