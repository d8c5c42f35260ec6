"""A manager's TLS key under autolock (`cluster.security.node_keys`), without processes."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from cluster.security import crypto, node_keys
from cluster.security.pki import MANAGER_ROLE, CertificateAuthority
from raft.runtime.tls import TLSFiles


@pytest.fixture
def files(tmp_path: Path) -> TLSFiles:
    ca = CertificateAuthority.create("c1")
    return ca.issue_files(tmp_path / "keys", "manager1", MANAGER_ROLE, "c1")


def test_a_sealed_key_opens_only_with_the_password_of_its_dek(files: TLSFiles) -> None:
    clear = files.key.read_bytes()
    dek = crypto.generate_dek()
    password = node_keys.key_password(dek)
    assert node_keys.key_password(dek) == password  # derived, so the same every time
    assert node_keys.key_password(crypto.generate_dek()) != password

    node_keys.seal_key(files.key, password)
    sealed = files.key.read_bytes()
    assert node_keys.is_sealed(files.key) and clear not in sealed
    assert files.key.stat().st_mode & 0o777 == 0o600
    node_keys.seal_key(files.key, password)  # already sealed: left alone
    assert files.key.read_bytes() == sealed

    # OpenSSL opens it with the password, and not without (or with another).
    TLSFiles(files.ca, files.cert, files.key, password=password).server_context()
    with pytest.raises(ssl.SSLError):
        TLSFiles(files.ca, files.cert, files.key, password=b"wrong").client_context()
    assert password.decode() not in repr(
        TLSFiles(files.ca, files.cert, files.key, password=password)
    )

    node_keys.open_key(files.key, password)
    assert not node_keys.is_sealed(files.key)
    TLSFiles(files.ca, files.cert, files.key).client_context()
