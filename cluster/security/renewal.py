"""A node's own certificate renewal loop (Swarm's automatic renewal).

Theory of operation
-------------------
`Renewer.run` waits until `expiry.renewal_time` of the certificate in the
node's files, then makes a fresh key and a signing request and hands the
request to ``ask`` -- the caller's way to reach the leader's swarm port
(``POST /renew``), since how to talk HTTP is not this package's business.
The answer (certificate and root bundle, PEM) replaces the files
(`pki.replace_node_files`), and the next renewal is planned from the new
certificate.  A failed request is retried every `RETRY` seconds (less for
short-lived test certificates) until the certificate runs out; then one
clear line says so, because from then on every peer refuses it.

`renew_soon` asks for a renewal now (a root CA rotation wants every node on
the new root).  The key never leaves the node: only its public half
travels, inside the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cluster.security.expiry import HasValidity, Validity, renewal_time
from raft.runtime.tls import TLSFiles

if TYPE_CHECKING:
    from cryptography import x509

# ``cryptography`` (and `pki`, built on it) is imported where a renewal or a
# signature check needs it: waiting for the renewal time reads the certificate's
# dates with the standard library (`expiry.Validity`).

__all__ = ["RETRY", "Renewer", "issued_by"]

logger = logging.getLogger("cluster.security.renewal")

#: Seconds between attempts after a failed renewal (at most).
RETRY = 5.0
#: Never sleep longer than this at once: a rotation may ask for a renewal.
_NAP = 30.0
#: Seconds at least between two renewals, whatever the certificates say:
#: a node never floods the leader with requests.
MIN_GAP = 0.5

Ask = Callable[[bytes], Awaitable[tuple[bytes, bytes]]]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def issued_by(cert: x509.Certificate, root_pem: str) -> bool:
    """Was ``cert`` signed by the key of the root in ``root_pem``?"""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    root = x509.load_pem_x509_certificate(root_pem.encode())
    try:
        cert.verify_directly_issued_by(root)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


class Renewer:
    """Renews one node's certificate before it expires, through ``ask``."""

    def __init__(self, name: str, files: TLSFiles, ask: Ask, rng: random.Random) -> None:
        self.name = name
        self.files = files
        self._ask = ask
        self._rng = rng
        self._soon = asyncio.Event()
        #: Renewals done (status and tests read it).
        self.renewals = 0
        self._expired_logged = False

    def certificate(self) -> x509.Certificate:
        from cryptography import x509

        return x509.load_pem_x509_certificate(Path(self.files.cert).read_bytes())

    def validity(self) -> Validity:
        """The dates of our certificate, without the ``cryptography`` package."""
        return Validity.of_pem(Path(self.files.cert).read_bytes())

    def renew_soon(self) -> None:
        """Renew at the next chance, whatever the certificate's age."""
        self._soon.set()

    async def run(self) -> None:
        """Forever: wait for the renewal time (or `renew_soon`), renew, repeat."""
        while True:
            cert = self.validity()
            due = renewal_time(cert, self._rng)
            while not self._soon.is_set() and _now() < due:
                wait = min(_NAP, (due - _now()).total_seconds())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._soon.wait(), timeout=max(wait, 0.01))
            self._soon.clear()
            await self._renew_until_done(cert)
            await asyncio.sleep(MIN_GAP)

    async def _renew_until_done(self, cert: HasValidity) -> None:
        lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
        pause = min(RETRY, max(lifetime / 100, 0.2))
        while True:
            if _now() >= cert.not_valid_after_utc and not self._expired_logged:
                self._expired_logged = True
                logger.error(
                    "%s: our certificate expired at %s before it could be renewed; "
                    "every peer now refuses it: join the swarm again",
                    self.name,
                    cert.not_valid_after_utc.isoformat(timespec="seconds"),
                )
            try:
                await self.renew_once()
                return
            except (OSError, ValueError, TimeoutError) as e:
                logger.warning("%s: certificate renewal failed, will retry: %s", self.name, e)
            await asyncio.sleep(pause)

    async def renew_once(self) -> x509.Certificate:
        """One renewal: a new key, a request through ``ask``, the files replaced."""
        from cryptography import x509

        from cluster.security import pki

        key, csr = pki.new_request()
        cert_pem, ca_pem = await self._ask(csr)
        cert = x509.load_pem_x509_certificate(cert_pem)
        if cert.public_key() != key.public_key():
            raise ValueError("the renewed certificate is not for the key we sent")
        pki.replace_node_files(self.files, ca_pem, cert_pem, key)
        self.renewals += 1
        self._expired_logged = False
        logger.info(
            "%s: certificate renewed, valid until %s",
            self.name,
            cert.not_valid_after_utc.isoformat(timespec="seconds"),
        )
        return cert
