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

To know *when* to renew, a node needs only the two dates of its own
certificate, and every manager waits for that moment from the start.
`Validity.of_pem` reads them from the certificate's DER with the standard
library (RFC 5280 §4.1: the fifth field of ``tbsCertificate``), so that an
idle manager never loads the ``cryptography`` package (about 9 MB of
memory) just to wait; the renewal itself, weeks later, does.
"""

from __future__ import annotations

import base64
import datetime
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "DEFAULT_EXPIRY",
    "MIN_EXPIRY",
    "TEST_EXPIRY_ENV",
    "HasValidity",
    "Validity",
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


class HasValidity(Protocol):
    """A certificate's two dates: a `Validity`, or a parsed ``x509.Certificate``."""

    @property
    def not_valid_before_utc(self) -> datetime.datetime: ...

    @property
    def not_valid_after_utc(self) -> datetime.datetime: ...


@dataclass(frozen=True, slots=True)
class Validity:
    """The validity period of a certificate (named as ``x509.Certificate`` names it)."""

    not_valid_before_utc: datetime.datetime
    not_valid_after_utc: datetime.datetime

    @classmethod
    def of_pem(cls, pem: bytes) -> Validity:
        """The validity of the first certificate in ``pem``; ValueError if it has none."""
        text = pem.decode("ascii", "replace")
        begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
        start = text.find(begin)
        stop = text.find(end, start)
        if start < 0 or stop < 0:
            raise ValueError("no PEM certificate found")
        der = base64.b64decode("".join(text[start + len(begin) : stop].split()))
        return cls.of_der(der)

    @classmethod
    def of_der(cls, der: bytes) -> Validity:
        """Walk ``Certificate { tbsCertificate { [0] version?, serialNumber,
        signature, issuer, validity { notBefore, notAfter } ... } ... }``."""
        _, pos, _ = _tlv(der, 0, 0x30)  # Certificate
        _, pos, _ = _tlv(der, pos, 0x30)  # tbsCertificate
        if der[pos] == 0xA0:  # [0] EXPLICIT version, absent in v1 certificates
            pos = _tlv(der, pos, 0xA0)[2]
        for tag in (0x02, 0x30, 0x30):  # serialNumber, signature, issuer: skipped
            pos = _tlv(der, pos, tag)[2]
        _, pos, _ = _tlv(der, pos, 0x30)  # validity
        times = []
        for _ in range(2):
            tag, start, stop = _tlv(der, pos, None)
            times.append(_asn1_time(tag, der[start:stop]))
            pos = stop
        return cls(times[0], times[1])


def _tlv(der: bytes, pos: int, want: int | None) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``pos``."""
    if pos + 2 > len(der):
        raise ValueError("truncated certificate")
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:  # long form: the next (length & 0x7F) bytes hold the length
        size = length & 0x7F
        length = int.from_bytes(der[pos : pos + size], "big")
        pos += size
    if (want is not None and tag != want) or pos + length > len(der):
        raise ValueError("not a certificate in the expected DER shape")
    return tag, pos, pos + length


def _asn1_time(tag: int, raw: bytes) -> datetime.datetime:
    """UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ),
    the only two forms RFC 5280 §4.1.2.5 allows, in UTC."""
    text = raw.decode("ascii")
    if tag == 0x17:
        year = int(text[:2])
        text = str(1900 + year if year >= 50 else 2000 + year) + text[2:]
    elif tag != 0x18:
        raise ValueError("a certificate time is neither UTCTime nor GeneralizedTime")
    moment = datetime.datetime.strptime(text, "%Y%m%d%H%M%SZ")
    return moment.replace(tzinfo=datetime.UTC)


def renewal_time(cert: HasValidity, rng: random.Random) -> datetime.datetime:
    """When to renew ``cert``: a random point in the last 20-50 % of its lifetime."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * rng.uniform(RENEW_FROM, RENEW_TO)
