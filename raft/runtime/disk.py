"""Durable `Storage`: the Raft log in checksummed, append-only segment files.

Raft is only safe if the term, the vote and the log survive a crash
(Figure 2); `DiskStorage` is where they survive.  It implements the same
`raft.core.storage.Storage` protocol as `MemoryStorage`, with the same results.
The bytes themselves (frames, checksums, payloads) are encoded and checked by
the pure functions of `raft.runtime.diskformat`; this module does the I/O.

Theory of operation
===================

File layout of a data directory::

    LOCK                 flock()ed while one DiskStorage owns the directory
    hardstate            term, vote, commit           (replaced atomically)
    snapshot             the newest snapshot (§7)     (replaced atomically)
    log-0000000001.seg   log segments, oldest first; only the last one grows
    log-0000000002.seg
    *.tmp                a replacement half written by a crash; removed on open

Every file starts with an 8-byte header: a 6-byte magic naming its kind
(``SRLOG\\0``, ``SRHRD\\0``, ``SRSNP\\0``) and the format version (u16, little
endian; `FORMAT_VERSION`).  Records follow, each framed as::

    u32 length | u32 crc32(payload) | u32 crc32(the 8 bytes before) | payload

The frame header has a checksum of its own so that a damaged length is caught
before it is trusted: otherwise one flipped bit in a length in mid-log would
make that record look "cut off by a crash" and recovery would throw away
every record after it.  Payloads are msgpack of plain lists::

    log record   [1, first_index, [[term, kind, data], ...]]     (ENTRIES)
    hardstate    [term, vote or nil, commit]
    snapshot     [index, term, [voters...], [learners...], data]

An ENTRIES record means "from ``first_index`` on, the log is these entries".
`append` may overwrite a suffix (§5.3), and that is not a separate
"truncate" record followed by new entries: the truncation *is* the record.
Truncation and replacement are therefore one checksummed unit: a crash can
never leave a log that was cut back but not refilled, or refilled without
the cut, and no byte already on disk is ever rewritten.  Replay applies the
records in order, exactly like `MemoryStorage.append` (a record starting
past the end, which only happens after a snapshot emptied the log, starts a
new run), and finally drops what the snapshot covers, like
`MemoryStorage.save_snapshot`.

Writing (group commit).  `append`, `set_hard_state` and `save_snapshot` only
encode and buffer in memory; `sync` makes them durable, in this order:

1. log records buffered before a pending snapshot: one ``write()`` per
   segment touched, one ``fdatasync`` per segment (its bytes and size);
2. the snapshot: write ``snapshot.tmp``, fsync, rename, fsync the directory
   (entries appended after it may start past the old log, so the snapshot
   must be on disk before they are);
3. the remaining log records, as in 1;
4. the hard state, if it changed: ``hardstate.tmp``, fsync, rename; written
   after the log so that ``commit`` never points past the durable log;
5. segments wholly covered by the durable snapshot are deleted (lazily:
   never the segment being written);
6. one fsync of the directory if a file was renamed or deleted.

A segment is fsynced and closed before the next is created (roll-over at
``segment_size`` bytes), so only the last segment can hold unsynced bytes.

Zeros ahead of the log (preallocation).  The active segment is grown in
steps of ``preallocate`` bytes of zeros, written together with the record
that needs them, and records are then written *over* those zeros
(``pwrite`` at the end of the last record).  An ``fdatasync`` of bytes the
file already has changes no metadata, so the file system need not commit
its journal for it: on ext4 that halves a small write's sync or better, and
it keeps our syncs out of the queue behind other processes' journal commits
(etcd preallocates its WAL for the same reason).  One sync per
``preallocate`` bytes still pays for the growth.  Recovery reads the zeros
after the last record as what they are, room not yet used, and leaves them
(below); a full segment is cut back to its last record before the next one
is made, so only the last segment ever ends in zeros.
A crash thus leaves the state of some prefix of the operations, including
every operation before the last `sync` that returned.

Disks that fill or fail.  The two failures of `sync` are told apart, because
only one of them can be retried safely:

* a write (or creating a file) that finds no space, ENOSPC or a quota,
  raises `DiskFullError`.  The bytes of it that landed are cut back
  (``ftruncate`` to the last whole record; a half-made segment or ``*.tmp``
  file is removed), each stage of the list above forgets its work only once
  that work is durable, and the operations not yet durable stay buffered:
  the next `sync` starts where this one stopped.  Nothing durable is lost
  and nothing not durable was reported durable, so the caller may retry.
* an fsync that fails, whatever its errno, raises `FsyncFailedError` and the
  storage refuses every later call.  The kernel may already have dropped the
  dirty pages or marked them clean; a second fsync could report success for
  data that never reached the disk.  Only reading the files again says what
  they hold, which is what a restart does.

Birth.  A new directory is made with its first segment, an empty snapshot
and then its hard state (term 0), so that afterwards no file may be
missing: a lost hardstate or snapshot, a gap in the segment numbers, a log
that starts past the snapshot or a commit index past the log's end is
`CorruptLogError` (`raft.runtime.diskread.check_complete`).

Recovery (on open).  Every record of every file is checked.  Damage that a
crash can explain is repaired; anything else stops the node with
`CorruptLogError` naming the file and byte offset, because a node that
silently forgets acknowledged entries or votes breaks Raft's safety.  The
tail of the LAST segment is "torn" (cut off: truncated there, with a
warning) when the first bad record there is:

* a frame header or file header cut short by the end of the file;
* a valid frame header whose payload runs past the end of the file;
* a record failing its checksum with nothing but zero bytes (or nothing)
  after it, or zero bytes where a frame header should be (file systems
  that extended the file but had not written the data yet).

Zeros alone after the last whole record are not cut: they are the
preallocated room the next record is written over (or a grown file whose
data never landed, which is the same to the reader: nothing).

Everything else is mid-log corruption: a bad record followed by any
non-zero byte, any bad record in an earlier segment (those were fsynced
whole before their successor existed), a bad ``hardstate`` or ``snapshot``
file (they only ever appear complete, by rename).  After a power failure an
unsynced tail with a hole in the middle is reported as corruption too: that
is a false alarm, but refusing to start is the safe way to be wrong.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path
from types import TracebackType

import msgpack

from raft.core.messages import Entry, HardState, Snapshot
from raft.core.storage import PersistentState
from raft.runtime.diskformat import (
    ENTRIES,
    FILE_HEADER,
    FORMAT_VERSION,
    HARD_MAGIC,
    LOG_MAGIC,
    SNAP_MAGIC,
    CorruptLogError,
    encode_hard_state,
    encode_snapshot,
    frame,
)
from raft.runtime.diskread import (
    HARDSTATE,
    SEGMENT_PREFIX,
    SEGMENT_SUFFIX,
    SNAPSHOT,
    Segment,
    read_state,
    write_all,
    write_all_at,
)

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "FORMAT_VERSION",
    "CorruptLogError",
    "DataDirInUseError",
    "DiskFullError",
    "DiskStorage",
    "FsyncFailedError",
    "StorageError",
]

logger = logging.getLogger(__name__)

#: ``fdatasync`` where the platform has it (Linux); elsewhere plain ``fsync``.
_DATASYNC = getattr(os, "fdatasync", os.fsync)

DEFAULT_SEGMENT_SIZE = 64 << 20
#: Zeros written ahead of the log at a time (module docstring: preallocation).
DEFAULT_PREALLOCATE = 1 << 20

_LOCK = "LOCK"


class DataDirInUseError(RuntimeError):
    """Another `DiskStorage` (usually another process) has the directory open."""


#: errno values of a write that found no room: ENOSPC, or a disk quota.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class StorageError(OSError):
    """A write or fsync failed; ``str()`` is one line naming the file and the cause."""

    def __init__(self, path: Path, cause: OSError, message: str) -> None:
        super().__init__(cause.errno, message, os.fspath(path))
        self.path = os.fspath(path)
        self.message = message

    def __str__(self) -> str:
        return self.message


class DiskFullError(StorageError):
    """No space for a write: nothing of it is durable, nothing already durable is lost.

    The part that landed was cut back, so `DiskStorage.sync` may be retried.
    """

    def __init__(self, path: Path, cause: OSError) -> None:
        what = "no space left on device" if cause.errno == errno.ENOSPC else "disk quota exceeded"
        super().__init__(path, cause, f"{what} ({os.fspath(path)})")


class FsyncFailedError(StorageError):
    """An fsync failed (EIO, say): what the file holds is unknown; never retried."""

    def __init__(self, path: Path, cause: OSError) -> None:
        reason = cause.strerror or str(cause)
        super().__init__(path, cause, f"fsync of {os.fspath(path)} failed: {reason}")


def _no_space(exc: OSError, path: Path) -> OSError:
    """`DiskFullError` if ``exc`` says the disk is full, else ``exc`` itself."""
    return DiskFullError(path, exc) if exc.errno in _NO_SPACE else exc


# --------------------------------------------------------------------------


class DiskStorage:
    """`Storage` in a data directory; see the module docstring for the format.

    One instance owns the directory (an flock on ``LOCK``), so two nodes can
    never write the same log.  Not thread-safe: one driver calls it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        fsync: bool = True,
        preallocate: int = DEFAULT_PREALLOCATE,
    ) -> None:
        # fsync=False: the not-durable demo mode (same writes, never waits for the disk).
        if segment_size < 1024:
            raise ValueError(f"segment_size {segment_size} is too small (minimum 1024)")
        self.path = Path(path)
        self.durable = fsync
        self.path.mkdir(parents=True, exist_ok=True)
        self._segment_size = segment_size
        self._preallocate = max(0, preallocate)
        #: Length of the active segment's file: its records, then zeros.
        self._allocated = 0
        #: What recovery repaired (a torn tail cut off), for logs and traces.
        self.recovery_notes: list[str] = []
        self._closed = False
        self._failed: BaseException | None = None
        self._fsync_fault: OSError | None = None  # a test's failing disk (fail_next_fsync)
        self._active_fd = -1
        self._lock_fd = os.open(self.path / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataDirInUseError(f"{self.path} is in use by another process") from None
            self._dir_fd = os.open(self.path, os.O_RDONLY)
            self._open()
        except BaseException:
            self._close_fds()
            raise

    def _open(self) -> None:
        for tmp in self.path.glob("*.tmp"):
            tmp.unlink()
        state, segments = read_state(self.path, repair=True, notes=self.recovery_notes)
        self._dir_dirty = False
        if not segments:
            segments = [self._create_segment(1)]
            self._dir_dirty = True
        if not (self.path / HARDSTATE).exists():
            # Born (or a birth a crash interrupted, finished): first segment,
            # empty snapshot, hard state last.  From then on a missing file is
            # a lost one, which recovery refuses (diskread.check_complete).
            if not (self.path / SNAPSHOT).exists():
                self._replace_file(SNAPSHOT, SNAP_MAGIC, encode_snapshot(state.snapshot))
            self._replace_file(HARDSTATE, HARD_MAGIC, encode_hard_state(state.hard_state))
        if self._dir_dirty:
            self._fsync_dir()
        self._segments = segments
        self._active_fd = os.open(segments[-1].path, os.O_WRONLY)
        self._allocated = os.fstat(self._active_fd).st_size
        self._recovered: PersistentState | None = state
        # durable state
        self._durable_hs = state.hard_state
        self._durable_snapshot_index = state.snapshot.meta.index
        # state including buffered operations
        self._hard_state = state.hard_state
        self._snapshot_index = state.snapshot.meta.index
        self._last_index = self._snapshot_index + len(state.entries)
        self._pending: list[tuple[bytes, int]] = []  # (framed record, its last index)
        self._pending_snapshot: Snapshot | None = None
        self._frames_before_snapshot = 0

    # ------------------------------------------------------------------ API

    def load(self) -> PersistentState:
        """What a restart would see now: hard state, snapshot, entries after it.

        Buffered operations are synced first, so the answer is on disk.  The
        first call after opening returns the state recovery already decoded;
        later calls read the files again.
        """
        self._check_usable()
        if self._pending or self._pending_snapshot is not None or self._hs_dirty():
            self.sync()
        if self._recovered is not None:
            state, self._recovered = self._recovered, None
            return state
        return read_state(self.path, repair=False, notes=self.recovery_notes)[0]

    def append(self, entries: list[Entry]) -> None:
        """Buffer ``entries``, replacing what was stored from ``entries[0].index`` on (§5.3).

        The whole batch becomes one record (one checksum, one msgpack call),
        which is what makes the implicit truncation atomic.
        """
        self._check_usable()
        if not entries:
            return
        first = entries[0].index
        if first <= self._snapshot_index:
            raise ValueError(f"append at {first} is below the snapshot")
        if first > self._last_index + 1:
            raise ValueError(f"append at {first} leaves a gap after {self._last_index}")
        if any(e.index != i for i, e in enumerate(entries, first)):
            raise ValueError(f"entries appended at {first} are not consecutive")
        body = [(e.term, e.kind, e.data) for e in entries]
        last = entries[-1].index
        self._pending.append((frame(msgpack.packb((ENTRIES, first, body))), last))
        self._last_index = last
        self._recovered = None

    def set_hard_state(self, hs: HardState) -> None:
        """Remember ``hs``; `sync` writes it (only if it changed since the last write)."""
        self._check_usable()
        self._hard_state = hs
        self._recovered = None

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` at the next `sync` and drop every entry it covers (§7).

        A snapshot older than the stored one is refused: Raft never goes back
        (etcd answers ErrSnapOutOfDate), and allowing it would let a replay
        resurrect entries the newer snapshot had already dropped.
        """
        self._check_usable()
        index = snapshot.meta.index
        if index < self._snapshot_index:
            raise ValueError(
                f"snapshot at {index} is older than the stored one at {self._snapshot_index}"
            )
        self._pending_snapshot = snapshot
        self._frames_before_snapshot = len(self._pending)
        self._snapshot_index = index
        self._last_index = max(self._last_index, index)
        self._recovered = None

    def install_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot received from the leader; the log after it is emptied too.

        Written as the snapshot followed by an ENTRIES record with no entries
        at ``index + 1``, which replay reads as "from here on, nothing": stale
        entries after the snapshot can never come back after a restart.
        """
        self.save_snapshot(snapshot)
        first = snapshot.meta.index + 1
        self._pending.append((frame(msgpack.packb((ENTRIES, first, []))), first - 1))
        self._last_index = first - 1

    def sync(self) -> None:
        """Make every buffered operation durable (the order is in the module docstring).

        `DiskFullError`: a write found no space; whatever part of it landed
        was cut back, the operations stay buffered, and `sync` may be called
        again (once there is space, it succeeds).  Any other failure, an
        fsync's above all (`FsyncFailedError`), makes the storage refuse all
        further calls: after a failed fsync the kernel may have dropped the
        dirty pages, and a retried fsync can "succeed" without the data ever
        reaching the disk.
        """
        self._check_usable()
        try:
            self._sync()
        except DiskFullError:
            raise  # nothing half done: what is buffered waits for the next sync
        except BaseException as exc:
            self._failed = exc
            raise

    def close(self) -> None:
        """Sync what is buffered, then release the files and the directory lock."""
        if self._closed:
            return
        try:
            if self._failed is None:
                self.sync()
        finally:
            self._close_fds()

    def __enter__(self) -> DiskStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def lose_power(self) -> None:
        """TEST HOOK (`raft.runtime.powercut`): the machine loses power now.

        Drops every write not yet fsynced (buffers, the active segment's bytes
        past its last fsync, ``*.tmp`` files) and closes without syncing.
        """
        self._check_usable()
        self._pending, self._pending_snapshot = [], None
        os.ftruncate(self._active_fd, self._segments[-1].size)  # preallocated zeros too
        for tmp in self.path.glob("*.tmp"):
            tmp.unlink()
        self._failed = RuntimeError("power lost")
        self._close_fds()

    def fail_next_fsync(self, cause: OSError) -> None:
        """TEST HOOK (`raft.runtime.faultydisk`): the next fsync fails with ``cause``.

        The writes before it have been made (the kernel took them into its
        cache, as a real failing disk's would be); only the fsync fails.
        """
        self._fsync_fault = cause

    @property
    def last_index(self) -> int:
        """Index of the last entry, buffered ones included (the snapshot's if none)."""
        return self._last_index

    # ------------------------------------------------------------- writing

    def _sync(self) -> None:
        # Resumable: each stage forgets its work only once that work is
        # durable, so after a `DiskFullError` the same call picks up where it
        # stopped.  Segments the durable snapshot covers go first: on a full
        # disk they are the space we can free ourselves.
        self._drop_covered_segments()
        snap = self._pending_snapshot
        if snap is not None:
            self._write_records(self._frames_before_snapshot)
            self._replace_file(SNAPSHOT, SNAP_MAGIC, encode_snapshot(snap))
            self._fsync_dir()
            self._durable_snapshot_index = snap.meta.index
            self._pending_snapshot = None
        self._write_records(len(self._pending))
        if self._hs_dirty():
            hs = self._hard_state
            self._replace_file(HARDSTATE, HARD_MAGIC, encode_hard_state(hs))
            self._durable_hs = hs
        self._drop_covered_segments()
        if self._dir_dirty:
            self._fsync_dir()

    def _write_records(self, count: int) -> None:
        """Append the first ``count`` buffered records: one write() and one fsync
        per segment touched.  Records leave the buffer once they are durable."""
        seg = self._segments[-1]
        chunk: list[bytes] = []
        size, max_index = seg.size, seg.max_index
        for record, last in self._pending[:count]:
            if size > FILE_HEADER.size and size + len(record) > self._segment_size:
                self._flush(seg, chunk, size, max_index)
                seg = self._roll()
                chunk = []
                size, max_index = seg.size, seg.max_index
            chunk.append(record)
            size += len(record)
            max_index = max(max_index, last)
        self._flush(seg, chunk, size, max_index)

    def _flush(self, seg: Segment, chunk: list[bytes], size: int, max_index: int) -> None:
        if not chunk:
            return
        fd = self._active_fd
        try:
            if size > self._allocated:
                # Room ahead of the log: zeros the next records overwrite
                # (module docstring); synced with this chunk, by its fdatasync.
                room = max(size, min(self._allocated + self._preallocate, self._segment_size))
                write_all_at(fd, bytes(room - self._allocated), self._allocated)
                self._allocated = room
            write_all_at(fd, b"".join(chunk), seg.size)
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                raise
            # Part of the write may have landed: cut it back, so the segment
            # ends with its last whole record again and a retry writes there.
            os.ftruncate(fd, seg.size)
            self._allocated = seg.size
            raise DiskFullError(seg.path, exc) from None
        self._fsync(fd, seg.path, data_only=True)
        seg.size = size
        seg.max_index = max_index
        del self._pending[: len(chunk)]
        self._frames_before_snapshot = max(0, self._frames_before_snapshot - len(chunk))

    def _roll(self) -> Segment:
        """Start the next segment; the full one is already fsynced.

        The new file is made (and its name made durable, so that segments on
        disk never skip one) before the old one is let go: if the disk is
        full, nothing changed and the write can be retried.
        """
        full = self._segments[-1]
        if self._allocated > full.size:
            # Only the last segment may end in zeros (recovery reads any other
            # to its end): cut them off, durably, before a successor exists.
            os.ftruncate(self._active_fd, full.size)
            self._fsync(self._active_fd, full.path)
            self._allocated = full.size
        seg = self._create_segment(self._segments[-1].seq + 1)
        self._fsync_dir()
        os.close(self._active_fd)
        self._active_fd = -1
        self._segments.append(seg)
        self._active_fd = os.open(seg.path, os.O_WRONLY)
        self._allocated = seg.size
        return seg

    def _create_segment(self, seq: int) -> Segment:
        path = self.path / f"{SEGMENT_PREFIX}{seq:010d}{SEGMENT_SUFFIX}"
        created = False
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            created = True
            try:
                write_all(fd, FILE_HEADER.pack(LOG_MAGIC, FORMAT_VERSION))
            finally:
                os.close(fd)
        except OSError as exc:
            if created:
                path.unlink()  # a header cut short by a full disk: as if never made
            raise _no_space(exc, path) from None
        return Segment(seq, path, FILE_HEADER.size, 0)

    def _replace_file(self, name: str, magic: bytes, payload: bytes) -> None:
        """Write-temp, fsync, rename: readers see the old file or the new one, whole.

        On a full disk the temporary file is removed and the old file stays.
        """
        tmp = self.path / f"{name}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise _no_space(exc, tmp) from None
        try:
            try:
                write_all(fd, FILE_HEADER.pack(magic, FORMAT_VERSION) + frame(payload))
            except OSError as exc:
                tmp.unlink()
                raise _no_space(exc, tmp) from None
            self._fsync(fd, tmp)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, self.path / name)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _no_space(exc, self.path / name) from None
        self._dir_dirty = True

    def _drop_covered_segments(self) -> None:
        """Delete the oldest segments whose every record lies within the durable snapshot.

        Only a prefix of segments goes, and never the one being written:
        dropping records that wrote nothing above the snapshot cannot change
        what replay yields above it.
        """
        segs = self._segments
        while len(segs) > 1 and segs[0].max_index <= self._durable_snapshot_index:
            segs.pop(0).path.unlink()
            self._dir_dirty = True

    def _fsync_dir(self) -> None:
        self._fsync(self._dir_fd, self.path)
        self._dir_dirty = False

    def _fsync(self, fd: int, path: Path, *, data_only: bool = False) -> None:
        """Make ``fd``'s writes durable; ``data_only`` for an appended segment.

        An append needs its bytes and the file's new size on disk, which is
        what ``fdatasync`` guarantees; it skips the timestamps, whose journal
        commit roughly doubled the cost of every log write on this project's
        machines (etcd's WAL syncs the same way).  Renamed files and the
        directory keep the full ``fsync``.
        """
        if not self.durable:
            return
        try:
            if self._fsync_fault is not None:
                fault, self._fsync_fault = self._fsync_fault, None
                raise fault
            (_DATASYNC if data_only else os.fsync)(fd)
        except OSError as exc:
            # Never retried, whatever the errno (ENOSPC included): after a
            # failed fsync Linux may have dropped the dirty pages or marked
            # them clean, so a second fsync can "succeed" with the data never
            # on disk.  What is on disk is known only by reading it again:
            # `sync` marks the storage failed, and a restart recovers from it.
            raise FsyncFailedError(path, exc) from None

    def _hs_dirty(self) -> bool:
        return self._hard_state != self._durable_hs

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError(f"storage {self.path} is closed")
        if self._failed is not None:
            raise RuntimeError(f"storage {self.path} failed earlier: {self._failed}")

    def _close_fds(self) -> None:
        self._closed = True
        for name in ("_active_fd", "_dir_fd", "_lock_fd"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                os.close(fd)  # closing the lock fd releases the flock
                setattr(self, name, -1)

    # ------------------------------------------------------------- reading
