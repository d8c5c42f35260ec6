"""A root CA rotation's chains, checked by `cryptography`'s own path validation.

During a rotation old and new node certificates must both verify, whichever
roots a node trusts at that moment; once the old root is dropped, only the
new certificates do.  `CertificateAuthority.cross_sign` is the bridge: the
new root's key certified by the old root, sent as the chain's intermediate.
"""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError

from cluster.security.pki import MANAGER_ROLE, CertificateAuthority


@pytest.fixture(scope="module")
def roots() -> tuple[CertificateAuthority, CertificateAuthority, x509.Certificate]:
    old, new = CertificateAuthority.create("c1"), CertificateAuthority.create("c1")
    return old, new, old.cross_sign(new)


def verify(leaf: x509.Certificate, trusted: list[x509.Certificate], chain: list) -> None:
    """Verify ``leaf`` as the TLS server ``manager1`` (raises VerificationError)."""
    verifier = (
        PolicyBuilder()
        .store(Store(trusted))
        .time(datetime.datetime.now(datetime.UTC))
        .build_server_verifier(DNSName("manager1"))
    )
    verifier.verify(leaf, chain)


def test_the_cross_signed_root_is_the_new_root_signed_by_the_old(roots) -> None:
    old, new, cross = roots
    assert cross.subject == new.cert.subject and cross.issuer == old.cert.subject
    assert cross.public_key() == new.cert.public_key()
    cross.verify_directly_issued_by(old.cert)


def test_during_a_rotation_old_and_new_certificates_both_verify(roots) -> None:
    old, new, cross = roots
    old_leaf, _ = old.issue("manager1", MANAGER_ROLE, "c1")
    new_leaf, _ = new.issue("manager1", MANAGER_ROLE, "c1")
    # A node that has not heard of the rotation yet trusts only the old root:
    # the new certificate verifies through the cross-signed root it comes with.
    verify(new_leaf, [old.cert], [cross])
    verify(old_leaf, [old.cert], [])
    # A node that trusts both (the rotation's bundle) verifies either, chain or not.
    for leaf in (old_leaf, new_leaf):
        verify(leaf, [old.cert, new.cert], [cross])
        verify(leaf, [old.cert, new.cert], [])


def test_without_the_cross_signed_root_the_old_trust_refuses_the_new(roots) -> None:
    old, new, _ = roots
    new_leaf, _ = new.issue("manager1", MANAGER_ROLE, "c1")
    with pytest.raises(VerificationError):
        verify(new_leaf, [old.cert], [])


def test_once_the_old_root_is_dropped_only_new_certificates_verify(roots) -> None:
    old, new, cross = roots
    old_leaf, _ = old.issue("manager1", MANAGER_ROLE, "c1")
    new_leaf, _ = new.issue("manager1", MANAGER_ROLE, "c1")
    verify(new_leaf, [new.cert], [cross])
    verify(new_leaf, [new.cert], [])
    with pytest.raises(VerificationError):
        verify(old_leaf, [new.cert], [cross])


def test_a_root_of_another_swarm_cannot_bridge(roots) -> None:
    old, new, _ = roots
    stranger = CertificateAuthority.create("c1")
    fake_bridge = stranger.cross_sign(new)
    new_leaf, _ = new.issue("manager1", MANAGER_ROLE, "c1")
    with pytest.raises(VerificationError):
        verify(new_leaf, [old.cert], [fake_bridge])
