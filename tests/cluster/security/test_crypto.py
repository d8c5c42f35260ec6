"""Secrets at rest: the DEK/KEK envelope, the unlock key, sealing secret data."""

from __future__ import annotations

import base64

import pytest

from cluster.security import crypto


@pytest.fixture
def dek() -> crypto.DataKey:
    return crypto.generate_dek()


def test_wrap_and_unwrap_the_dek(dek: crypto.DataKey) -> None:
    kek = crypto.generate_kek()
    wrapped = crypto.wrap_dek(dek, kek)
    assert dek.secret_bytes() not in wrapped
    assert crypto.unwrap_dek(wrapped, kek) == dek
    assert crypto.wrapped_key_ids(wrapped) == (dek.key_id, kek.key_id)


def test_the_wrong_kek_cannot_unwrap(dek: crypto.DataKey) -> None:
    wrapped = crypto.wrap_dek(dek, crypto.generate_kek())
    with pytest.raises(crypto.DecryptionError, match="wrong key-encryption key"):
        crypto.unwrap_dek(wrapped, crypto.generate_kek())
    with pytest.raises(crypto.DecryptionError):
        crypto.unwrap_dek(b"not a wrapped key", crypto.generate_kek())


def test_a_kek_survives_being_written_to_disk_and_read_back() -> None:
    kek = crypto.generate_kek()
    assert crypto.load_kek(kek.secret_bytes()) == kek


def test_unlock_key_looks_like_dockers_and_derives_a_stable_kek(dek: crypto.DataKey) -> None:
    unlock = crypto.generate_unlock_key()
    assert unlock.startswith("SWMKEY-1-") and "=" not in unlock
    assert len(crypto.parse_unlock_key(unlock)) == 32
    # Every manager unlocked with the same key derives the same KEK ...
    kek = crypto.kek_from_unlock_key(unlock)
    assert crypto.kek_from_unlock_key(unlock) == kek
    assert kek.secret_bytes() != crypto.parse_unlock_key(unlock)
    wrapped = crypto.wrap_dek(dek, kek)
    assert crypto.unwrap_dek(wrapped, crypto.kek_from_unlock_key(unlock)) == dek
    # ... and any other key fails.
    with pytest.raises(crypto.DecryptionError):
        crypto.unwrap_dek(wrapped, crypto.kek_from_unlock_key(crypto.generate_unlock_key()))


@pytest.mark.parametrize(
    "bad", ["", "SWMKEY-2-abc", "SWMKEY-1-!!!!", "SWMKEY-1-" + base64.b64encode(b"short").decode()]
)
def test_malformed_unlock_keys_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid unlock key"):
        crypto.kek_from_unlock_key(bad)


def test_turning_autolock_on_rewraps_without_touching_secrets(dek: crypto.DataKey) -> None:
    plain_kek = crypto.generate_kek()
    sealed = crypto.encrypt_secret(dek, "s1", b"payload")
    wrapped = crypto.wrap_dek(dek, plain_kek)
    locked = crypto.kek_from_unlock_key(crypto.generate_unlock_key())
    rewrapped = crypto.rewrap_dek(wrapped, plain_kek, locked)
    with pytest.raises(crypto.DecryptionError):
        crypto.unwrap_dek(rewrapped, plain_kek)
    assert crypto.decrypt_secret(crypto.unwrap_dek(rewrapped, locked), "s1", sealed) == b"payload"


def test_secret_round_trip(dek: crypto.DataKey) -> None:
    sealed = crypto.encrypt_secret(dek, "s1", b"hunter2")
    assert sealed["Alg"] == "AES-256-GCM" and sealed["KeyID"] == dek.key_id
    assert b"hunter2" not in sealed["Ciphertext"]
    assert crypto.check_sealed(sealed) == len(b"hunter2")
    assert crypto.decrypt_secret(dek, "s1", sealed) == b"hunter2"


def test_each_encryption_uses_a_fresh_nonce(dek: crypto.DataKey) -> None:
    a = crypto.encrypt_secret(dek, "s1", b"same")
    b = crypto.encrypt_secret(dek, "s1", b"same")
    assert a["Nonce"] != b["Nonce"] and a["Ciphertext"] != b["Ciphertext"]


def test_wrong_dek_fails(dek: crypto.DataKey) -> None:
    sealed = crypto.encrypt_secret(dek, "s1", b"hunter2")
    other = crypto.generate_dek()
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_secret(other, "s1", sealed)
    # Even a key that claims the right ID cannot open it.
    impostor = crypto.DataKey(dek.key_id, other.secret_bytes())
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_secret(impostor, "s1", sealed)


def test_ciphertext_is_bound_to_its_secret_id(dek: crypto.DataKey) -> None:
    """Copying one secret's ciphertext onto another secret must not decrypt."""
    sealed = crypto.encrypt_secret(dek, "s1", b"hunter2")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_secret(dek, "s2", sealed)


def test_tampered_ciphertext_fails(dek: crypto.DataKey) -> None:
    sealed = crypto.encrypt_secret(dek, "s1", b"hunter2")
    flipped = bytes([sealed["Ciphertext"][0] ^ 1]) + sealed["Ciphertext"][1:]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_secret(dek, "s1", {**sealed, "Ciphertext": flipped})


def test_check_sealed_refuses_malformed_shapes(dek: crypto.DataKey) -> None:
    good = crypto.encrypt_secret(dek, "s1", b"x")
    for bad in (
        None,
        {**good, "Alg": "ROT13"},
        {**good, "Nonce": b"short"},
        {**good, "Ciphertext": b"tiny"},
        {**good, "KeyID": 3},
    ):
        with pytest.raises(ValueError):
            crypto.check_sealed(bad)


def test_keys_never_show_their_bytes(dek: crypto.DataKey) -> None:
    kek = crypto.generate_kek()
    for key in (dek, kek):
        shown = repr(key) + str(key) + f"{key}"
        assert "hidden" in shown
        raw = key.secret_bytes()
        for form in (repr(raw), raw.hex(), base64.b64encode(raw).decode()):
            assert form not in shown


def test_errors_never_quote_the_data(dek: crypto.DataKey) -> None:
    sealed = crypto.encrypt_secret(dek, "s1", b"hunter2")
    with pytest.raises(crypto.DecryptionError) as info:
        crypto.decrypt_secret(crypto.generate_dek(), "s1", sealed)
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)


def test_deterministic_with_an_injected_token_source() -> None:
    """Tests and the simulator can pin the randomness; production uses `secrets`."""

    def counter(n: int) -> bytes:
        return bytes(range(n))

    assert crypto.generate_dek(counter) == crypto.generate_dek(counter)
    assert crypto.generate_unlock_key(counter) == crypto.generate_unlock_key(counter)
    dek = crypto.generate_dek(counter)
    assert crypto.encrypt_secret(dek, "s", b"x", counter) == crypto.encrypt_secret(
        dek, "s", b"x", counter
    )
