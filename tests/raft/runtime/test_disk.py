"""DiskStorage: same answers as MemoryStorage, and it survives crashes.

Layers: a model test against `MemoryStorage` over random operations with
reopens in between; byte-level tests that cut or damage the files the way
a crash or a bad disk would; one integration test that SIGKILLs a real
writer process many times.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import msgpack
import pytest
from repo import HELPERS

from raft.core.messages import ConfState, Entry, EntryKind, HardState, Snapshot, SnapshotMeta
from raft.core.storage import MemoryStorage, PersistentState
from raft.runtime import diskread
from raft.runtime.disk import CorruptLogError, DataDirInUseError, DiskStorage
from raft.runtime.diskformat import ENTRIES, FILE_HEADER, LOG_MAGIC, frame, record_span, scan

SMALL_SEGMENTS = 1024  # a few records per segment: roll-over and compaction happen often


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("log-*.seg"))


def entries(first: int, last: int, term: int, tag: bytes = b"") -> list[Entry]:
    return [Entry(term, i, tag + b"%d" % i) for i in range(first, last + 1)]


def assert_same(got: PersistentState, want: PersistentState) -> None:
    assert got.hard_state == want.hard_state
    assert got.snapshot == want.snapshot
    assert got.entries == want.entries


# --------------------------------------------------------------------------
# Model test: DiskStorage against MemoryStorage


def random_operation(rng: random.Random, mem: MemoryStorage) -> tuple[str, object]:
    state = mem.load()
    snap = state.snapshot.meta.index
    last = snap + len(state.entries)
    roll = rng.random()
    if roll < 0.55:
        # mostly valid appends, some overwriting a suffix, a few invalid ones
        first = rng.randint(max(1, snap - 1), last + 2) if rng.random() < 0.1 else last + 1
        if rng.random() < 0.3:
            first = rng.randint(snap + 1, last + 1)
        if snap < first <= state.hard_state.commit:
            # Raft never overwrites a committed entry (§5.4), and recovery
            # reads a commit index past the log's end as a lost segment.
            first = state.hard_state.commit + 1
        term = state.hard_state.term + rng.randint(0, 1)
        n = rng.randint(1, 12)
        kinds = list(EntryKind)
        batch = [
            Entry(term, i, rng.randbytes(rng.randint(0, 40)), rng.choice(kinds))
            for i in range(max(first, 1), max(first, 1) + n)
        ]
        return "append", batch
    if roll < 0.75:
        hs = HardState(
            term=state.hard_state.term + rng.randint(0, 2),
            vote=rng.choice([None, "n1", "manager2"]),
            commit=rng.randint(0, last),
        )
        return "hard_state", hs
    if roll < 0.85:
        index = rng.randint(max(0, snap - 1), last + 3)
        conf = ConfState(voters=("n1", "n2", "n3")[: rng.randint(1, 3)], learners=("n9",))
        return "snapshot", Snapshot(SnapshotMeta(index, rng.randint(0, 5), conf), rng.randbytes(9))
    if roll < 0.95:
        return "sync", None
    return "reopen", None


def apply(storage: MemoryStorage | DiskStorage, op: str, arg: object) -> str:
    """Run one operation; returns "error" if it raised ValueError."""
    try:
        if op == "append":
            storage.append(arg)  # type: ignore[arg-type]
        elif op == "hard_state":
            storage.set_hard_state(arg)  # type: ignore[arg-type]
        elif op == "snapshot":
            storage.save_snapshot(arg)  # type: ignore[arg-type]
        elif op == "sync":
            storage.sync()
    except ValueError:
        return "error"
    return "ok"


@pytest.mark.parametrize("seed", range(12))
def test_model_random_operations_with_reopen(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    mem = MemoryStorage()
    disk = DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS)
    try:
        for _ in range(250):
            op, arg = random_operation(rng, mem)
            if op == "snapshot" and arg.meta.index < mem.load().snapshot.meta.index:  # type: ignore[attr-defined]
                # DiskStorage refuses to go back to an older snapshot (see save_snapshot).
                with pytest.raises(ValueError):
                    disk.save_snapshot(arg)  # type: ignore[arg-type]
                continue
            if op == "reopen":
                disk.close()
                disk = DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS)
                assert_same(disk.load(), mem.load())
                continue
            assert apply(disk, op, arg) == apply(mem, op, arg), (op, arg)
            assert disk.last_index == mem.load().snapshot.meta.index + len(mem.load().entries)
            if rng.random() < 0.1:
                assert_same(disk.load(), mem.load())
        disk.close()
        disk = DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS)
        assert_same(disk.load(), mem.load())
    finally:
        disk.close()


def test_round_trip_overwrite_hard_state_snapshot(tmp_path: Path) -> None:
    conf = ConfState(voters=("manager1", "manager2"), learners=("manager3",))
    ops: list[tuple[str, object]] = [
        ("append", entries(1, 10, 1)),
        ("append", [Entry(1, 11, b"", EntryKind.NOOP), Entry(1, 12, b"c", EntryKind.CONFIG)]),
        ("append", entries(7, 9, 2, b"new")),  # §5.3: a conflicting suffix is replaced
        ("hard_state", HardState(term=2, vote="manager2", commit=6)),
        ("snapshot", Snapshot(SnapshotMeta(5, 1, conf), b"image")),
        ("append", entries(10, 14, 2)),
    ]
    mem = MemoryStorage()
    with DiskStorage(tmp_path) as disk:
        for op, arg in ops:
            apply(disk, op, arg)
            apply(mem, op, arg)
        disk.sync()
    with DiskStorage(tmp_path) as disk:
        got = disk.load()
    assert_same(got, mem.load())
    assert [e.index for e in got.entries] == list(range(6, 15))
    assert got.entries[1] == Entry(2, 7, b"new7")
    assert got.snapshot.meta.conf == conf


def test_snapshot_past_the_log_empties_it_and_compacts_segments(tmp_path: Path) -> None:
    with DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS) as disk:
        for first in range(1, 200, 10):
            disk.append(entries(first, first + 9, 1, b"x" * 20))
            disk.sync()
        assert len(segments(tmp_path)) > 5
        disk.save_snapshot(Snapshot(SnapshotMeta(250, 3), b"s"))
        disk.append(entries(251, 252, 3))
        disk.sync()
        # every segment but the one being written was covered and deleted
        assert len(segments(tmp_path)) == 1
    with DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS) as disk:
        state = disk.load()
    assert state.snapshot.meta.index == 250
    assert state.entries == entries(251, 252, 3)


@pytest.mark.parametrize("segment_size", [SMALL_SEGMENTS, 1 << 20])
def test_installed_snapshot_drops_the_log_after_it_for_good(
    tmp_path: Path, segment_size: int
) -> None:
    # Figure 13: a follower that installs the leader's snapshot discards its
    # own log.  Stale entries after the snapshot index must not come back on
    # a restart, or they would sit after a snapshot they do not continue.
    mem = MemoryStorage()
    with DiskStorage(tmp_path, segment_size=segment_size) as disk:
        for s in (disk, mem):
            s.append(entries(1, 30, 1, b"old"))
            s.sync()
            s.install_snapshot(Snapshot(SnapshotMeta(10, 2), b"leader's"))
            s.sync()
        assert disk.load().entries == []
        for s in (disk, mem):
            s.append(entries(11, 12, 2, b"new"))
            s.sync()
    with DiskStorage(tmp_path, segment_size=segment_size) as disk:
        got = disk.load()
    assert_same(got, mem.load())
    assert got.entries == entries(11, 12, 2, b"new")


def test_nothing_is_written_before_sync(tmp_path: Path) -> None:
    disk = DiskStorage(tmp_path)
    try:
        seg = segments(tmp_path)[0]
        size = seg.stat().st_size
        born = (tmp_path / "hardstate").read_bytes()  # written at birth, term 0
        disk.append(entries(1, 5, 1))
        disk.set_hard_state(HardState(1, "n1", 0))
        assert seg.stat().st_size == size
        assert (tmp_path / "hardstate").read_bytes() == born
        disk.sync()
        assert seg.stat().st_size > size
        assert (tmp_path / "hardstate").read_bytes() != born
    finally:
        disk.close()


def test_invalid_appends_match_memory_storage(tmp_path: Path) -> None:
    with DiskStorage(tmp_path) as disk:
        disk.append(entries(1, 3, 1))
        with pytest.raises(ValueError, match="gap"):
            disk.append(entries(5, 6, 1))
        with pytest.raises(ValueError, match="consecutive"):
            disk.append([Entry(1, 4), Entry(1, 6)])
        disk.save_snapshot(Snapshot(SnapshotMeta(2, 1)))
        with pytest.raises(ValueError, match="below the snapshot"):
            disk.append(entries(2, 3, 1))
        with pytest.raises(ValueError, match="older"):
            disk.save_snapshot(Snapshot(SnapshotMeta(1, 1)))
        assert disk.load().entries == entries(3, 3, 1)


def test_second_open_of_a_directory_is_refused(tmp_path: Path) -> None:
    with DiskStorage(tmp_path), pytest.raises(DataDirInUseError):
        DiskStorage(tmp_path)
    DiskStorage(tmp_path).close()  # the lock went with the first one


def test_leftover_temp_file_is_ignored_and_removed(tmp_path: Path) -> None:
    with DiskStorage(tmp_path) as disk:
        disk.set_hard_state(HardState(3, "n2", 0))
    (tmp_path / "hardstate.tmp").write_bytes(b"half a replacement")
    with DiskStorage(tmp_path) as disk:
        assert disk.load().hard_state == HardState(3, "n2", 0)
    assert not (tmp_path / "hardstate.tmp").exists()


# --------------------------------------------------------------------------
# Torn tails and corruption


def build_log(path: Path) -> tuple[list[int], list[PersistentState]]:
    """Sync a few batches (one an overwrite); return the segment size and state after each."""
    batches = [
        entries(1, 4, 1),
        entries(5, 7, 1),
        entries(6, 8, 2, b"over"),
        entries(9, 9, 2),
        [Entry(2, 10, b"", EntryKind.NOOP), Entry(2, 11, b"z" * 30)],
    ]
    sizes, states = [], []
    # No zeros ahead of the records: the file's size says where they end.
    with DiskStorage(path, preallocate=0) as disk:
        seg = segments(path)[0]
        sizes.append(seg.stat().st_size)
        states.append(disk.load())
        for batch in batches:
            disk.append(batch)
            disk.sync()
            sizes.append(seg.stat().st_size)
            states.append(disk.load())
    return sizes, states


def test_cut_at_every_byte_recovers_last_whole_record(tmp_path: Path) -> None:
    sizes, states = build_log(tmp_path)
    seg = segments(tmp_path)[0]
    whole = seg.read_bytes()
    for cut in range(len(whole) + 1):
        seg.write_bytes(whole[:cut])
        good = max(i for i, size in enumerate(sizes) if size <= cut) if cut >= sizes[0] else 0
        with DiskStorage(tmp_path) as disk:
            assert_same(disk.load(), states[good])
            assert bool(disk.recovery_notes) == (cut not in sizes), cut
            # the repaired log takes appends
            nxt = disk.last_index + 1
            disk.append([Entry(9, nxt, b"after")])
        with DiskStorage(tmp_path) as disk:
            got = disk.load()
            assert got.entries == [*states[good].entries, Entry(9, nxt, b"after")], cut
            assert not disk.recovery_notes


def test_zero_filled_tail_is_a_torn_tail(tmp_path: Path) -> None:
    sizes, states = build_log(tmp_path)
    seg = segments(tmp_path)[0]
    with seg.open("ab") as f:
        f.write(bytes(4096))  # the file grew but its data never reached the disk
    with DiskStorage(tmp_path) as disk:
        assert_same(disk.load(), states[-1])
    # the last record's data zeroed: its checksum fails with only zeros after it
    data = bytearray(seg.read_bytes())
    data[sizes[-2] + 12 :] = bytes(len(data) - sizes[-2] - 12)
    seg.write_bytes(bytes(data))
    with DiskStorage(tmp_path) as disk:
        assert_same(disk.load(), states[-2])


def test_flipped_byte_before_the_last_record_is_corruption(tmp_path: Path) -> None:
    sizes, states = build_log(tmp_path)
    seg = segments(tmp_path)[0]
    whole = seg.read_bytes()
    record_starts = sizes[:-1]  # sizes[0] is the file header's end
    for pos in range(sizes[-2]):  # every byte of the file header and all but the last record
        damaged = bytearray(whole)
        damaged[pos] ^= 0x40
        seg.write_bytes(bytes(damaged))
        with pytest.raises(CorruptLogError) as info:
            DiskStorage(tmp_path)
        err = info.value
        assert err.file == str(seg)
        expected = 6 if 6 <= pos < 8 else max([0, *(s for s in record_starts if s <= pos)])
        assert err.offset == expected, pos
        message = str(err)
        assert "\n" not in message and str(seg) in message and f"byte {expected}" in message
    seg.write_bytes(whole)
    with DiskStorage(tmp_path) as disk:
        assert_same(disk.load(), states[-1])


def test_flipped_byte_in_the_last_record(tmp_path: Path) -> None:
    """Its header: corruption (a crash cuts, it does not scramble); its payload: torn tail."""
    sizes, states = build_log(tmp_path)
    seg = segments(tmp_path)[0]
    whole = seg.read_bytes()
    for pos in range(sizes[-2], sizes[-1]):
        damaged = bytearray(whole)
        damaged[pos] ^= 0x01
        seg.write_bytes(bytes(damaged))
        if pos < sizes[-2] + 12:
            with pytest.raises(CorruptLogError) as info:
                DiskStorage(tmp_path)
            assert info.value.offset == sizes[-2]
        else:
            with DiskStorage(tmp_path) as disk:
                assert_same(disk.load(), states[-2])
            seg.write_bytes(whole)


def test_damage_in_an_earlier_segment_is_never_a_torn_tail(tmp_path: Path) -> None:
    with DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS) as disk:
        for first in range(1, 100, 10):
            disk.append(entries(first, first + 9, 1, b"y" * 20))
            disk.sync()
    first_seg = segments(tmp_path)[0]
    assert len(segments(tmp_path)) > 2
    data = first_seg.read_bytes()
    first_seg.write_bytes(data[:-1])  # cut the end of a segment that is not the last
    with pytest.raises(CorruptLogError, match=first_seg.name):
        DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS)


@pytest.mark.parametrize("name", ["hardstate", "snapshot"])
def test_damaged_hard_state_or_snapshot_is_corruption(tmp_path: Path, name: str) -> None:
    with DiskStorage(tmp_path) as disk:
        disk.append(entries(1, 3, 1))
        disk.set_hard_state(HardState(1, "n1", 2))
        disk.save_snapshot(Snapshot(SnapshotMeta(2, 1), b"snap"))
    path = tmp_path / name
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as info:
        DiskStorage(tmp_path)
    assert info.value.file == str(path)


# --------------------------------------------------------------------------
# Lost files: a smaller "valid" state would forget votes or entries


def build_with_snapshot(path: Path) -> None:
    """Several segments, a snapshot that covers the first ones, a vote and a commit."""
    with DiskStorage(path, segment_size=SMALL_SEGMENTS) as disk:
        for first in range(1, 120, 5):  # two records a segment
            disk.append(entries(first, first + 4, 2, b"x" * 60))
            disk.sync()
        disk.set_hard_state(HardState(3, "n2", 100))
        disk.save_snapshot(Snapshot(SnapshotMeta(60, 2), b"image"))
        disk.sync()


def test_a_new_directory_is_born_with_its_hard_state_and_snapshot(tmp_path: Path) -> None:
    DiskStorage(tmp_path).close()
    assert (tmp_path / "hardstate").exists() and (tmp_path / "snapshot").exists()
    with DiskStorage(tmp_path) as disk:
        assert disk.load() == PersistentState(HardState(), Snapshot(), [])


@pytest.mark.parametrize("left", [["log-0000000001.seg"], ["log-0000000001.seg", "snapshot"]])
def test_a_crash_while_a_directory_is_born_is_not_a_lost_file(
    tmp_path: Path, left: list[str]
) -> None:
    DiskStorage(tmp_path).close()
    for path in tmp_path.iterdir():  # the crash came before the hard state was made
        if path.name not in [*left, "LOCK"]:
            path.unlink()
    with DiskStorage(tmp_path) as disk:
        assert disk.load() == PersistentState(HardState(), Snapshot(), [])
    assert (tmp_path / "hardstate").exists() and (tmp_path / "snapshot").exists()


@pytest.mark.parametrize("with_entries", [False, True])
def test_lost_hard_state_refuses_to_start(tmp_path: Path, with_entries: bool) -> None:
    # §5.2: the vote must survive, or the node could vote twice in term 3.
    with DiskStorage(tmp_path) as disk:
        if with_entries:
            disk.append(entries(1, 3, 1))
        disk.set_hard_state(HardState(3, "n2", 0))
    (tmp_path / "hardstate").unlink()
    if not with_entries:
        # only a vote, no entries: the second segment shows the directory is no newborn
        (tmp_path / "log-0000000002.seg").write_bytes(segments(tmp_path)[0].read_bytes())
    with pytest.raises(CorruptLogError, match="term and vote") as info:
        DiskStorage(tmp_path)
    assert info.value.file == str(tmp_path / "hardstate")
    assert "\n" not in str(info.value)


def test_lost_middle_segment_refuses_to_start(tmp_path: Path) -> None:
    build_with_snapshot(tmp_path)
    segs = segments(tmp_path)
    assert len(segs) > 3
    segs[2].unlink()
    with pytest.raises(CorruptLogError, match="segment missing") as info:
        DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS)
    assert info.value.file == str(segs[2])


@pytest.mark.parametrize("snapshot_taken", [False, True])
def test_lost_snapshot_refuses_to_start(tmp_path: Path, snapshot_taken: bool) -> None:
    # §7: the snapshot holds the state of entries its segments no longer do.
    if snapshot_taken:
        build_with_snapshot(tmp_path)
        assert segments(tmp_path)[0].name != "log-0000000001.seg"
    else:
        with DiskStorage(tmp_path) as disk:
            disk.append(entries(1, 3, 1))
            disk.set_hard_state(HardState(1, "n1", 2))
    (tmp_path / "snapshot").unlink()
    with pytest.raises(CorruptLogError, match="a lost snapshot") as info:
        DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS)
    assert info.value.file == str(tmp_path / "snapshot")


def test_lost_first_segment_after_the_snapshot_refuses_to_start(tmp_path: Path) -> None:
    build_with_snapshot(tmp_path)
    segments(tmp_path)[0].unlink()  # it held entries past the snapshot at 60
    with pytest.raises(CorruptLogError, match="snapshot ends at 60"):
        DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS)


def test_lost_last_segment_with_committed_entries_refuses_to_start(tmp_path: Path) -> None:
    build_with_snapshot(tmp_path)
    segs = segments(tmp_path)
    for seg in segs[-3:]:  # entries up to the commit index 100 go with them
        seg.unlink()
    with pytest.raises(CorruptLogError, match="commit index 100 is past"):
        DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS)


def test_every_segment_lost_refuses_to_start(tmp_path: Path) -> None:
    build_with_snapshot(tmp_path)
    for seg in segments(tmp_path):
        seg.unlink()
    with pytest.raises(CorruptLogError, match="no log segment"):
        DiskStorage(tmp_path, segment_size=SMALL_SEGMENTS)
    assert segments(tmp_path) == []  # refused before anything was made


# --------------------------------------------------------------------------
# Crash test: SIGKILL a real writer


CHILD = HELPERS / "disk_crash_child.py"


def expected_entry_data(index: int) -> bytes:
    return index.to_bytes(8, "big") * (1 + index % 5)  # as disk_crash_child.expected_data


def run_child_until_killed(path: Path, seed: int, kill_after: float) -> int:
    """Start a writer, SIGKILL it after ``kill_after`` seconds; return its last ack (0: none)."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = b""
    try:
        assert child.stdout is not None
        fd = child.stdout.fileno()
        deadline = time.monotonic() + kill_after
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break  # the child died on its own: stderr will say why
                out += chunk
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        rest, err = child.communicate(timeout=10)
    out += rest  # acknowledgements still in the pipe were printed before the kill
    assert child.returncode == -signal.SIGKILL, err.decode()
    acks = [int(line.split()[1]) for line in out.split(b"\n")[:-1] if line.startswith(b"ack ")]
    return max(acks, default=0)


@pytest.mark.integration
def test_sigkill_never_loses_an_acknowledged_entry(tmp_path: Path) -> None:
    rng = random.Random(2024)
    acknowledged = 0
    started = time.monotonic()
    rounds = 0
    while rounds < 20 and time.monotonic() - started < 60:
        rounds += 1
        acked = run_child_until_killed(tmp_path, seed=rounds, kill_after=rng.uniform(0.15, 0.6))
        acknowledged = max(acknowledged, acked)
        with DiskStorage(tmp_path, segment_size=16 * 1024) as disk:
            state = disk.load()
        snap = state.snapshot.meta.index
        assert state.hard_state.commit >= acknowledged
        assert [e.index for e in state.entries] == list(
            range(snap + 1, snap + 1 + len(state.entries))
        )
        assert snap + len(state.entries) >= acknowledged, f"round {rounds} lost entries"
        for e in state.entries:
            assert e.data == expected_entry_data(e.index)
        if snap:
            assert state.snapshot.data == b"snapshot-at-%d" % snap
    assert acknowledged > 0


# §7: the snapshot replaces the log before it, in memory too.  The active
# segment still holds the entries it covers (only whole segments are
# deleted), so a restart must not decode them all at once.
def test_replay_holds_only_the_entries_after_the_snapshot(tmp_path: Path) -> None:
    st = DiskStorage(tmp_path)
    for first in range(1, 4001, 100):
        st.append([Entry(1, i, bytes(1000)) for i in range(first, first + 100)])
    st.save_snapshot(Snapshot(SnapshotMeta(3900, 1, ConfState(voters=("a",))), b"image"))
    st.close()
    size = sum(p.stat().st_size for p in tmp_path.glob("log-*.seg"))
    tracemalloc.start()
    try:
        st = DiskStorage(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    state = st.load()
    st.close()
    assert [e.index for e in state.entries] == list(range(3901, 4001))
    # The file itself is read whole; beyond it, about one record at a time.
    assert peak < size * 1.25, (peak, size)


# A restart reads the head of each record to skip, undecoded, those wholly
# behind the snapshot (§7).  The head must say what msgpack says, for every
# width of the first index and of the entries' array.
@pytest.mark.parametrize("first", [1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**40])
@pytest.mark.parametrize("count", [0, 1, 15, 16, 65535, 65536])
def test_record_span_reads_what_msgpack_reads(first: int, count: int) -> None:
    body = [[1, 0, b""]] * count
    payload = msgpack.packb((ENTRIES, first, body))
    assert record_span(payload) == (first, count)
    assert record_span(memoryview(payload)) == (first, count)


@pytest.mark.parametrize(
    "record",
    [[2, 5, []], [1, 0, []], [1, -3, []], [1, 1.5, []], [1, "5", []], [1, 5, 7], [1, 5], [1]],
)
def test_record_span_leaves_other_shapes_to_the_full_decoder(record: list) -> None:
    assert record_span(msgpack.packb(record)) is None
    assert record_span(msgpack.packb(record)[:2]) is None


def test_replay_decodes_only_records_after_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = DiskStorage(tmp_path)
    for first in range(1, 1001, 100):
        st.append([Entry(1, i, b"x") for i in range(first, first + 100)])
    st.append([Entry(2, 951, b"y")])  # cuts the last record's run: still after the snapshot
    st.save_snapshot(Snapshot(SnapshotMeta(900, 1, ConfState(voters=("a",))), b"image"))
    st.close()
    decoded = []
    real = diskread.msgpack.unpackb

    def counting(payload: bytes) -> object:
        decoded.append(payload)
        return real(payload)

    monkeypatch.setattr(diskread.msgpack, "unpackb", counting)
    with DiskStorage(tmp_path) as again:
        state = again.load()
    assert [(e.index, e.term) for e in state.entries] == [(i, 1) for i in range(901, 951)] + [
        (951, 2)
    ]
    # the hard state and snapshot files (a directory is born with both), the record of
    # 901-1000 and the one that cut it; not the nine before
    assert len(decoded) == 2 + 2


# Preallocation: records are written over zeros laid ahead of them, so that a
# sync changes no metadata.  Those zeros are room, not a torn tail.
def test_preallocated_room_is_neither_cut_nor_reported(tmp_path: Path) -> None:
    with DiskStorage(tmp_path, preallocate=4096) as disk:
        disk.append(entries(1, 5, 1))
        disk.sync()
        seg = segments(tmp_path)[0]
        assert seg.stat().st_size == FILE_HEADER.size + 4096
    for batch in (entries(6, 8, 1), entries(7, 9, 2, b"over")):  # an overwrite too
        with DiskStorage(tmp_path, preallocate=4096) as disk:
            assert not disk.recovery_notes
            disk.append(batch)
    with DiskStorage(tmp_path) as disk:
        assert not disk.recovery_notes
        assert disk.load().entries == entries(1, 6, 1) + entries(7, 9, 2, b"over")
    assert seg.stat().st_size == FILE_HEADER.size + 4096  # still the same room


def test_only_the_last_segment_ends_in_zeros(tmp_path: Path) -> None:
    with DiskStorage(tmp_path, segment_size=2048, preallocate=1024) as disk:
        for first in range(1, 200, 10):
            disk.append(entries(first, first + 9, 1, b"x" * 20))
            disk.sync()
    segs = segments(tmp_path)
    assert len(segs) > 2
    for seg in segs[:-1]:  # read whole, as recovery reads a segment that is not the last
        data = seg.read_bytes()
        _, end, torn = scan(data, seg, LOG_MAGIC, tail_ok=False)
        assert (end, torn) == (len(data), None)
    assert segs[-1].read_bytes().endswith(bytes(64))
    with DiskStorage(tmp_path) as disk:
        assert not disk.recovery_notes
        assert [e.index for e in disk.load().entries] == list(range(1, 201))


def test_a_record_torn_over_the_preallocated_room_is_cut(tmp_path: Path) -> None:
    with DiskStorage(tmp_path, preallocate=4096) as disk:
        disk.append(entries(1, 5, 1))
        disk.sync()
        want = disk.load()
    seg = segments(tmp_path)[0]
    data = seg.read_bytes()
    end = len(data.rstrip(b"\0"))
    assert end < len(data)
    torn = frame(msgpack.packb((ENTRIES, 6, [[1, 0, b"lost"]])))
    with seg.open("r+b") as f:
        f.seek(end)
        f.write(torn[: len(torn) // 2])  # the crash came mid-write
    with DiskStorage(tmp_path) as disk:
        assert len(disk.recovery_notes) == 1
        assert_same(disk.load(), want)
        disk.append(entries(6, 6, 1, b"again"))
    with DiskStorage(tmp_path) as disk:
        assert not disk.recovery_notes
        assert disk.load().entries == entries(1, 5, 1) + entries(6, 6, 1, b"again")
