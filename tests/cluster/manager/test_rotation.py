"""A root rotation's entries on a real store (`cluster.manager.rotation`), no processes.

Start -> every node renewed by the new root -> finish, each entry applied as
the leader would propose it, checking what each phase leaves in the store.
"""

from __future__ import annotations

import random

import pytest
from cryptography import x509

from cluster.manager.rotation import RootRotation, progress, trust_bundle
from cluster.security import crypto
from cluster.security.pki import CertificateAuthority, root_digest, token_digest
from cluster.state import commands as c
from cluster.state.errors import FailedPrecondition
from cluster.state.handlers import NEXT_ROOT_CA_KEY, ROOT_CA_KEY
from cluster.state.store import Store

NOW = 1_700_000_000.0


def apply(store: Store, command: bytes) -> None:
    result = store.apply(store.applied_index + 1, command)
    assert result.ok, result.error


@pytest.fixture
def swarm() -> tuple[Store, CertificateAuthority, crypto.DataKey]:
    rng = random.Random(1)
    store, root, dek = Store(), CertificateAuthority.create("c1"), crypto.generate_dek()
    apply(store, c.init_cluster("c1", NOW, c.new_join_token(rng), c.new_join_token(rng)))
    sealed = crypto.encrypt_secret(dek, ROOT_CA_KEY, root.key_pem())
    apply(store, c.put_root_ca(root.cert_pem().decode(), sealed, NOW))
    apply(store, c.create_node("n1", NOW, hostname="manager1", role="manager"))
    apply(store, c.create_node("n2", NOW, hostname="worker1"))
    return store, root, dek


def test_a_rotation_from_start_to_finish(swarm) -> None:
    store, root, dek = swarm
    rotation = RootRotation("manager1", None, store)
    assert rotation.finish_command(dek, random.Random(2)) is None  # nothing to finish
    apply(store, rotation.start_command(root, dek, NOW))

    cluster = store.cluster()
    assert cluster is not None and cluster["RootRotationInProgress"]
    new_pem = cluster["RootRotation"]["CACert"]
    assert trust_bundle(cluster) == root.cert_pem().decode() + new_pem  # both trusted
    with pytest.raises(FailedPrecondition, match="already in progress"):
        rotation.start_command(root, dek, NOW)

    # Renewals now sign with the new root, and send the bridge along.
    signer, chain, digest = rotation.signing(root, dek)
    assert signer.cert_pem().decode() == new_pem
    assert x509.load_pem_x509_certificate(chain).issuer == root.cert.subject
    assert progress(store) == (0, 2)
    apply(store, c.node_certificate("n1", digest, NOW))
    assert progress(store) == (1, 2)
    assert rotation.finish_command(dek, random.Random(2)) is None  # worker1 not yet
    apply(store, c.node_certificate("n2", digest, NOW))

    finish = rotation.finish_command(dek, random.Random(2))
    assert finish is not None
    apply(store, finish)
    cluster = store.cluster()
    assert cluster is not None and not cluster["RootRotationInProgress"]
    assert "RootRotation" not in cluster
    assert cluster["TLSInfo"]["TrustRoot"] == new_pem == trust_bundle(cluster)
    for token in cluster["JoinTokens"].values():
        assert token_digest(token) == digest == root_digest(signer.cert)
    # The new key now sits in the root's row, sealed for that row; the next one is gone.
    key_pem = crypto.decrypt_secret(dek, ROOT_CA_KEY, store.sealed_secret(ROOT_CA_KEY))
    assert CertificateAuthority.from_pem(new_pem.encode(), key_pem).cert == signer.cert
    with pytest.raises(Exception, match="not found"):
        store.sealed_secret(NEXT_ROOT_CA_KEY)
    assert progress(store) == (0, 0)
