"""How long node certificates live, and when a node renews its own.

Theory of operation
-------------------
As in Swarm, a node certificate is valid for the cluster's *certificate
expiry* (``swarm update --cert-expiry``, 90 days unless changed, at least one
hour), kept in the replicated cluster object as
``Spec.CAConfig.NodeCertExpiry`` in nanoseconds, Docker's unit.  The leader
reads it whenever it signs.

A node renews long before its certificate runs out: at a random point in
the last 20-50 % of its lifetime (`renewal_time`), the way Swarm's nodes
do.  The randomness spreads the renewals of nodes that joined together,
so the leader is never asked by all of them at once; the margin leaves
time to retry through a leader change or a short outage.  A node that
missed the whole margin holds an expired certificate, which TLS refuses
everywhere: it must join again, as in Docker.

Tests cannot wait hours: ``SWARMRAFT_TEST_CERT_EXPIRY_SECONDS`` in the
environment of the manager that signs overrides the expiry with a number
of seconds (below the one-hour minimum).  Its name says what it is for;
nothing in the project sets it but tests.
"""

from __future__ import annotations

import datetime
import os
import random
from collections.abc import Mapping
from typing import Any

from cryptography import x509

__all__ = [
    "DEFAULT_EXPIRY",
    "MIN_EXPIRY",
    "TEST_EXPIRY_ENV",
    "check_expiry",
    "expiry_of",
    "renewal_time",
]

DEFAULT_EXPIRY = datetime.timedelta(days=90)
MIN_EXPIRY = datetime.timedelta(hours=1)
#: Test-only: the certificate expiry in seconds, overriding the cluster's.
TEST_EXPIRY_ENV = "SWARMRAFT_TEST_CERT_EXPIRY_SECONDS"

#: Renew when this fraction of the lifetime has passed, drawn uniformly:
#: 50-80 % elapsed is "the last 20-50 %" left.
RENEW_FROM, RENEW_TO = 0.5, 0.8


def expiry_of(
    cluster_spec: Mapping[str, Any] | None, environ: Mapping[str, str] = os.environ
) -> datetime.timedelta:
    """The lifetime of a certificate signed now: the test override, else the spec's."""
    override = environ.get(TEST_EXPIRY_ENV)
    if override:
        return datetime.timedelta(seconds=float(override))
    ca_config = (cluster_spec or {}).get("CAConfig") or {}
    nanos = ca_config.get("NodeCertExpiry")
    if isinstance(nanos, int) and nanos > 0:
        return datetime.timedelta(microseconds=nanos // 1000)
    return DEFAULT_EXPIRY


def check_expiry(cluster_spec: Mapping[str, Any]) -> None:
    """ValueError (one line, for the user) unless the spec's expiry is a whole
    number of nanoseconds of at least `MIN_EXPIRY`, as Docker requires."""
    nanos = (cluster_spec.get("CAConfig") or {}).get("NodeCertExpiry")
    if nanos is None:
        return
    if not isinstance(nanos, int) or isinstance(nanos, bool):
        raise ValueError("CAConfig.NodeCertExpiry must be an integer (nanoseconds)")
    if nanos < MIN_EXPIRY.total_seconds() * 1e9:
        raise ValueError(
            f"minimum certificate expiry is {MIN_EXPIRY.total_seconds() / 3600:g}h "
            f"(asked: {nanos / 1e9:g}s)"
        )


def renewal_time(cert: x509.Certificate, rng: random.Random) -> datetime.datetime:
    """When to renew ``cert``: a random point in the last 20-50 % of its lifetime."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * rng.uniform(RENEW_FROM, RENEW_TO)
