"""The newcomer's side of joining a swarm: from a join token to a certificate.

Theory of operation
-------------------
This is what ``docker swarm join --token TOKEN`` does before a node first
runs, done here by the supervisor for the process it is about to start:

1. Make the node's private key; it never leaves this machine's keys
   directory.
2. Fetch the root certificate from a manager's swarm port (``GET /ca``).
   Nothing can be verified yet, so the connection is not; instead the
   certificate's digest must equal the one in the token
   (`cluster.security.pki.digest_matches`).  A manager of another swarm, or anyone
   in the middle, cannot produce a root with that digest.
3. From then on trust only that root: ``POST /join`` with the token and a
   signing request, over a connection whose server certificate is checked
   against it.  The leader decides the role from the token and answers with
   the certificate; a follower answers 421 naming the leader, and we ask
   the leader.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from cluster.client.http import ApiError, Unreachable, fetch, request
from cluster.local.layout import ClusterError
from cluster.security.pki import digest_matches, make_csr, token_digest

__all__ = ["Joined", "join_swarm"]


@dataclass(frozen=True)
class Joined:
    """What the swarm gave us: who we are now, and the certificates to prove it."""

    node_id: str
    hostname: str
    role: str
    certificate: x509.Certificate
    ca_pem: bytes
    key: ec.EllipticCurvePrivateKey


def _fetch_root(url: str, timeout: float) -> bytes:
    """The root certificate a manager serves (PEM), fetched *without* verification:
    the caller checks it against the digest in the join token instead."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    try:
        return fetch(f"{url}/ca", timeout=timeout, context=unverified, limit=64 * 1024)
    except ApiError as e:  # not a swarm port: as good as no manager there
        raise Unreachable(f"{url}/ca: {e.status} {e.message}") from None


def _trusting(ca_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode())
    ctx.check_hostname = False  # managers are named by their certificate's CN, not a host
    return ctx


def join_swarm(
    urls: Sequence[str],
    token: str,
    *,
    hostname: str | None = None,
    role: str | None = None,
    endpoints: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> Joined:
    """Join through any of ``urls`` (managers' swarm URLs); raise `ClusterError` if refused.

    ``role``: the role we expect; the swarm refuses (403) if the token grants
    another.  ``endpoints``: our Raft address, API and swarm URLs, needed if
    the token makes us a manager.
    """
    if token_digest(token.strip()) is None:
        raise ClusterError("that is not a join token (expected SWMTKN-1-<digest>-<secret>)")
    token = token.strip()
    key = ec.generate_private_key(ec.SECP256R1())
    body: dict[str, object] = {"JoinToken": token, "CSR": make_csr(key).decode()}
    if hostname:
        body["Hostname"] = hostname
    if role:
        body["Role"] = role
    if endpoints:
        body["Endpoints"] = endpoints
    problems = []
    queue = list(urls)
    hops = 0
    while queue and hops < 2 * len(urls) + 3:
        url = queue.pop(0).rstrip("/")
        hops += 1
        try:
            ca_pem = _fetch_root(url, timeout)
            try:
                ca = x509.load_pem_x509_certificate(ca_pem)
            except ValueError:
                problems.append(f"{url}: no root certificate")
                continue
            if not digest_matches(token, ca):
                raise ClusterError(
                    f"the root CA of {url} does not match the token: not this swarm's "
                    "token, or not this swarm's manager"
                )
            answer = request(
                "POST", f"{url}/join", body, timeout=timeout, context=_trusting(ca_pem)
            )
        except Unreachable as e:
            problems.append(str(e))
            continue
        except ApiError as e:
            hint = e.body.get("LeaderURL") if isinstance(e.body, dict) else None
            if e.status == 421 and isinstance(hint, str):
                queue.insert(0, hint)  # ask the leader next
                continue
            if e.status in (503, 421):
                problems.append(f"{url}: {e.message}")
                continue
            raise ClusterError(f"the swarm refused to let this node join: {e.message}") from None
        cert = x509.load_pem_x509_certificate(str(answer["Certificate"]).encode())
        return Joined(
            node_id=str(answer["NodeID"]),
            hostname=str(answer["Hostname"]),
            role=str(answer["Role"]),
            certificate=cert,
            ca_pem=ca_pem,
            key=key,
        )
    detail = "; ".join(problems[-3:]) or "no manager to ask"
    raise ClusterError(f"could not join the swarm: {detail}")
