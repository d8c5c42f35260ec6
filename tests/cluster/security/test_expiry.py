"""Certificate lifetimes and renewal (`cluster.security.expiry`, `renewal`, `pki`), pure.

Timing is checked on many seeds against the rule (the last 20-50 % of the
lifetime); renewal runs against a fake leader (an ``ask`` that signs with a
local CA), so no process or socket is involved.
"""

from __future__ import annotations

import asyncio
import datetime
import random
from pathlib import Path

import pytest
from cryptography import x509

from cluster.security import crypto, node_keys, pki
from cluster.security.expiry import (
    DEFAULT_EXPIRY,
    TEST_EXPIRY_ENV,
    check_expiry,
    expiry_of,
    renewal_time,
)
from cluster.security.pki import MANAGER_ROLE, WORKER_ROLE, CertificateAuthority
from cluster.security.renewal import Renewer
from raft.runtime.tls import FreshContexts, TLSFiles, identity_of

HOUR_NS = 3600 * 10**9


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("c1")


def lifetime(cert: x509.Certificate) -> datetime.timedelta:
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def test_node_certificates_live_90_days_by_default(ca, monkeypatch) -> None:
    monkeypatch.delenv(TEST_EXPIRY_ENV, raising=False)
    cert, _ = ca.issue("manager1", MANAGER_ROLE, "c1")
    # not_valid_before is backdated five minutes for clock skew.
    assert lifetime(cert) == DEFAULT_EXPIRY + datetime.timedelta(minutes=5)
    short, _ = ca.issue("manager1", MANAGER_ROLE, "c1", datetime.timedelta(hours=2))
    assert lifetime(short) == datetime.timedelta(hours=2, minutes=5)


def test_expiry_comes_from_the_spec_then_the_test_override() -> None:
    spec = {"CAConfig": {"NodeCertExpiry": 2 * HOUR_NS}}
    assert expiry_of(None, environ={}) == DEFAULT_EXPIRY
    assert expiry_of({}, environ={}) == DEFAULT_EXPIRY
    assert expiry_of(spec, environ={}) == datetime.timedelta(hours=2)
    override = {TEST_EXPIRY_ENV: "7.5"}
    assert expiry_of(spec, environ=override) == datetime.timedelta(seconds=7.5)


@pytest.mark.parametrize(
    ("nanos", "error"),
    [
        (HOUR_NS - 1, "minimum certificate expiry is 1h"),
        (60 * 10**9, "minimum certificate expiry is 1h (asked: 60s)"),
        ("90d", "must be an integer"),
        (True, "must be an integer"),
        (1.5e18, "must be an integer"),
    ],
)
def test_an_expiry_below_an_hour_or_not_an_integer_is_refused(nanos, error) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        check_expiry({"CAConfig": {"NodeCertExpiry": nanos}})


def test_an_hour_or_more_is_accepted() -> None:
    check_expiry({"CAConfig": {"NodeCertExpiry": HOUR_NS}})
    check_expiry({"CAConfig": {"NodeCertExpiry": 90 * 24 * HOUR_NS}})
    check_expiry({})


def test_renewal_falls_in_the_last_20_to_50_percent_of_the_lifetime(ca) -> None:
    cert, _ = ca.issue("w", WORKER_ROLE, "c1", datetime.timedelta(days=90))
    start, span = cert.not_valid_before_utc, lifetime(cert)
    fractions = []
    for seed in range(500):
        at = renewal_time(cert, random.Random(seed))
        fraction = (at - start) / span
        assert 0.5 <= fraction <= 0.8, f"seed {seed}: renews at {fraction:.3f} of the lifetime"
        fractions.append(fraction)
    # Spread out, not one fixed point: nodes that joined together renew apart.
    assert min(fractions) < 0.55 and max(fractions) > 0.75
    # Seeded: the same seed, the same moment.
    assert renewal_time(cert, random.Random(3)) == renewal_time(cert, random.Random(3))


def test_a_renewal_certifies_the_new_key_with_the_old_identity(ca) -> None:
    old, _ = ca.issue("manager2", MANAGER_ROLE, "c1")
    key, csr = pki.new_request()
    new = ca.renew(csr, old, datetime.timedelta(hours=3))
    assert identity_of(new) == identity_of(old)
    assert new.public_key() == key.public_key()
    assert new.serial_number != old.serial_number
    assert lifetime(new) == datetime.timedelta(hours=3, minutes=5)
    new.verify_directly_issued_by(ca.cert)


def test_a_renewal_request_not_signed_by_its_key_is_refused(ca) -> None:
    old, _ = ca.issue("manager2", MANAGER_ROLE, "c1")
    _, csr = pki.new_request()
    tampered = csr.replace(csr.splitlines()[3], csr.splitlines()[4])
    with pytest.raises(ValueError):
        ca.renew(tampered, old, None)


def fake_leader(ca: CertificateAuthority, validity: datetime.timedelta, files: TLSFiles):
    """An ``ask`` that signs like the leader's ``/renew``, from the node's current file."""
    calls: list[bytes] = []

    async def ask(csr: bytes) -> tuple[bytes, bytes]:
        calls.append(csr)
        current = x509.load_pem_x509_certificate(files.cert.read_bytes())
        cert = ca.renew(csr, current, validity)
        return cert.public_bytes(pki.serialization.Encoding.PEM), ca.cert_pem()

    return ask, calls


async def test_renew_once_replaces_the_files_and_contexts_follow(ca, tmp_path: Path) -> None:
    files = ca.issue_files(tmp_path / "keys", "manager1", MANAGER_ROLE, "c1")
    old_cert, old_key = files.cert.read_bytes(), files.key.read_bytes()
    contexts = FreshContexts(files, TLSFiles.client_context)
    first = contexts.get()
    ask, calls = fake_leader(ca, datetime.timedelta(hours=2), files)
    renewer = Renewer("manager1", files, ask, random.Random(1))

    cert = await renewer.renew_once()

    assert len(calls) == 1 and renewer.renewals == 1
    assert files.cert.read_bytes() != old_cert and files.key.read_bytes() != old_key
    assert x509.load_pem_x509_certificate(files.cert.read_bytes()) == cert
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert contexts.get() is not first and contexts.reloads == 1
    assert contexts.get() is contexts.get()  # unchanged files: the same context


async def test_a_sealed_key_is_renewed_sealed(ca, tmp_path: Path) -> None:
    files = ca.issue_files(tmp_path / "keys", "manager1", MANAGER_ROLE, "c1")
    password = node_keys.key_password(crypto.generate_dek())
    node_keys.seal_key(files.key, password)
    sealed = TLSFiles(files.ca, files.cert, files.key, password_source=lambda: password)
    ask, _ = fake_leader(ca, datetime.timedelta(hours=2), sealed)
    await Renewer("manager1", sealed, ask, random.Random(1)).renew_once()
    assert node_keys.is_sealed(files.key)
    sealed.server_context()  # opens with the password: key and certificate match


async def test_a_half_replaced_pair_is_not_adopted(ca, tmp_path: Path) -> None:
    files = ca.issue_files(tmp_path / "keys", "manager1", MANAGER_ROLE, "c1")
    contexts = FreshContexts(files, TLSFiles.server_context)
    first = contexts.get()
    other = ca.issue_files(tmp_path / "other", "manager1", MANAGER_ROLE, "c1")
    files.cert.write_bytes(other.cert.read_bytes())  # the key does not match it yet
    assert contexts.get() is first and contexts.reloads == 0
    files.key.write_bytes(other.key.read_bytes())
    assert contexts.get() is not first and contexts.reloads == 1


async def test_the_renewer_renews_when_due_and_again_later(ca, tmp_path: Path) -> None:
    """A 3-second certificate renews within 1.35-2.4 s of its issue (backdated 0.3 s:
    50-80 % of 3.3 s); each next renewal is planned from the new certificate."""
    files = ca.issue_files(tmp_path / "keys", "w1", WORKER_ROLE, "c1")
    ask, calls = fake_leader(ca, datetime.timedelta(seconds=3), files)
    renewer = Renewer("w1", files, ask, random.Random(5))
    renewer.renew_soon()  # the first one at once: the issued one lives 90 days
    task = asyncio.create_task(renewer.run())
    try:
        async with asyncio.timeout(15):
            while renewer.renewals < 3:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    now = datetime.datetime.now(datetime.UTC)
    assert now < cert.not_valid_after_utc  # renewed before it ran out
    assert len(calls) == 3


def test_validity_read_without_cryptography_matches_the_parsed_certificate(ca, tmp_path) -> None:
    """`Validity.of_pem` (standard library, RFC 5280 §4.1) finds the dates x509 finds:
    a node certificate, one with a chain after it, a root, and dates past 2049
    (GeneralizedTime instead of UTCTime)."""
    from cluster.security.expiry import Validity

    files = ca.issue_files(tmp_path / "n", "manager1", MANAGER_ROLE, "c1")
    pems = [files.cert.read_bytes(), files.cert.read_bytes() + ca.cert_pem(), ca.cert_pem()]
    far = ca.issue_files(
        tmp_path / "far", "manager2", MANAGER_ROLE, "c1", validity=datetime.timedelta(days=40_000)
    )
    pems.append(far.cert.read_bytes())
    for pem in pems:
        cert = x509.load_pem_x509_certificate(pem)
        got = Validity.of_pem(pem)
        assert got.not_valid_before_utc == cert.not_valid_before_utc
        assert got.not_valid_after_utc == cert.not_valid_after_utc
    assert Validity.of_pem(pems[3]).not_valid_after_utc.year > 2100
    for bad in (b"", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        with pytest.raises(ValueError):
            Validity.of_pem(bad)
