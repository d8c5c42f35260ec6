"""Reading a data directory back: what `DiskStorage` recovers at open and on `load`.

Recovery decodes the hard state and snapshot files (only ever replaced whole,
by rename, so any damage is corruption) and replays the log segments in
order, keeping only the entries after the snapshot (§7).  A torn tail on the
last segment -- a crash in the middle of an append that was never
acknowledged -- is cut off and fsynced before the node starts (`cut_tail`);
damage anywhere else is `CorruptLogError`, never silently skipped.

A *missing* file is damage too (`check_complete`).  A directory is born
with its first segment, an empty snapshot and its hard state, in that
order, and from then on a crash can neither remove one of them, nor a
segment the snapshot does not cover, nor leave a gap in the segment
numbers.  So a lost hard state (the term and vote would be forgotten: the
node could vote twice in one term, §5.2), a lost snapshot (§7) or a lost
segment refuses to start, naming the file, rather than open as a smaller,
"valid" state.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from raft.core.messages import Entry, HardState, Snapshot
from raft.core.storage import PersistentState
from raft.runtime.diskformat import (
    ENTRIES,
    FILE_HEADER,
    FORMAT_VERSION,
    HARD_MAGIC,
    KINDS,
    LOG_MAGIC,
    SNAP_MAGIC,
    CorruptLogError,
    all_zero,
    decode_hard_state,
    decode_snapshot,
    entry_ok,
    record_span,
    scan,
    uint,
)

__all__ = [
    "HARDSTATE",
    "SEGMENT_PREFIX",
    "SEGMENT_SUFFIX",
    "SNAPSHOT",
    "Segment",
    "check_complete",
    "cut_tail",
    "read_single",
    "read_state",
    "write_all",
    "write_all_at",
]

logger = logging.getLogger("raft.runtime.disk")

#: The files of a data directory (besides its LOCK).
HARDSTATE = "hardstate"
SNAPSHOT = "snapshot"
SEGMENT_PREFIX = "log-"
SEGMENT_SUFFIX = ".seg"


@dataclass(slots=True)
class Segment:
    seq: int
    path: Path
    size: int
    #: Highest index any record in it wrote: once the durable snapshot covers
    #: it (and every older segment), replay no longer needs the file.
    max_index: int


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until done: a write to a regular file may still be short."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_all_at(fd: int, data: bytes, offset: int) -> None:
    """``os.pwrite`` until done, from ``offset`` on."""
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def read_state(
    directory: Path, *, repair: bool, notes: list[str]
) -> tuple[PersistentState, list[Segment]]:
    """Decode every file of ``directory``; with ``repair``, cut a torn tail off the last
    segment (saying so in ``notes``)."""
    hard_state = read_single(directory, HARDSTATE, HARD_MAGIC, decode_hard_state)
    snapshot = read_single(directory, SNAPSHOT, SNAP_MAGIC, decode_snapshot)
    found = {HARDSTATE: hard_state is not None, SNAPSHOT: snapshot is not None}
    hard_state = hard_state or HardState()
    snapshot = snapshot or Snapshot()

    paths = sorted(
        (int(p.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]), p)
        for p in directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}")
    )
    # Only entries after the snapshot are kept while replaying (§7): the
    # active segment can hold up to `segment_size` bytes of entries the
    # snapshot already covers (only whole segments are deleted), and
    # decoding them all before dropping them would leave a restarted node
    # holding memory it never gives back.
    start = snapshot.meta.index + 1
    run: list[list[Any]] = []  # [term, kind, data] of index run_first + i
    run_first = 0
    segments: list[Segment] = []
    for n, (seq, path) in enumerate(paths):
        is_last = n == len(paths) - 1
        data = path.read_bytes()
        records, end, torn = scan(data, path, LOG_MAGIC, tail_ok=is_last)
        if torn is not None and end >= FILE_HEADER.size and all_zero(memoryview(data)[end:]):
            torn = None  # zeros alone: the room preallocated ahead of the log (`raft.runtime.disk`)
        if torn is not None and not repair:
            raise CorruptLogError(path, end, torn)  # a torn tail is cut when opening only
        if torn is not None:
            cut_tail(path, end, len(data), torn, notes)
            end = max(end, FILE_HEADER.size)
        max_index = 0
        for offset, payload in records:
            span = record_span(payload)
            if span is not None and span[0] + span[1] <= start:
                # Wholly behind the snapshot: its checksum held (`scan`), and
                # whatever it says, the run is empty after it (the replay
                # below would drop every one of its entries, and a record
                # starting below a non-empty run starts a new run), so its
                # entries need not be decoded.  This is most of a restart's
                # reading: a segment is deleted only once all of it is behind.
                run = []
                max_index = max(max_index, span[0] + span[1] - 1)
                continue
            try:
                rtype, first, body = msgpack.unpackb(payload)
                if rtype != ENTRIES or not uint(first) or first < 1:
                    raise ValueError(f"record type {rtype!r:.20}, first {first!r:.20}")
                if not (isinstance(body, list) and all(entry_ok(x) for x in body)):
                    raise ValueError("entries of the wrong shape or type")
            except Exception as exc:
                raise CorruptLogError(path, offset, f"undecodable record: {exc}") from exc
            if run and run_first <= first <= run_first + len(run):
                del run[first - run_first :]
                run.extend(body)
            else:  # cut below the run, or a new run after a snapshot emptied the log
                run, run_first = body, first
            max_index = max(max_index, first + len(body) - 1)
            if run and run_first < start:
                # Drop what the snapshot covers, as MemoryStorage.save_snapshot
                # does.  The run's end (what a later record may extend or
                # cut) does not move, so the result is the same as
                # dropping at the end: a later record that cuts below
                # ``start`` starts a new run whose entries from ``start`` on
                # are the ones the whole run would have had.
                drop = min(len(run), start - run_first)
                del run[:drop]
                run_first += drop
        del data, records  # before the next segment is read
        segments.append(Segment(seq, path, end, max_index))

    entries: list[Entry] = []
    if run and run_first <= start < run_first + len(run):
        try:
            entries = [
                Entry(t, i, d, KINDS[k])
                for i, (t, k, d) in enumerate(run[start - run_first :], start)
            ]
        except (TypeError, ValueError, IndexError) as exc:
            raise CorruptLogError(directory, 0, f"undecodable entry: {exc}") from exc
    state = PersistentState(hard_state, snapshot, entries)
    check_complete(directory, state, segments, found, run_first if run else None)
    return state, segments


def check_complete(
    directory: Path,
    state: PersistentState,
    segments: list[Segment],
    found: dict[str, bool],
    log_first: int | None,
) -> None:
    """Refuse a directory that lost a file its log needs (`CorruptLogError`, one line).

    ``found`` says which of hardstate and snapshot exist; ``log_first`` is the
    index the replayed log starts at (None: no entries above the snapshot).
    Only a directory a crash left half born (at most an empty first segment
    and an empty snapshot) may lack its hard state.
    """
    for older, newer in itertools.pairwise(segments):
        if newer.seq != older.seq + 1:
            missing = directory / f"{SEGMENT_PREFIX}{older.seq + 1:010d}{SEGMENT_SUFFIX}"
            raise CorruptLogError(missing, 0, "log segment missing (entries lost)")
    if not segments and (found[HARDSTATE] or found[SNAPSHOT]):
        first = directory / f"{SEGMENT_PREFIX}{1:010d}{SEGMENT_SUFFIX}"
        raise CorruptLogError(first, 0, "no log segment beside the hard state (log lost)")
    if not found[HARDSTATE]:
        # The hard state is the last file of a birth: without it, only an
        # empty first segment (and an empty snapshot) may exist.
        newborn = state.snapshot.meta.index == 0 and all(
            s.seq == 1 and s.max_index == 0 for s in segments
        )
        if not newborn:
            raise CorruptLogError(
                directory / HARDSTATE, 0, "missing beside a log (the term and vote would be lost)"
            )
    elif not found[SNAPSHOT]:
        raise CorruptLogError(
            directory / SNAPSHOT, 0, "missing beside the hard state (a lost snapshot)"
        )
    start = state.snapshot.meta.index + 1
    if log_first is not None and log_first > start:
        raise CorruptLogError(
            segments[0].path,
            0,
            f"the log starts at index {log_first} but the snapshot ends at {start - 1}"
            " (a snapshot or segment is missing)",
        )
    last = state.snapshot.meta.index + len(state.entries)
    if state.hard_state.commit > last:
        # The hard state is written after the log it commits (disk.DiskStorage._sync),
        # and Raft never overwrites a committed entry (§5.4), so this is a lost file.
        raise CorruptLogError(
            directory / HARDSTATE,
            0,
            f"commit index {state.hard_state.commit} is past the log's last index {last}"
            " (a log segment is missing)",
        )


def read_single(directory: Path, name: str, magic: bytes, decode: Any) -> Any:
    """Read a file that is only ever replaced whole (by rename): any damage is corruption."""
    path = directory / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    records, _, _ = scan(data, path, magic, tail_ok=False)
    if len(records) != 1:
        raise CorruptLogError(path, FILE_HEADER.size, f"{len(records)} records, expected 1")
    try:
        return decode(msgpack.unpackb(records[0][1]))
    except Exception as exc:
        raise CorruptLogError(path, FILE_HEADER.size, f"undecodable: {exc}") from exc


def cut_tail(path: Path, end: int, size: int, reason: str, notes: list[str]) -> None:
    """Truncate a torn tail at ``end`` (rewriting a torn file header) and fsync."""
    note = f"{path}: cut {size - end} bytes of torn tail at byte {end} ({reason})"
    logger.warning("%s", note)
    notes.append(note)
    fd = os.open(path, os.O_WRONLY)
    try:
        if end < FILE_HEADER.size:
            os.ftruncate(fd, 0)
            write_all(fd, FILE_HEADER.pack(LOG_MAGIC, FORMAT_VERSION))
        else:
            os.ftruncate(fd, end)
        os.fsync(fd)
    finally:
        os.close(fd)
