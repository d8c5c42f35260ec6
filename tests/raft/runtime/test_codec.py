"""The wire codec: every message survives a round trip, and no input crashes the decoder.

The fuzz tests hold the codec to its one promise about bad input: whatever
bytes arrive, decoding either returns a message or raises
`RemoteProtocolError`, never anything else.  Every Hypothesis test runs with
``deadline=None``: on a busy machine Hypothesis's default 200 ms deadline
fails on a scheduling pause, not on a slow codec.
"""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raft.core.messages import (
    MESSAGE_TYPES,
    AppendEntries,
    AppendEntriesResponse,
    ConfState,
    Entry,
    EntryKind,
    InstallSnapshot,
    InstallSnapshotResponse,
    ReadIndexRequest,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    SnapshotMeta,
    TimeoutNow,
)
from raft.runtime.codec import (
    DEFAULT_MAX_FRAME_SIZE,
    PROTOCOL_VERSION,
    FrameDecoder,
    Hello,
    LocalProtocolError,
    RemoteProtocolError,
    decode_frame,
    decode_hello,
    decode_message,
    encode_frame,
    encode_hello,
    encode_message,
    frame,
)

# --------------------------------------------------------------------------
# Strategies

uint = st.integers(min_value=0, max_value=2**64 - 1)
small_uint = st.integers(min_value=0, max_value=2**40)
node_id = st.text(min_size=1, max_size=12)


@st.composite
def entries_after(draw: st.DrawFn, prev_log_index: int) -> tuple[Entry, ...]:
    """Contiguous entries following ``prev_log_index`` (§5.3's shape)."""
    n = draw(st.integers(min_value=0, max_value=20))
    return tuple(
        Entry(
            term=draw(small_uint),
            index=prev_log_index + 1 + i,
            data=draw(st.binary(max_size=64)),
            kind=draw(st.sampled_from(EntryKind)),
        )
        for i in range(n)
    )


@st.composite
def append_entries(draw: st.DrawFn) -> AppendEntries:
    prev = draw(small_uint)
    return AppendEntries(
        term=draw(uint),
        src=draw(node_id),
        dst=draw(node_id),
        prev_log_index=prev,
        prev_log_term=draw(uint),
        entries=draw(entries_after(prev)),
        leader_commit=draw(uint),
        seq=draw(uint),
    )


@st.composite
def conf_states(draw: st.DrawFn) -> ConfState:
    ids = draw(st.lists(node_id, unique=True, max_size=8))
    split = draw(st.integers(min_value=0, max_value=len(ids)))
    return ConfState(voters=tuple(ids[:split]), learners=tuple(ids[split:]))


snapshot_metas = st.builds(SnapshotMeta, index=uint, term=uint, conf=conf_states())

#: One strategy per entry of MESSAGE_TYPES, so adding a message type without a
#: strategy fails `test_every_message_type_has_a_strategy`.
STRATEGIES = {
    RequestVote: st.builds(
        RequestVote, uint, node_id, node_id, uint, uint, st.booleans(), st.booleans()
    ),
    RequestVoteResponse: st.builds(
        RequestVoteResponse, uint, node_id, node_id, st.booleans(), st.booleans(), st.text()
    ),
    AppendEntries: append_entries(),
    AppendEntriesResponse: st.builds(
        AppendEntriesResponse, uint, node_id, node_id, st.booleans(), uint, uint, uint, uint
    ),
    InstallSnapshot: st.builds(
        InstallSnapshot,
        uint,
        node_id,
        node_id,
        snapshot_metas,
        uint,
        st.binary(max_size=256),
        st.booleans(),
    ),
    InstallSnapshotResponse: st.builds(
        InstallSnapshotResponse, uint, node_id, node_id, uint, uint, st.booleans(), st.booleans()
    ),
    TimeoutNow: st.builds(TimeoutNow, uint, node_id, node_id),
    ReadIndexRequest: st.builds(ReadIndexRequest, uint, node_id, node_id, uint),
    ReadIndexResponse: st.builds(
        ReadIndexResponse, uint, node_id, node_id, uint, uint, st.booleans()
    ),
}
messages = st.one_of(*STRATEGIES.values())

#: Arbitrary msgpack-representable values, to put where fields belong.
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=20,
)


def only_remote_errors(fn, *args):
    """Call ``fn``; a `RemoteProtocolError` is fine, anything else fails the test."""
    try:
        return fn(*args)
    except RemoteProtocolError:
        return None


# --------------------------------------------------------------------------
# Round trips


def test_every_message_type_has_a_strategy():
    assert set(STRATEGIES) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("cls", MESSAGE_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_every_type(cls, data):
    msg = data.draw(STRATEGIES[cls])
    assert decode_message(encode_message(msg)) == msg
    assert decode_frame(encode_frame(msg)) == msg


def test_entry_kinds_and_types_survive():
    msg = AppendEntries(
        term=4,
        src="manager1",
        dst="manager2",
        prev_log_index=9,
        prev_log_term=3,
        entries=(Entry(4, 10, b"", EntryKind.NOOP), Entry(4, 11, b"\x00cfg", EntryKind.CONFIG)),
        leader_commit=9,
        seq=1,
    )
    out = decode_message(encode_message(msg))
    assert out == msg
    assert [type(e.kind) for e in out.entries] == [EntryKind, EntryKind]
    assert isinstance(out.entries, tuple)


def test_payload_is_a_flat_versioned_array():
    payload = encode_message(TimeoutNow(term=7, src="a", dst="b"))
    assert msgpack.unpackb(payload) == [PROTOCOL_VERSION, TN, 7, "a", "b"]


#: The wire, written down by hand: one message of each type and its bytes
#: (msgpack: 0x9N an array of N, 0xaN a string of N, 0xc2/0xc3 false/true,
#: 0xc4 bytes).  The second byte after the array header is the type code; a
#: reordered MESSAGE_TYPES or field would break peers of the old version, and
#: these bytes catch it where a round trip through the same code cannot.
GOLDEN = [
    (RequestVote(3, "a", "b", 7, 2, True), "99 01 00 03 a1 61 a1 62 07 02 c3 c2"),
    (RequestVoteResponse(3, "b", "a", True, True, ""), "98 01 01 03 a1 62 a1 61 c3 c3 a0"),
    (
        AppendEntries(3, "a", "b", 7, 2, (Entry(3, 8, b"x"),), 6, 1),
        "9a 01 02 03 a1 61 a1 62 07 02 91 94 03 08 c4 01 78 00 06 01",
    ),
    (
        AppendEntriesResponse(3, "b", "a", False, 7, 5, 2, 1),
        "9a 01 03 03 a1 62 a1 61 c2 07 05 02 01",
    ),
    (
        InstallSnapshot(
            3, "a", "b", SnapshotMeta(9, 2, ConfState(("a", "b"), ("c",))), 0, b"sn", True
        ),
        "99 01 04 03 a1 61 a1 62 94 09 02 92 a1 61 a1 62 91 a1 63 00 c4 02 73 6e c3",
    ),
    (InstallSnapshotResponse(3, "b", "a", 9, 2, True, True), "99 01 05 03 a1 62 a1 61 09 02 c3 c3"),
    (TimeoutNow(3, "a", "b"), "95 01 06 03 a1 61 a1 62"),
    (ReadIndexRequest(3, "b", "a", 4), "96 01 07 03 a1 62 a1 61 04"),
    (ReadIndexResponse(3, "a", "b", 4, 8, True), "98 01 08 03 a1 61 a1 62 04 08 c3"),
]


@pytest.mark.parametrize(("msg", "wire"), GOLDEN, ids=lambda x: type(x).__name__)
def test_golden_bytes_of_every_type(msg, wire):
    assert encode_message(msg).hex(" ") == wire
    assert decode_message(bytes.fromhex(wire)) == msg


def test_golden_table_covers_every_type():
    assert [type(m) for m, _ in GOLDEN] == list(MESSAGE_TYPES)


def test_hello_round_trip():
    hello = Hello(PROTOCOL_VERSION, "cluster-x", "manager3")
    assert decode_hello(encode_hello(hello)) == hello


# --------------------------------------------------------------------------
# Strict validation: specific bad inputs


def _raw(*items):
    return msgpack.packb(list(items), use_bin_type=True)


#: Type codes on the wire, by hand (as in GOLDEN), not from the code under test.
AE = 2  # AppendEntries
TN = 6  # TimeoutNow
IS = 4  # InstallSnapshot


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"", "empty"),
        (b"\xc1", "never-used msgpack byte"),
        (_raw(PROTOCOL_VERSION, TN, 1, "a", "b") + b"\x00", "trailing bytes"),
        (msgpack.packb({"type": 1}), "a map, not an array"),
        (_raw(PROTOCOL_VERSION + 1, TN, 1, "a", "b"), "unknown version"),
        (_raw(PROTOCOL_VERSION, len(MESSAGE_TYPES), 1, "a", "b"), "unknown type"),
        (_raw(PROTOCOL_VERSION, -1, 1, "a", "b"), "negative type"),
        (_raw(PROTOCOL_VERSION, TN, 1, "a"), "missing field"),
        (_raw(PROTOCOL_VERSION, TN, 1, "a", "b", 0), "extra field"),
        (_raw(PROTOCOL_VERSION, TN, -1, "a", "b"), "negative term"),
        (_raw(PROTOCOL_VERSION, TN, True, "a", "b"), "bool for an int"),
        (_raw(PROTOCOL_VERSION, TN, 1.0, "a", "b"), "float for an int"),
        (_raw(PROTOCOL_VERSION, TN, 1, "", "b"), "empty node id"),
        (_raw(PROTOCOL_VERSION, TN, 1, b"a", "b"), "bytes for a node id"),
        (_raw(PROTOCOL_VERSION, AE, 1, "a", "b", -1, 0, [], 0, 0), "negative index"),
        (_raw(PROTOCOL_VERSION, AE, 1, "a", "b", 0, 0, [[1, 1, "x", 0]], 0, 0), "str data"),
        (_raw(PROTOCOL_VERSION, AE, 1, "a", "b", 0, 0, [[1, 1, b"x", 9]], 0, 0), "bad kind"),
        (_raw(PROTOCOL_VERSION, AE, 1, "a", "b", 0, 0, [[1, 0, b"x", 0]], 0, 0), "index 0"),
        (_raw(PROTOCOL_VERSION, AE, 1, "a", "b", 0, 0, [[1, 1, b"x"]], 0, 0), "short entry"),
        (_raw(PROTOCOL_VERSION, AE, 1, "a", "b", 0, 0, [[1, 2, b"x", 0]], 0, 0), "gap"),
        (_raw(PROTOCOL_VERSION, AE, 1, "a", "b", 0, 0, {}, 0, 0), "entries not an array"),
        (
            _raw(
                PROTOCOL_VERSION,
                IS,
                1,
                "a",
                "b",
                [1, 1, ["x"], ["x"]],
                0,
                b"",
                True,
            ),
            "voter and learner",
        ),
        (b"\x91" * 100_000 + b"\xc0", "nested too deep"),
        (msgpack.packb([PROTOCOL_VERSION, TN, msgpack.ExtType(5, b"x"), "a", "b"]), "ext type"),
    ],
)
def test_bad_payloads_are_the_peers_fault(payload, why):
    with pytest.raises(RemoteProtocolError):
        decode_message(payload)


def test_invalid_utf8_is_the_peers_fault():
    # A str header (0xa2: fixstr of 2) with bytes that are not UTF-8.
    payload = bytes([0x95, PROTOCOL_VERSION, TN, 1, 0xA2, 0xFF, 0xFE, 0xA1]) + b"b"
    with pytest.raises(RemoteProtocolError):
        decode_message(payload)


def test_decode_frame_checks_the_header():
    good = encode_frame(TimeoutNow(1, "a", "b"))
    assert decode_frame(good) == TimeoutNow(1, "a", "b")
    for bad in (b"", good[:3], good[:-1], good + b"\x00", b"\x00\x00\x00\x00"):
        with pytest.raises(RemoteProtocolError):
            decode_frame(bad)
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        decode_frame(good, max_frame_size=len(good) - 5)


def test_decode_hello_refuses_strangers():
    for payload in (
        _raw("http", 1, "c", "n"),
        _raw("swarmraft", PROTOCOL_VERSION + 1, "c", "n"),
        _raw("swarmraft", PROTOCOL_VERSION, "c"),
        _raw("swarmraft", PROTOCOL_VERSION, "c", ""),
        _raw("swarmraft", PROTOCOL_VERSION, 5, "n"),
        b"GET / HTTP/1.1\r\n",
    ):
        with pytest.raises(RemoteProtocolError):
            decode_hello(payload)


def test_encoding_a_non_message_is_our_fault():
    with pytest.raises(LocalProtocolError):
        encode_message(object())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        frame(b"x" * 100, max_frame_size=10)
    with pytest.raises(LocalProtocolError):
        frame(b"")
    with pytest.raises(LocalProtocolError):
        encode_message(TimeoutNow(-(2**70), "a", "b"))


# --------------------------------------------------------------------------
# FrameDecoder


@given(msgs=st.lists(messages, max_size=8), cuts=st.lists(st.integers(0, 10_000), max_size=10))
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_frame_decoder_reassembles_any_split(msgs, cuts):
    stream = b"".join(encode_frame(m) for m in msgs)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    decoder = FrameDecoder()
    payloads = [p for chunk in chunks for p in decoder.feed(chunk)]
    assert [decode_message(p) for p in payloads] == msgs
    assert decoder.buffered == 0


def test_frame_decoder_byte_at_a_time():
    msg = AppendEntries(1, "a", "b", 0, 0, (Entry(1, 1, b"hello"),), 0, 0)
    stream = encode_frame(msg) * 3
    decoder = FrameDecoder()
    got = [p for i in range(len(stream)) for p in decoder.feed(stream[i : i + 1])]
    assert [decode_message(p) for p in got] == [msg] * 3


def test_frame_decoder_refuses_oversized_header_before_the_body():
    decoder = FrameDecoder(max_frame_size=1024)
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        decoder.feed(struct.pack(">I", 1025))  # no body needed to know
    with pytest.raises(RemoteProtocolError):
        FrameDecoder().feed(struct.pack(">I", DEFAULT_MAX_FRAME_SIZE + 1) + b"x")
    with pytest.raises(RemoteProtocolError, match="empty"):
        FrameDecoder().feed(b"\x00\x00\x00\x00")


# --------------------------------------------------------------------------
# Fuzz: only RemoteProtocolError may escape


@given(st.binary(max_size=512))
@settings(deadline=None)
def test_fuzz_decode_message_random_bytes(data):
    only_remote_errors(decode_message, data)


@given(st.binary(max_size=512))
@settings(deadline=None)
def test_fuzz_decode_frame_random_bytes(data):
    only_remote_errors(decode_frame, data)
    only_remote_errors(decode_frame, struct.pack(">I", len(data)) + data)


@given(st.binary(max_size=512))
@settings(deadline=None)
def test_fuzz_frame_decoder_random_bytes(data):
    decoder = FrameDecoder(max_frame_size=4096)
    payloads = only_remote_errors(decoder.feed, data) or []
    for payload in payloads:
        only_remote_errors(decode_message, payload)


@given(st.binary(max_size=256))
@settings(deadline=None)
def test_fuzz_decode_hello_random_bytes(data):
    only_remote_errors(decode_hello, data)


mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.none()),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.none()),
)


def _mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for op, where, value in ops:
        pos = where % (len(buf) + 1)
        if op == "flip" and pos < len(buf):
            buf[pos] ^= value
        elif op == "truncate":
            del buf[pos:]
        elif op == "insert":
            buf.insert(pos, value)
        elif op == "delete" and pos < len(buf):
            del buf[pos]
    return bytes(buf)


@given(msg=messages, ops=st.lists(mutations, min_size=1, max_size=4))
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_fuzz_mutated_valid_frames(msg, ops):
    mutated = _mutate(encode_frame(msg), ops)
    only_remote_errors(decode_frame, mutated)
    only_remote_errors(decode_message, mutated[4:])
    decoder = FrameDecoder(max_frame_size=1 << 20)
    for payload in only_remote_errors(decoder.feed, mutated) or []:
        only_remote_errors(decode_message, payload)


@given(msg=messages, data=st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_fuzz_replaced_fields(msg, data):
    """Structurally valid msgpack with one field swapped for an arbitrary value."""
    fields = msgpack.unpackb(encode_message(msg))
    pos = data.draw(st.integers(0, len(fields) - 1))
    fields[pos] = data.draw(msgpack_values)
    payload = msgpack.packb(fields, use_bin_type=True)
    decoded = only_remote_errors(decode_message, payload)
    if decoded is not None:
        assert type(decoded) in MESSAGE_TYPES


@given(value=msgpack_values)
@settings(deadline=None)
def test_fuzz_arbitrary_msgpack_values(value):
    only_remote_errors(decode_message, msgpack.packb(value, use_bin_type=True))
    only_remote_errors(decode_hello, msgpack.packb(value, use_bin_type=True))


def test_frame_decoder_returns_good_frames_before_a_bad_header():
    good = encode_frame(TimeoutNow(1, "a", "b"))
    decoder = FrameDecoder(max_frame_size=1024)
    payloads = decoder.feed(good + good + struct.pack(">I", 4096))
    assert [decode_message(p) for p in payloads] == [TimeoutNow(1, "a", "b")] * 2
    assert isinstance(decoder.error, RemoteProtocolError)
    with pytest.raises(RemoteProtocolError):
        decoder.feed(good)
