"""Root CA rotation (``swarm ca --rotate``), while the swarm keeps running.

Theory of operation
-------------------
Every certificate of the swarm chains to one root.  Replacing the root
cannot be one step: nodes learn of it at different moments, and each must
keep talking to every other throughout.  So, as in Swarm, four phases:

1. **Start** (``swarm update`` with ``CAConfig.ForceRotate`` raised, what
   ``swarm ca --rotate`` sends): the leader makes a new root and certifies
   it with the old one -- the *cross-signed* root
   (`cluster.security.pki.CertificateAuthority.cross_sign`) -- and replicates
   both, the new key sealed by the data key like the root's
   (``RootRotation`` in the cluster object, ``RootRotationInProgress``).
2. **Trust both**: every manager (each duty tick, `follow`) and every worker
   (from its heartbeat answer, `cluster.api.swarm`) writes a trust file
   holding the old *and* the new root, and asks its renewer for a new
   certificate now (`cluster.security.renewal.Renewer.renew_soon`).
3. **Reissue**: while rotating, ``POST /renew`` signs with the *new* root
   and answers the certificate followed by the cross-signed root.  A node
   that still trusts only the old root verifies it through that chain
   (leaf -> cross-signed new root -> old root); one that trusts both
   verifies old and new certificates alike.  Each signature is recorded
   in the node object (``Description.TLSInfo.CertIssuerDigest``), so the
   leader (and ``swarm ca --rotate``'s progress line, ``N/M nodes``) can
   count who is on the new root.
4. **Drop the old root**: once every node of the store holds a certificate
   of the new root, the leader makes the new root *the* root in one entry
   (its key re-sealed in the root's row) with new join tokens (they carry
   the root's digest, so they change, as in Docker).  Every node's trust
   file then holds the new root only, and an old certificate verifies
   nowhere any more.

A node that is down during the rotation holds it open (Docker's does too):
``node rm`` it, or bring it back so it renews.  Trust files are replaced
atomically, and TLS contexts follow them (`raft.runtime.tls.FreshContexts`):
nothing restarts.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.security import crypto
from cluster.state import commands
from cluster.state import objects as o
from cluster.state.errors import FailedPrecondition, NotFound
from cluster.state.handlers import NEXT_ROOT_CA_KEY, ROOT_CA_KEY
from cluster.state.store import Store

if TYPE_CHECKING:
    from cluster.security.pki import CertificateAuthority
    from cluster.security.renewal import Renewer

# `cluster.security.pki` (and the ``cryptography`` package under it, ~9 MB)
# is imported by the steps of a rotation, which an idle manager never takes.

__all__ = ["RootRotation", "progress", "trust_bundle"]

logger = logging.getLogger("cluster.manager")


def trust_bundle(cluster: dict[str, Any] | None) -> str | None:
    """The roots a node trusts now: the root, and the next one while rotating."""
    root = (cluster or {}).get("TLSInfo", {}).get("TrustRoot")
    if not root:
        return None
    rotation = (cluster or {}).get("RootRotation")
    return root + rotation["CACert"] if rotation else root


def progress(store: Store) -> tuple[int, int]:
    """(nodes on the new root, nodes) during a rotation; (0, 0) when none runs."""
    cluster = store.cluster()
    rotation = (cluster or {}).get("RootRotation")
    if not rotation:
        return 0, 0
    nodes = store.list(o.NODE)
    done = sum(
        1
        for n in nodes
        if (n["Description"].get("TLSInfo") or {}).get("CertIssuerDigest") == rotation["Digest"]
    )
    return done, len(nodes)


class RootRotation:
    """One manager's part in a rotation: start it, follow it, and (leader) end it."""

    def __init__(self, name: str, tls: dict[str, str] | None, store: Store) -> None:
        self.name = name
        self.tls = tls
        self.store = store
        self._asked_for: str | None = None  # the rotation we asked our renewer for

    # ------------------------------------------------------------ phase 1

    def start_command(self, root: CertificateAuthority, dek: crypto.DataKey, now: float) -> bytes:
        """The entry that starts a rotation: a new root, cross-signed by ``root``."""
        from cluster.security import pki

        cluster = self.store.cluster()
        if cluster is None or cluster.get("RootRotation"):
            raise FailedPrecondition("a root CA rotation is already in progress")
        new = pki.CertificateAuthority.create(cluster["ID"])
        cross = root.cross_sign(new)
        sealed = crypto.encrypt_secret(dek, NEXT_ROOT_CA_KEY, new.key_pem())
        logger.info("%s: root CA rotation started", self.name)
        return commands.start_root_rotation(
            new.cert_pem().decode(),
            cross.public_bytes(pki.serialization.Encoding.PEM).decode(),
            pki.root_digest(new.cert),
            sealed,
            now,
        )

    # ------------------------------------------------------------ phase 3 (leader)

    def signing(
        self, root: CertificateAuthority, dek: crypto.DataKey
    ) -> tuple[CertificateAuthority, bytes, str]:
        """(the CA to sign renewals with, PEM to append to the certificate, its digest)."""
        from cluster.security import pki

        cluster = self.store.cluster() or {}
        rotation = cluster.get("RootRotation")
        if not rotation:
            return root, b"", pki.root_digest(root.cert)
        sealed = self.store.sealed_secret(NEXT_ROOT_CA_KEY)
        key_pem = crypto.decrypt_secret(dek, NEXT_ROOT_CA_KEY, sealed)
        new = pki.CertificateAuthority.from_pem(rotation["CACert"].encode(), key_pem)
        return new, rotation["CrossSignedCACert"].encode(), rotation["Digest"]

    # ------------------------------------------------------------ phase 2 (every manager)

    def follow(self, renewer: Renewer | None) -> None:
        """Keep our trust file equal to the swarm's roots; renew onto a new root."""
        if not self.tls:
            return
        cluster = self.store.cluster()
        bundle = trust_bundle(cluster)
        if bundle is None:
            return
        path = Path(self.tls["ca"])
        # Read each tick (a few hundred bytes): a renewal may have written the
        # roots it was answered with, older than the store's by now.
        try:
            if path.read_text() != bundle:
                from cluster.security import pki

                pki.write_trust(path, bundle.encode())
                logger.info("%s: trust file now holds %d root(s)", self.name, bundle.count("BEGIN"))
        except (OSError, ValueError) as e:
            logger.error("%s: cannot update the trust file: %s", self.name, e)
            return
        rotation = (cluster or {}).get("RootRotation")
        if not rotation or renewer is None or self._asked_for == rotation["Digest"]:
            return
        from cluster.security.renewal import issued_by

        if not issued_by(renewer.certificate(), rotation["CACert"]):
            renewer.renew_soon()
        self._asked_for = rotation["Digest"]

    # ------------------------------------------------------------ phase 4 (leader)

    def finish_command(self, dek: crypto.DataKey, rng: random.Random) -> bytes | None:
        """The entry that ends a rotation once every node is on the new root, or None."""
        done, total = progress(self.store)
        cluster = self.store.cluster()
        if cluster is None or not cluster.get("RootRotation") or done < total:
            return None
        rotation = cluster["RootRotation"]
        try:
            key_pem = crypto.decrypt_secret(
                dek, NEXT_ROOT_CA_KEY, self.store.sealed_secret(NEXT_ROOT_CA_KEY)
            )
        except NotFound:
            return None
        sealed = crypto.encrypt_secret(dek, ROOT_CA_KEY, key_pem)
        digest = rotation["Digest"]
        now = time.time()
        tokens = {role: commands.new_join_token(rng, digest) for role in ("Worker", "Manager")}
        # The tokens first: their compare-and-set is on the version we read,
        # which the root's change then moves on.
        return commands.batch(
            commands.update_cluster(cluster["Version"]["Index"], now, join_tokens=tokens),
            commands.put_root_ca(rotation["CACert"], sealed, now),
        )
