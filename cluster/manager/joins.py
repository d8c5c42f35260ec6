"""What a manager needs so that nodes can join: the root CA, and who the managers are.

Theory of operation
-------------------
Two facts must be the same on every manager, so they live in the
replicated store rather than in any one manager's files:

* **The root CA.**  ``up`` made it and gave the founding managers its key
  (``tls["ca_key"]`` in their config).  The first leader seals that key
  with the swarm's data key -- exactly as a secret's data is sealed
  (`cluster.security.crypto`, AES-GCM, the AAD binding it to its row) -- and
  replicates it beside the certificate (`seal_root_ca`).  Any later leader,
  a manager that joined after ``up`` included, opens it to sign newcomers'
  requests (`open_root_ca`); with autolock it is as locked as the secrets.
* **The managers' addresses.**  A manager that joins later is known to the
  others only through its node object: ``ManagerStatus.Addr`` is its Raft
  address and ``Description.Endpoints`` its API and swarm URLs
  (`cluster.api.swarm` writes them at join).  `learn_peers` merges those into
  what a manager knows, so the Raft transport can dial the newcomer and the
  leader can add it to the configuration (dissertation §4.2.1).

An abandoned join
-----------------
A manager join is one write (the node object, state ``unknown``), after
which the leader adds the newcomer as a learner.  If the client gave up
before that write committed -- or the newcomer's process never started --
nobody comes to claim it: the node object and the learner would stay for
ever, and ``node ls`` would show a manager that never was.  `abandoned_joins`
names those: still ``unknown`` (no leader ever heard from them: the first
one that does marks them ready), created more than `ABANDONED_JOIN_AFTER`
seconds ago, and not heard by a leader that has led long enough to have
heard them if they ran.  The leader removes their node objects; Raft's
configuration then follows (`duties.LeaderDuties` removes the learner).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cluster.security import crypto
from cluster.state import commands
from cluster.state import objects as o
from cluster.state.errors import NotFound
from cluster.state.handlers import ROOT_CA_KEY
from cluster.state.store import Store

if TYPE_CHECKING:
    from cluster.security.pki import CertificateAuthority

# `cluster.security.pki` and the ``cryptography`` package under it (~9 MB of
# memory) are imported by the functions below, which run at swarm init, a
# join or a renewal, never in an idle manager.

__all__ = [
    "ABANDONED_JOIN_AFTER",
    "abandoned_joins",
    "endpoints_description",
    "learn_peers",
    "open_root_ca",
    "root_ca_digest",
    "seal_root_ca",
]


class PeerLike(Protocol):
    node_id: str
    raft: tuple[str, int]
    api_url: str
    swarm_url: str | None


def root_ca_digest(tls: Mapping[str, str] | None) -> str | None:
    """The digest join tokens carry, from our copy of the root certificate."""
    if not tls:
        return None
    from cryptography import x509

    from cluster.security.pki import root_digest

    try:
        cert = x509.load_pem_x509_certificate(Path(tls["ca"]).read_bytes())
    except (OSError, ValueError):
        return None
    return root_digest(cert)


def seal_root_ca(tls: Mapping[str, str] | None, dek: crypto.DataKey, now: float) -> bytes | None:
    """The command that replicates the root CA, sealed; None without a key to seal."""
    if not tls or "ca_key" not in tls:
        return None
    from cluster.security.pki import CertificateAuthority

    try:
        cert_pem = Path(tls["ca"]).read_bytes()
        key_pem = Path(tls["ca_key"]).read_bytes()
        CertificateAuthority.from_pem(cert_pem, key_pem)  # refuse to replicate garbage
    except (OSError, ValueError):
        return None
    sealed = crypto.encrypt_secret(dek, ROOT_CA_KEY, key_pem)
    return commands.put_root_ca(cert_pem.decode(), sealed, now)


def open_root_ca(store: Store, dek: crypto.DataKey) -> CertificateAuthority | None:
    """The CA from the store (None if this swarm has none: made before certificates)."""
    cluster = store.cluster()
    cert_pem = (cluster or {}).get("TLSInfo", {}).get("TrustRoot")
    if not cert_pem:
        return None
    try:
        sealed = store.sealed_secret(ROOT_CA_KEY)
    except NotFound:
        return None
    key_pem = crypto.decrypt_secret(dek, ROOT_CA_KEY, sealed)
    from cluster.security.pki import CertificateAuthority

    return CertificateAuthority.from_pem(cert_pem.encode(), key_pem)


#: Seconds a joined manager has to show up before its join is undone.
ABANDONED_JOIN_AFTER = 30.0


def abandoned_joins(
    store: Store,
    now: float,
    heard: Callable[[str], float | None],
    leading_for: float,
    after: float = ABANDONED_JOIN_AFTER,
) -> list[o.Obj]:
    """Manager nodes whose join nobody claimed (see the module docstring).

    ``now`` is wall-clock time (the store's timestamps are); ``heard(name)``
    when this leader last heard the node (None: never); ``leading_for`` how
    long it has led, in seconds.
    """
    if leading_for < after:
        return []  # a new leader has not had the time to hear everyone yet
    return [
        node
        for node in store.list(o.NODE)
        if node["Spec"].get("Role") == "manager"
        and node["Status"]["State"] == "unknown"
        and "Endpoints" in node.get("Description", {})
        and now - commands.parse_time(node["CreatedAt"]) > after
        and heard(node["Description"].get("Hostname", "")) is None
    ]


def endpoints_description(peer: PeerLike) -> dict[str, Any]:
    """``Description.Endpoints`` of a manager's node object."""
    out = {"Raft": f"{peer.raft[0]}:{peer.raft[1]}", "API": peer.api_url}
    if peer.swarm_url:
        out["Swarm"] = peer.swarm_url
    return {"Endpoints": out}


def learn_peers(
    store: Store, known: Mapping[str, PeerLike], make: Any, self_name: str
) -> dict[str, PeerLike] | None:
    """``known`` updated from the manager nodes' endpoints; None if nothing changed.

    ``make(node_id, (host, port), api_url, swarm_url)`` builds a peer.  A peer
    is never dropped: a demoted manager keeps its address (it may be promoted
    again).  A name whose node object now gives other endpoints -- a node
    removed, then its name given to a newcomer -- takes the new ones; our own
    entry is always our config's.
    """
    changed: dict[str, PeerLike] = {}
    # Called on every duty tick: copy only the nodes that carry endpoints (managers).
    for node in store.list(o.NODE, lambda n: "Endpoints" in n.get("Description", {})):
        name = node.get("Description", {}).get("Hostname")
        ends = node["Description"]["Endpoints"]
        if not name or name == self_name or not isinstance(ends, dict):
            continue
        host, _, port = str(ends.get("Raft", "")).rpartition(":")
        if not host or not port.isdigit() or not isinstance(ends.get("API"), str):
            continue
        peer = make(node["ID"], (host, int(port)), ends["API"], ends.get("Swarm"))
        if known.get(name) != peer:
            changed[name] = peer
    if not changed:
        return None
    return {**known, **changed}
