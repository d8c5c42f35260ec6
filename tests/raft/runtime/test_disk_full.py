"""`DiskStorage` on a disk that fills or fails (raft/runtime/disk.py, "Disks that fill or fail").

A full disk is retried: what landed of the failed write is cut back, the
operations stay buffered, and the next ``sync`` after space comes back makes
them durable.  A failed fsync is final.  Tests on a real full file system
mount a small tmpfs (root only, else skipped); the others make ``write()``
stop half-way with ENOSPC, which a real disk does when it fills mid-write.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from small_fs import fill, small_fs

from raft.core.messages import Entry, HardState
from raft.runtime import disk as disk_module
from raft.runtime.disk import DiskFullError, DiskStorage, FsyncFailedError


def entries(first: int, n: int, size: int = 100, term: int = 1) -> list[Entry]:
    return [Entry(term, i, bytes([i % 251]) * size) for i in range(first, first + n)]


def reopened(path: Path) -> tuple[HardState, list[Entry]]:
    with DiskStorage(path) as d:
        state = d.load()
    return state.hard_state, state.entries


def test_a_write_cut_short_by_enospc_is_cut_back_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = DiskStorage(tmp_path / "raft", preallocate=0)  # records only: sizes say where they end
    d.append(entries(1, 3))
    d.sync()
    seg = sorted((tmp_path / "raft").glob("log-*.seg"))[-1]
    size = seg.stat().st_size
    real = disk_module.write_all_at

    def half_then_full(fd: int, data: bytes, offset: int) -> None:
        os.pwrite(fd, data[: len(data) // 2], offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(disk_module, "write_all_at", half_then_full)
    d.append(entries(4, 2))
    d.set_hard_state(HardState(term=1, vote="n1", commit=3))
    with pytest.raises(DiskFullError) as info:
        d.sync()
    assert str(info.value) == f"no space left on device ({seg})"
    assert seg.stat().st_size == size  # the half record is gone
    assert d.last_index == 5  # still buffered
    monkeypatch.setattr(disk_module, "write_all_at", real)
    d.sync()  # space again: the same operations become durable
    d.close()
    hs, log = reopened(tmp_path / "raft")
    assert hs == HardState(term=1, vote="n1", commit=3)
    assert log == entries(1, 5)


def test_a_failed_fsync_is_final(tmp_path: Path) -> None:
    d = DiskStorage(tmp_path / "raft")
    d.append(entries(1, 2))
    d.sync()
    d.append(entries(3, 1))
    d.fail_next_fsync(OSError(errno.EIO, "Input/output error"))
    with pytest.raises(FsyncFailedError) as info:
        d.sync()
    assert "fsync of" in str(info.value) and "Input/output error" in str(info.value)
    with pytest.raises(RuntimeError, match="failed earlier"):
        d.sync()  # never retried
    d.close()  # releases the directory without syncing
    _, log = reopened(tmp_path / "raft")
    assert log[:2] == entries(1, 2)  # what was durable before is still there


def test_a_full_file_system_then_space_again(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs", "1m") as fs:
        d = DiskStorage(fs / "raft", segment_size=64 << 10, preallocate=0)
        d.append(entries(1, 10))
        d.set_hard_state(HardState(term=2, vote="n2", commit=10))
        d.sync()
        fill(fs / "ballast")
        segs = {p: p.stat().st_size for p in (fs / "raft").glob("log-*.seg")}
        d.append(entries(11, 20, size=1000, term=2))
        with pytest.raises(DiskFullError) as info:
            d.sync()
        assert str(info.value).startswith("no space left on device (")
        # Nothing half written stays behind: old segments as they were, no
        # half-made segment, no temporary file.
        now = {p: p.stat().st_size for p in (fs / "raft").glob("log-*.seg")}
        assert all(now[p] == segs[p] for p in segs if p in now)
        assert not list((fs / "raft").glob("*.tmp"))
        d.set_hard_state(HardState(term=3, vote=None, commit=10))
        with pytest.raises(DiskFullError):
            d.sync()
        (fs / "ballast").unlink()
        d.sync()  # resumes without a restart
        d.close()
        hs, log = reopened(fs / "raft")
        assert hs == HardState(term=3, vote=None, commit=10)
        assert log == entries(1, 10) + entries(11, 20, size=1000, term=2)


def test_a_hard_state_that_does_not_fit_keeps_the_old_one(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs", "1m") as fs:
        d = DiskStorage(fs / "raft")
        d.set_hard_state(HardState(term=1, vote="n1", commit=0))
        d.sync()
        fill(fs / "ballast")
        d.set_hard_state(HardState(term=2, vote="n3", commit=0))
        with pytest.raises(DiskFullError):
            d.sync()
        assert not list((fs / "raft").glob("*.tmp"))
        (fs / "ballast").unlink()
        d.close()
        assert reopened(fs / "raft")[0] == HardState(term=2, vote="n3", commit=0)


def test_opening_on_a_full_disk_says_so(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs", "1m") as fs:
        fill(fs / "ballast")
        with pytest.raises(DiskFullError, match="no space left on device"):
            DiskStorage(fs / "raft")


def test_a_new_segment_that_does_not_fit_leaves_nothing_behind(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs", "1m") as fs:
        d = DiskStorage(fs / "raft", segment_size=1024)
        d.append(entries(1, 8))  # 8 records of ~100 bytes: the first segment is nearly full
        d.sync()
        before = sorted(p.name for p in (fs / "raft").glob("log-*.seg"))
        fill(fs / "ballast")
        d.append(entries(9, 1, size=2000))  # needs the next segment
        with pytest.raises(DiskFullError):
            d.sync()
        assert sorted(p.name for p in (fs / "raft").glob("log-*.seg")) == before
        (fs / "ballast").unlink()
        d.sync()
        d.close()
        assert reopened(fs / "raft")[1] == entries(1, 8) + entries(9, 1, size=2000)
