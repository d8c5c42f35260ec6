"""Autolock without processes: a locked manager's gate, its key files, the key check."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cluster.api.backend import UnavailableError
from cluster.manager.process import Manager, ManagerSettings, Peer
from cluster.security import crypto
from cluster.state.errors import InvalidArgument


def _manager(tmp_path: Path) -> Manager:
    settings = ManagerSettings(
        name="manager1",
        node_id="n1",
        cluster_id="c1",
        data_dir=tmp_path / "manager1",
        api_port=0,
        peers={"manager1": Peer("n1", ("127.0.0.1", 0), "http://127.0.0.1:0")},
        autolock=True,
    )
    return Manager(settings)


def _fingerprint(tmp_path: Path, key: str) -> None:
    keys = tmp_path / "manager1" / "keys"
    keys.mkdir(parents=True)
    (keys / "kek.fingerprint").write_text(crypto.kek_from_unlock_key(key).key_id)


def test_a_manager_with_only_a_fingerprint_starts_locked(tmp_path: Path) -> None:
    async def run() -> None:
        key = crypto.generate_unlock_key()
        _fingerprint(tmp_path, key)
        m = _manager(tmp_path)
        m.open_keys(None)
        assert m.locked
        st = m.raft_status()
        assert st["role"] == "locked" and st["locked"] is True
        assert m.info()["LocalNodeState"] == "locked"
        with pytest.raises(UnavailableError, match="swarm is locked"):
            await m.write(b"")
        with pytest.raises(UnavailableError, match="swarm is locked"):
            m.data_key()
        with pytest.raises(UnavailableError, match="swarm is locked"):
            m.require_leader()

    asyncio.run(run())


def test_the_key_is_checked_against_the_fingerprint_never_stored(tmp_path: Path) -> None:
    async def run() -> None:
        key = crypto.generate_unlock_key()
        _fingerprint(tmp_path, key)
        m = _manager(tmp_path)
        m.open_keys(None)
        with pytest.raises(InvalidArgument, match="invalid key"):
            m.keyring.accept_unlock_key(crypto.generate_unlock_key())
        with pytest.raises(InvalidArgument, match="invalid unlock key"):
            m.keyring.accept_unlock_key("not-a-key")
        assert m.locked
        m.keyring.accept_unlock_key(key)
        files = [p for p in (tmp_path / "manager1").rglob("*") if p.is_file()]
        on_disk = b"".join(p.read_bytes() for p in files)
        assert key.encode() not in on_disk
        assert crypto.kek_from_unlock_key(key).secret_bytes() not in on_disk

    asyncio.run(run())


def test_the_right_key_at_start_unlocks(tmp_path: Path) -> None:
    key = crypto.generate_unlock_key()
    _fingerprint(tmp_path, key)
    m = _manager(tmp_path)
    m.open_keys(key)
    assert not m.locked
    m2 = _manager(tmp_path)
    m2.open_keys(crypto.generate_unlock_key())  # a wrong key at start: locked, not dead
    assert m2.locked


def test_a_kek_file_means_no_autolock(tmp_path: Path) -> None:
    keys = tmp_path / "manager1" / "keys"
    keys.mkdir(parents=True)
    (keys / "kek").write_bytes(crypto.generate_kek().secret_bytes())
    m = _manager(tmp_path)
    m.open_keys(None)
    assert not m.locked


def test_a_follower_keeps_the_data_key_when_autolock_rewraps_it(tmp_path: Path) -> None:
    """A follower never needs the DEK until it leads; autolock then rewraps the DEK
    under the unlock key's KEK and deletes the KEK file.  The follower must have
    unwrapped the DEK with its file's KEK before that, or as leader it could seal,
    deliver and rotate nothing ("cannot unwrap the data key")."""
    from cluster.state import commands as c

    keys = tmp_path / "manager1" / "keys"
    keys.mkdir(parents=True)
    kek, dek = crypto.generate_kek(), crypto.generate_dek()
    (keys / "kek").write_bytes(kek.secret_bytes())
    m = _manager(tmp_path)
    m.open_keys(None)
    store = m.keyring.store
    store.apply(1, c.init_cluster("c1", 1.0, "SWMTKN-1-w", "SWMTKN-1-m"))
    store.apply(2, c.put_data_key(crypto.wrap_dek(dek, kek), 1.0))
    m.keyring.follow_keys()  # a duty tick before autolock: no DEK was asked for yet
    unlock = crypto.kek_from_unlock_key(crypto.generate_unlock_key())
    on = {"EncryptionConfig": {"AutoLockManagers": True}}
    store.apply(3, c.update_cluster(store.cluster()["Version"]["Index"], 2.0, spec=on))
    store.apply(4, c.put_data_key(crypto.wrap_dek(dek, unlock), 2.0))
    m.keyring.follow_keys()
    assert not (keys / "kek").exists() and (keys / "kek.fingerprint").exists()
    assert m.data_key().secret_bytes() == dek.secret_bytes()


@pytest.mark.parametrize("hooked", [True, False])
def test_the_data_key_is_kept_even_with_no_duty_tick_before_the_rewrap(
    tmp_path: Path, hooked: bool
) -> None:
    """A follower may apply the swarm's first data key and autolock's rewrap of it
    between two duty ticks: the store machine's hook unwraps the DEK just before
    the new wrapping replaces the one the KEK file opens.  Without the hook the
    DEK is lost to this manager (the case the hook exists for)."""
    from cluster.manager.machine import StoreMachine
    from cluster.state import commands as c

    keys = tmp_path / "manager1" / "keys"
    keys.mkdir(parents=True)
    kek, dek = crypto.generate_kek(), crypto.generate_dek()
    (keys / "kek").write_bytes(kek.secret_bytes())
    m = _manager(tmp_path)
    m.open_keys(None)
    machine = StoreMachine(m.keyring.store, m.keyring.keep_dek if hooked else None)
    unlock = crypto.kek_from_unlock_key(crypto.generate_unlock_key())
    on = {"EncryptionConfig": {"AutoLockManagers": True}}
    machine.apply(1, c.init_cluster("c1", 1.0, "SWMTKN-1-w", "SWMTKN-1-m"))
    machine.apply(2, c.put_data_key(crypto.wrap_dek(dek, kek), 1.0))
    # As `swarm update --autolock=true` sends it: the spec and the new wrapping in one entry.
    rewrap = c.put_data_key(crypto.wrap_dek(dek, unlock), 2.0)
    machine.apply(3, c.batch(c.update_cluster(1, 2.0, spec=on), rewrap))
    m.keyring.follow_keys()  # the first duty tick comes only now
    if hooked:
        assert m.data_key().secret_bytes() == dek.secret_bytes()
    else:
        with pytest.raises(UnavailableError, match="cannot unwrap the data key"):
            m.data_key()
