"""Fuzz the storage reader: damaged files open cleanly or raise CorruptLogError.

`raft.runtime.disk.DiskStorage` promises that on open it either recovers a state
(cutting a torn tail off the last segment) or refuses with `CorruptLogError`
naming the file and offset.  Any other exception, or a hang, would be a bug:
a node that crashes with a traceback on a bad disk tells the operator
nothing, and one that "recovers" nonsense breaks Raft's safety.

Inputs, each written into a fresh copy of a real data directory (several
segments, an overwritten suffix, a hard state, a snapshot):

* random damage to one file's bytes: flips, overwrites, insertions,
  deletions, truncation, appended garbage, or the whole file replaced by
  random bytes;
* *well-framed* records (correct checksums) whose msgpack payload is random
  or almost right (wrong types, negative or fractional indexes, bad kinds):
  the checksum cannot catch those, so they test the decoding behind it.

* files deleted (hard state, snapshot, any segment), alone or with damage
  to another file;

After a successful open the state must be consistent (entries contiguous
after the snapshot, typed fields, a hard state of integers) and the storage
usable: an append, a sync and a reopen give back the same state plus the
new entry.  Where the input only damaged or deleted bytes (the first two
kinds), a successful open must also give back what was stored: the same
hard state and snapshot and a prefix of the entries (a torn tail cut off),
never a smaller state that forgot a vote or a snapshot.  Each open is
bounded by `OPEN_BOUND` seconds (SIGALRM).

How many inputs: ``FUZZ_EXAMPLES`` examples per test (default 200, a few
seconds); for a long run::

    FUZZ_EXAMPLES=20000 python -m pytest tests/raft/runtime/test_disk_fuzz.py -s

``-s`` prints how many inputs were tried and how they ended.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import struct
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from raft.core.messages import ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from raft.core.storage import PersistentState
from raft.runtime.disk import FORMAT_VERSION, CorruptLogError, DiskStorage

EXAMPLES = int(__import__("os").environ.get("FUZZ_EXAMPLES", "200"))
SEGMENT_SIZE = 1024
OPEN_BOUND = 5.0
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=OPEN_BOUND * 1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: How every input ended, across the module: the "inputs tried".
OUTCOMES: Counter[str] = Counter()


def build_pristine(path: Path) -> PersistentState:
    """A data directory with several segments, an overwrite, hard state and snapshot."""
    with DiskStorage(path, segment_size=SEGMENT_SIZE) as disk:
        for first in range(1, 90, 6):
            disk.append([Entry(1, i, b"command-%d" % i) for i in range(first, first + 6)])
            disk.sync()
        disk.append([Entry(2, 85, b"", EntryKind.NOOP), Entry(2, 86, b"c", EntryKind.CONFIG)])
        disk.set_hard_state(HardState(2, "manager2", 80))
        disk.save_snapshot(Snapshot(SnapshotMeta(20, 1, ConfState(("m1", "m2"), ("m3",))), b"s"))
        disk.sync()
        disk.append([Entry(2, 87, b"after")])
        disk.sync()
    with DiskStorage(path, segment_size=SEGMENT_SIZE) as disk:
        return disk.load()


@pytest.fixture(scope="module")
def pristine() -> Iterator[tuple[Path, PersistentState]]:
    root = Path(tempfile.mkdtemp(prefix="fuzz-storage-"))
    try:
        state = build_pristine(root / "data")
        (root / "data" / "LOCK").unlink()
        yield root / "data", state
    finally:
        shutil.rmtree(root, ignore_errors=True)
        print(f"\nfuzz_storage: {sum(OUTCOMES.values())} inputs, outcomes {dict(OUTCOMES)}")


@contextlib.contextmanager
def copy_of(pristine: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-case-") as tmp:
        target = Path(tmp) / "data"
        shutil.copytree(pristine, target)
        yield target


class Hang(Exception):
    pass


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"DiskStorage open took more than {seconds}s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_consistent(state: PersistentState) -> None:
    hs, snap = state.hard_state, state.snapshot
    for value in (hs.term, hs.commit, snap.meta.index, snap.meta.term):
        assert type(value) is int and value >= 0, state
    assert hs.vote is None or isinstance(hs.vote, str), hs
    assert isinstance(snap.data, bytes)
    assert all(isinstance(n, str) for n in snap.meta.conf.members), snap.meta.conf
    for offset, e in enumerate(state.entries, snap.meta.index + 1):
        assert e.index == offset, (e, offset)
        assert type(e.term) is int and e.term >= 0, e
        assert isinstance(e.kind, EntryKind) and isinstance(e.data, bytes), e


def open_and_judge(
    path: Path, original: PersistentState | None = None, *, traceless: bool = False
) -> str:
    """Open the damaged directory; return how it ended, failing on anything but the two.

    With ``original`` (the input only lost bytes), an open must give back the
    same hard state and snapshot and a prefix of the original entries.
    ``traceless``: the input also lost the hard state, the snapshot and every
    segment but the first, so an empty state is allowed too -- a directory
    with every trace of its past gone cannot be told from a new one (etcd's
    cannot either).
    """
    try:
        with bounded(OPEN_BOUND):
            storage = DiskStorage(path, segment_size=SEGMENT_SIZE)
    except CorruptLogError as exc:
        assert "\n" not in str(exc) and exc.file, exc
        return "corrupt"
    with storage:
        state = storage.load()
        check_consistent(state)
        if traceless and state == PersistentState(HardState(), Snapshot(), []):
            original = None
        if original is not None:
            assert state.hard_state == original.hard_state
            assert state.snapshot == original.snapshot
            assert state.entries == original.entries[: len(state.entries)]
        nxt = storage.last_index + 1
        storage.append([Entry(max(9, state.hard_state.term), nxt, b"probe")])
    with bounded(OPEN_BOUND), DiskStorage(path, segment_size=SEGMENT_SIZE) as again:
        after = again.load()
    assert after.entries == [*state.entries, Entry(max(9, state.hard_state.term), nxt, b"probe")]
    assert after.hard_state == state.hard_state and after.snapshot == state.snapshot
    return "repaired" if storage.recovery_notes else "opened"


def record(outcome: str) -> None:
    OUTCOMES[outcome] += 1
    if currently_in_test_context():
        event(outcome)


# -- random damage to bytes ------------------------------------------------------------


@st.composite
def damage(draw: st.DrawFn, data: bytes) -> bytes:
    buf = bytearray(data)
    how = draw(
        st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "append", "replace"])
    )
    pos = draw(st.integers(0, max(0, len(buf) - 1)))
    if how == "flip" and buf:
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] ^= draw(st.integers(1, 255))
    elif how == "overwrite":
        chunk = draw(st.binary(min_size=1, max_size=32))
        buf[pos : pos + len(chunk)] = chunk
    elif how == "insert":
        buf[pos:pos] = draw(st.binary(min_size=1, max_size=32))
    elif how == "delete":
        del buf[pos : pos + draw(st.integers(1, 64))]
    elif how == "truncate":
        del buf[pos:]
    elif how == "append":
        buf += draw(st.one_of(st.binary(min_size=1, max_size=64), st.just(bytes(4096))))
    else:
        buf = bytearray(draw(st.binary(max_size=256)))
    return bytes(buf)


@FUZZ
@given(data=st.data())
def test_random_damage_to_one_file(pristine: tuple[Path, PersistentState], data: Any) -> None:
    path, original = pristine
    files = sorted(p.name for p in path.iterdir())
    name = data.draw(st.sampled_from(files), label="file")
    with copy_of(path) as case:
        target = case / name
        target.write_bytes(data.draw(damage(target.read_bytes()), label="bytes"))
        record(open_and_judge(case, original))


@FUZZ
@given(data=st.data())
def test_random_damage_to_several_files(pristine: tuple[Path, PersistentState], data: Any) -> None:
    path, original = pristine
    files = sorted(p.name for p in path.iterdir())
    names = data.draw(st.lists(st.sampled_from(files), min_size=2, max_size=4, unique=True))
    with copy_of(path) as case:
        for name in names:
            target = case / name
            target.write_bytes(data.draw(damage(target.read_bytes())))
        record(open_and_judge(case, original))


@FUZZ
@given(data=st.data())
def test_deleted_files(pristine: tuple[Path, PersistentState], data: Any) -> None:
    """A lost file must refuse to start, or leave what was stored (a lost last
    segment whose entries were not committed reads like a torn tail)."""
    path, original = pristine
    files = sorted(p.name for p in path.iterdir())
    gone = data.draw(st.lists(st.sampled_from(files), min_size=1, max_size=3, unique=True))
    damaged = data.draw(st.sampled_from([None, *sorted(set(files) - set(gone))]))
    with copy_of(path) as case:
        for name in gone:
            (case / name).unlink()
        if damaged is not None:
            target = case / damaged
            target.write_bytes(data.draw(damage(target.read_bytes())))
        traceless = not {"hardstate", "snapshot", "log-0000000002.seg"} - set(gone)
        record(open_and_judge(case, original, traceless=traceless))


@pytest.mark.parametrize("name", ["hardstate", "snapshot", "log-0000000001.seg"])
def test_each_lost_file_of_the_pristine_directory_is_refused(
    pristine: tuple[Path, PersistentState], name: str
) -> None:
    """The deterministic floor under `test_deleted_files`: these are refused, not opened."""
    path, _ = pristine
    with copy_of(path) as case:
        (case / name).unlink()
        assert open_and_judge(case) == "corrupt"


def test_pristine_copy_opens_to_the_same_state(pristine: tuple[Path, PersistentState]) -> None:
    path, state = pristine
    with copy_of(path) as case, DiskStorage(case, segment_size=SEGMENT_SIZE) as disk:
        got = disk.load()
    assert got == state
    assert len(list(path.glob("log-*.seg"))) > 1


# -- well-framed records with wrong contents ---------------------------------------------

_HEADER = struct.Struct("<6sH")
MAGIC = {"log": b"SRLOG\0", "hardstate": b"SRHRD\0", "snapshot": b"SRSNP\0"}


def framed(payload: bytes) -> bytes:
    head = struct.pack("<II", len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


def file_of(kind: str, *payloads: bytes) -> bytes:
    return _HEADER.pack(MAGIC[kind], FORMAT_VERSION) + b"".join(framed(p) for p in payloads)


MSGPACK_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=8),
)
MSGPACK = st.recursive(
    MSGPACK_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)
SMALL = st.one_of(st.integers(-3, 80), MSGPACK_LEAF)


@st.composite
def log_payloads(draw: st.DrawFn) -> bytes:
    """A log record: random msgpack, or ``[1, first, [[term, kind, data]...]]`` gone wrong."""
    if draw(st.integers(0, 3)) == 0:
        return msgpack.packb(draw(MSGPACK))
    entry = st.one_of(
        st.tuples(SMALL, SMALL, SMALL).map(list),
        st.tuples(st.integers(0, 5), st.integers(-2, 4), st.binary(max_size=4)).map(list),
        MSGPACK,
    )
    body = draw(st.one_of(st.lists(entry, max_size=4), MSGPACK))
    rtype = draw(st.one_of(st.just(1), SMALL))
    first = draw(st.one_of(st.integers(-2, 70), SMALL))
    shape = draw(st.sampled_from([[rtype, first, body], [rtype, first], [rtype, first, body, 0]]))
    return msgpack.packb(shape)


@st.composite
def hardstate_payloads(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return msgpack.packb(draw(MSGPACK))
    return msgpack.packb([draw(SMALL), draw(SMALL), draw(SMALL)])


@st.composite
def snapshot_payloads(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return msgpack.packb(draw(MSGPACK))
    names = st.one_of(st.lists(st.one_of(st.text(max_size=3), SMALL), max_size=3), SMALL)
    return msgpack.packb(
        [draw(SMALL), draw(SMALL), draw(names), draw(names), draw(st.one_of(st.binary(), SMALL))]
    )


@FUZZ
@given(data=st.data())
def test_well_framed_records_with_wrong_contents(
    pristine: tuple[Path, PersistentState], data: Any
) -> None:
    path, _ = pristine
    where = data.draw(st.sampled_from(["last-segment", "new-segment", "hardstate", "snapshot"]))
    with copy_of(path) as case:
        if where == "hardstate":
            (case / "hardstate").write_bytes(file_of("hardstate", data.draw(hardstate_payloads())))
        elif where == "snapshot":
            (case / "snapshot").write_bytes(file_of("snapshot", data.draw(snapshot_payloads())))
        else:
            records = data.draw(st.lists(log_payloads(), min_size=1, max_size=3))
            segs = sorted(case.glob("log-*.seg"))
            if where == "last-segment":
                with segs[-1].open("ab") as f:
                    f.write(b"".join(framed(r) for r in records))
            else:
                seq = int(segs[-1].name[4:-4]) + 1
                (case / f"log-{seq:010d}.seg").write_bytes(file_of("log", *records))
        record(open_and_judge(case))


# -- regressions: checksummed records of the wrong type were accepted -------------------


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("hardstate", [0, 0, 0]),  # vote an integer
        ("hardstate", [0, None, None]),  # commit nil
        ("hardstate", ["1", None, 0]),
        ("hardstate", [True, None, 0]),
        ("snapshot", [0, 0, [], [], 0]),  # data not bytes
        ("snapshot", [1, 1, [7], [], b""]),  # a voter that is not a name
        ("snapshot", [1.5, 1, [], [], b""]),
    ],
)
def test_wrongly_typed_hardstate_or_snapshot_is_corrupt(
    pristine: tuple[Path, PersistentState], name: str, payload: list[Any]
) -> None:
    """Found by the fuzzer: such files opened "fine" and gave the node a HardState
    or Snapshot of the wrong types, to crash on much later."""
    path, _ = pristine
    with copy_of(path) as case:
        (case / name).write_bytes(file_of(name, msgpack.packb(payload)))
        with pytest.raises(CorruptLogError) as info:
            DiskStorage(case, segment_size=SEGMENT_SIZE)
        assert info.value.file == str(case / name)


@pytest.mark.parametrize(
    "record",
    [
        [1, 1.5, []],  # a fractional first index
        [1, True, []],
        [1, 90, 5],  # entries not a list
        [1, 88, [[2, -1, b"x"]]],  # a negative kind picked EntryKind from the end
        [1, 88, [[2, 7, b"x"]]],
        [1, 88, [[2, 0, "text"]]],  # data not bytes
        [1, 88, [[2.0, 0, b"x"]]],
        [1, 88, [[2, 0]]],
    ],
)
def test_wrongly_typed_log_record_is_corrupt(
    pristine: tuple[Path, PersistentState], record: list[Any]
) -> None:
    path, _ = pristine
    with copy_of(path) as case:
        seg = sorted(case.glob("log-*.seg"))[-1]
        with seg.open("ab") as f:
            f.write(framed(msgpack.packb(record)))
        with pytest.raises(CorruptLogError) as info:
            DiskStorage(case, segment_size=SEGMENT_SIZE)
        assert info.value.file == str(seg)
