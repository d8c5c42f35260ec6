"""The bytes of `DiskStorage`'s files: headers, checksummed frames, payloads.

Pure functions, no file I/O: `raft.runtime.disk` reads and writes the files
and its module docstring describes the format and the recovery rules these
functions apply (what counts as a torn tail, what as corruption).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import msgpack

from raft.core.messages import ConfState, EntryKind, HardState, Snapshot, SnapshotMeta

__all__ = [
    "ENTRIES",
    "FILE_HEADER",
    "FORMAT_VERSION",
    "HARD_MAGIC",
    "KINDS",
    "LOG_MAGIC",
    "SNAP_MAGIC",
    "CorruptLogError",
    "all_zero",
    "decode_hard_state",
    "decode_snapshot",
    "encode_hard_state",
    "encode_snapshot",
    "entry_ok",
    "frame",
    "record_span",
    "scan",
    "uint",
]

#: Bumped whenever the bytes on disk change meaning; written in every file header.
FORMAT_VERSION = 1

FILE_HEADER = struct.Struct("<6sH")  # magic, format version
FRAME = struct.Struct("<III")  # payload length, crc32(payload), crc32(first 8 bytes)
LEN_CRC = struct.Struct("<II")
U32 = struct.Struct("<I")

LOG_MAGIC = b"SRLOG\0"
HARD_MAGIC = b"SRHRD\0"
SNAP_MAGIC = b"SRSNP\0"

ENTRIES = 1  # the only log record type of format 1

#: EntryKind by value, so decoding is a tuple index rather than an enum call per entry.
KINDS: tuple[EntryKind, ...] = tuple(sorted(EntryKind))
assert all(k.value == i for i, k in enumerate(KINDS)), "EntryKind values must be 0..n-1"


class CorruptLogError(Exception):
    """Stored bytes are damaged in a way a crash cannot explain: refuse to start.

    Carries ``file``, the byte ``offset`` of the damaged record (or file
    header) and the ``reason``, so an operator can inspect or cut the file.
    """

    def __init__(self, file: str | os.PathLike[str], offset: int, reason: str) -> None:
        self.file = os.fspath(file)
        self.offset = offset
        self.reason = reason
        super().__init__(f"corrupt Raft storage: {self.file} at byte {offset}: {reason}")


# --------------------------------------------------------------------------
# Framing and encoding (pure functions)


def frame(payload: bytes) -> bytes:
    """One record on disk: checksummed header then payload."""
    head = LEN_CRC.pack(len(payload), zlib.crc32(payload))
    return head + U32.pack(zlib.crc32(head)) + payload


def all_zero(buf: bytes | memoryview) -> bool:
    return not bytes(buf).strip(b"\0")


def scan(
    data: bytes, file: Path, magic: bytes, *, tail_ok: bool
) -> tuple[list[tuple[int, memoryview]], int, str | None]:
    """Split one file into verified record payloads.

    Returns ``(records, end, torn)``: each record as (offset, payload), the
    offset where the good records end, and why the bytes from ``end`` on are
    a torn tail (None if the file is whole).  A torn tail is accepted only
    when ``tail_ok`` (the last log segment); any damage that is not a torn
    tail raises `CorruptLogError`.  The rules are in the module docstring.
    """
    size = len(data)
    header = FILE_HEADER.pack(magic, FORMAT_VERSION)
    hsize = FILE_HEADER.size
    if data[:hsize] != header:
        if tail_ok and (all_zero(data) or (size < hsize and header.startswith(data))):
            return [], 0, "incomplete file header"
        if size < hsize:
            raise CorruptLogError(file, 0, f"file of {size} bytes is shorter than its header")
        got_magic, version = FILE_HEADER.unpack_from(data)
        if got_magic != magic:
            raise CorruptLogError(file, 0, f"bad magic {got_magic!r}, expected {magic!r}")
        raise CorruptLogError(
            file, 6, f"unsupported format version {version} (this code reads {FORMAT_VERSION})"
        )
    view = memoryview(data)
    records: list[tuple[int, memoryview]] = []
    pos = hsize
    while pos < size:
        if size - pos < FRAME.size:
            if tail_ok:
                return records, pos, "record header cut by the end of the file"
            raise CorruptLogError(file, pos, "record header cut by the end of the file")
        length, crc, head_crc = FRAME.unpack_from(data, pos)
        if zlib.crc32(view[pos : pos + 8]) != head_crc:
            if tail_ok and all_zero(view[pos:]):
                return records, pos, "zero bytes where a record should start"
            raise CorruptLogError(file, pos, "record header checksum mismatch")
        start = pos + FRAME.size
        end = start + length
        if end > size:
            if tail_ok:
                return records, pos, f"record of {length} bytes cut by the end of the file"
            raise CorruptLogError(file, pos, f"record of {length} bytes runs past end of file")
        payload = view[start:end]
        if zlib.crc32(payload) != crc:
            if tail_ok and all_zero(view[end:]):
                return records, pos, "last record fails its checksum"
            raise CorruptLogError(file, pos, "record checksum mismatch with data after it")
        records.append((pos, payload))
        pos = end
    return records, pos, None


#: How a msgpack uint that follows its one-byte type is laid out (0xcc..0xcf).
_UINTS = {0xCC: struct.Struct(">B"), 0xCD: struct.Struct(">H"), 0xCE: struct.Struct(">I"),
          0xCF: struct.Struct(">Q")}  # fmt: skip
#: Array headers with a length after the type byte (0xdc, 0xdd).
_ARRAYS = {0xDC: struct.Struct(">H"), 0xDD: struct.Struct(">I")}


def record_span(payload: bytes | memoryview) -> tuple[int, int] | None:
    """``(first_index, count)`` of an ENTRIES record, read from its head alone.

    A restart skips the records that lie wholly behind the snapshot (§7)
    without decoding their entries: only the first few bytes say which
    indexes a record holds.  The record is msgpack ``[1, first, [e, ...]]``
    as `DiskStorage.append` packs it: fixarray of 3, the fixint 1, ``first``
    as a uint, then the entries' array header.  Returns None for any other
    shape; the caller then decodes the whole record and reports what is
    wrong with it.
    """
    if len(payload) < 3 or payload[0] != 0x93 or payload[1] != ENTRIES:
        return None
    pos = 2
    tag = payload[pos]
    if tag < 0x80:
        first = tag
        pos += 1
    elif tag in _UINTS:
        fmt = _UINTS[tag]
        if len(payload) < pos + 1 + fmt.size:
            return None
        (first,) = fmt.unpack_from(payload, pos + 1)
        pos += 1 + fmt.size
    else:
        return None
    if len(payload) <= pos:
        return None
    tag = payload[pos]
    if 0x90 <= tag <= 0x9F:
        count = tag - 0x90
    elif tag in _ARRAYS:
        fmt = _ARRAYS[tag]
        if len(payload) < pos + 1 + fmt.size:
            return None
        (count,) = fmt.unpack_from(payload, pos + 1)
    else:
        return None
    return (first, count) if first >= 1 else None


def encode_hard_state(hs: HardState) -> bytes:
    return msgpack.packb([hs.term, hs.vote, hs.commit])


def uint(value: Any) -> bool:
    return type(value) is int and value >= 0  # not bool, not float


def names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(n, str) for n in value)


def entry_ok(item: Any) -> bool:
    """``[term, kind, data]`` with the types `Entry` needs (checked on replay)."""
    return (
        isinstance(item, list)
        and len(item) == 3
        and uint(item[0])
        and uint(item[1])
        and item[1] < len(KINDS)
        and isinstance(item[2], bytes)
    )


# A record with a valid checksum can still hold values of the wrong type (a
# bug elsewhere, another format): the decoders check types, so that such a
# file is reported as corrupt instead of crashing the node later.


def decode_hard_state(obj: Any) -> HardState:
    term, vote, commit = obj
    if not (uint(term) and uint(commit) and (vote is None or isinstance(vote, str))):
        raise ValueError("fields of the wrong type")
    return HardState(term=term, vote=vote, commit=commit)


def encode_snapshot(snap: Snapshot) -> bytes:
    m = snap.meta
    return msgpack.packb([m.index, m.term, list(m.conf.voters), list(m.conf.learners), snap.data])


def decode_snapshot(obj: Any) -> Snapshot:
    index, term, voters, learners, data = obj
    if not (uint(index) and uint(term) and names(voters) and names(learners)):
        raise ValueError("fields of the wrong type")
    if not isinstance(data, bytes):
        raise ValueError("data is not bytes")
    conf = ConfState(voters=tuple(voters), learners=tuple(learners))
    return Snapshot(meta=SnapshotMeta(index=index, term=term, conf=conf), data=data)
