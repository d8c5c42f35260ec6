"""The wire format: Raft messages as msgpack payloads inside length-prefixed frames.

Theory of operation
-------------------
Two layers, both pure (bytes in, values out; no sockets, no clocks):

*Framing.*  A TCP stream is cut into frames.  A frame is a 4-byte big-endian
unsigned length followed by that many payload bytes.  The length is checked
against a maximum (16 MiB unless told otherwise) *as soon as the header
arrives*, so a peer cannot make us buffer a gigabyte before we notice.  An
empty frame is never valid: every payload is a msgpack value.
`FrameDecoder` is the incremental half: feed it whatever ``read()`` returned
and it hands back every payload that is now complete.

*Payloads.*  A message is one flat msgpack array::

    [PROTOCOL_VERSION, type_code, term, src, dst, <the remaining fields>]

where ``type_code`` is the message class's position in
`raft.core.messages.MESSAGE_TYPES` and the remaining fields follow the
dataclass's field order.  Arrays rather than maps keep the encoding small
and let msgpack's C packer do nearly all the work: for an AppendEntries the
only Python-level loop is the one that turns entries into
``[term, index, data, kind]`` arrays.  A snapshot's metadata nests as
``[index, term, [voters...], [learners...]]``.

The connection handshake is a frame of its own, `Hello`:
``["swarmraft", PROTOCOL_VERSION, cluster_id, node_id]``.  The magic string
comes first so that anything that is not swarmraft is turned away at the
first frame; the version comes second so that a future format can still be
recognised (and refused with a clear message) by this one.

Errors come in the two kinds h11 taught us to separate:

* `RemoteProtocolError`: the bytes we received are wrong.  It is the
  peer's fault; the caller drops that one connection and carries on.
  Decoding raises nothing else, whatever the input: every msgpack error,
  wrong type, missing or extra field, unknown message type, negative
  number or oversized frame is turned into this.
* `LocalProtocolError`: we were asked to encode something that cannot go
  on the wire (a non-message, a payload bigger than the frame limit).  It
  is a bug on this side and must not be blamed on a peer.

Validation is strict on purpose: integers must be real ints (not bools,
not floats) and non-negative, node ids non-empty strings, byte fields
msgpack ``bin``, and an AppendEntries' entries must be contiguous after
``prev_log_index`` (the shape §5.3's consistency check presumes).  Whatever
passes decoding is a well-formed message the core can trust structurally;
whether it is *sensible* (stale term, conflicting log) is Raft's business.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

import msgpack

from raft.core.messages import (
    MESSAGE_TYPES,
    AppendEntries,
    ConfState,
    Entry,
    EntryKind,
    Message,
    NodeId,
    SnapshotMeta,
)

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HELLO_MAGIC",
    "PROTOCOL_VERSION",
    "FrameDecoder",
    "Hello",
    "LocalProtocolError",
    "RemoteProtocolError",
    "decode_frame",
    "decode_hello",
    "decode_message",
    "encode_frame",
    "encode_hello",
    "encode_message",
    "frame",
]

#: Bumped whenever the payload layout changes; carried by the handshake and every message.
PROTOCOL_VERSION = 1
#: Upper bound on one frame's payload unless the caller chooses another.
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
#: First element of the handshake payload.
HELLO_MAGIC = "swarmraft"

_HEADER = struct.Struct(">I")
_HEADER_SIZE = _HEADER.size
#: The largest length a 4-byte header can express.
_MAX_ENCODABLE = 0xFFFFFFFF
#: Indexed by the wire value of an entry's kind (a tuple: no EntryKind(...) call per entry).
_ENTRY_KINDS: tuple[EntryKind, ...] = tuple(sorted(EntryKind, key=int))
assert [int(k) for k in _ENTRY_KINDS] == list(range(len(_ENTRY_KINDS))), "kinds must be 0..n-1"


class RemoteProtocolError(Exception):
    """The peer sent bytes that break the protocol: close that connection, keep running."""


class LocalProtocolError(Exception):
    """We tried to put something invalid on the wire: a bug on this side."""


# --------------------------------------------------------------------------
# Framing


def frame(payload: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """Prefix ``payload`` with its length.  Refuses what the receiver would refuse."""
    size = len(payload)
    if size == 0 or size > min(max_frame_size, _MAX_ENCODABLE):
        raise LocalProtocolError(f"payload of {size} bytes does not fit a frame")
    return _HEADER.pack(size) + payload


class FrameDecoder:
    """Cuts a byte stream into frame payloads, incrementally.

    ``feed`` accepts chunks of any size (a frame may arrive one byte at a
    time, or twenty frames in one read) and returns the payloads completed
    by that chunk.  A bad frame header (empty or oversized) raises
    `RemoteProtocolError`; if good frames preceded it in the same chunk,
    they are returned first and the error is raised by the next ``feed``
    (and kept in `error`), so a peer's valid messages are never lost to its
    later mistake.  Once it has failed the decoder stays failed: the stream
    is out of step and must be closed.
    """

    __slots__ = ("_buffer", "_max_frame_size", "error")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size
        #: The protocol error this stream hit, if any.
        self.error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` to the stream; return every payload now complete, in order."""
        if self.error is not None:
            raise self.error
        buf = self._buffer
        buf += data
        payloads: list[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= _HEADER_SIZE:
            (size,) = _HEADER.unpack_from(buf, pos)
            # Checked before waiting for the body: an absurd length fails at once.
            if size == 0 or size > self._max_frame_size:
                self.error = RemoteProtocolError(
                    "empty frame"
                    if size == 0
                    else f"frame of {size} bytes exceeds the limit of {self._max_frame_size}"
                )
                if not payloads:
                    raise self.error
                break
            start = pos + _HEADER_SIZE
            if end - start < size:
                break
            payloads.append(bytes(buf[start : start + size]))
            pos = start + size
        if pos:
            del buf[:pos]
        return payloads


# --------------------------------------------------------------------------
# Field checkers: each takes the decoded msgpack value and returns the Python
# value for the dataclass, or raises _Invalid.  Type checks use `type(x) is`
# so that bools never pass for ints and subclasses never sneak in.


class _Invalid(Exception):
    """Internal: a field failed validation; decode_message adds the context."""


def _uint(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise _Invalid(f"expected a non-negative int, got {value!r:.40}")
    return value


def _node_id(value: Any) -> NodeId:
    if type(value) is not str or not value:
        raise _Invalid(f"expected a non-empty node id string, got {value!r:.40}")
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _Invalid(f"expected a bool, got {value!r:.40}")
    return value


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise _Invalid(f"expected bytes, got {type(value).__name__}")
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise _Invalid(f"expected a string, got {type(value).__name__}")
    return value


def _entries(value: Any) -> tuple[Entry, ...]:
    # The hot path of the whole decoder: inlined checks, one pass, no helpers.
    if type(value) is not list:
        raise _Invalid(f"expected an array of entries, got {type(value).__name__}")
    kinds = _ENTRY_KINDS
    nkinds = len(kinds)
    out = []
    for item in value:
        if type(item) is not list or len(item) != 4:
            raise _Invalid("an entry must be an array [term, index, data, kind]")
        term, index, data, kind = item
        if (
            type(term) is not int
            or type(index) is not int
            or type(data) is not bytes
            or type(kind) is not int
            or term < 0
            or index < 1
            or not 0 <= kind < nkinds
        ):
            raise _Invalid(f"bad entry {item!r:.60}")
        out.append(Entry(term, index, data, kinds[kind]))
    return tuple(out)


def _node_ids(value: Any) -> tuple[NodeId, ...]:
    if type(value) is not list:
        raise _Invalid(f"expected an array of node ids, got {type(value).__name__}")
    return tuple(_node_id(v) for v in value)


def _snapshot_meta(value: Any) -> SnapshotMeta:
    if type(value) is not list or len(value) != 4:
        raise _Invalid("snapshot meta must be an array [index, term, voters, learners]")
    index, term, voters, learners = value
    try:
        conf = ConfState(_node_ids(voters), _node_ids(learners))
    except ValueError as exc:  # voters and learners overlap
        raise _Invalid(str(exc)) from exc
    return SnapshotMeta(_uint(index), _uint(term), conf)


def _encode_entries(entries: tuple[Entry, ...]) -> list[tuple[Any, ...]]:
    # attrgetter runs in C; msgpack packs the tuples as arrays.
    return list(map(_ENTRY_FIELDS, entries))


def _encode_snapshot_meta(meta: SnapshotMeta) -> list[Any]:
    return [meta.index, meta.term, list(meta.conf.voters), list(meta.conf.learners)]


_ENTRY_FIELDS = operator.attrgetter("term", "index", "data", "kind")


@dataclass(frozen=True, slots=True)
class _FieldCodec:
    """How one field kind is checked on the way in and converted on the way out."""

    check: Callable[[Any], Any]
    encode: Callable[[Any], Any] | None = None


# Field kinds by (dataclass field name, annotation) -> codec.  Keyed on the
# annotation string (messages.py uses `from __future__ import annotations`),
# except for the few names whose meaning is not carried by their type.
_BY_ANNOTATION = MappingProxyType(
    {
        "int": _FieldCodec(_uint),
        "bool": _FieldCodec(_bool),
        "bytes": _FieldCodec(_bytes),
        "str": _FieldCodec(_str),
        "NodeId": _FieldCodec(_node_id),
        "tuple[Entry, ...]": _FieldCodec(_entries, _encode_entries),
        "SnapshotMeta": _FieldCodec(_snapshot_meta, _encode_snapshot_meta),
    }
)


@dataclass(frozen=True, slots=True)
class _MessageSpec:
    """Everything needed to encode and decode one message class, computed once."""

    code: int
    cls: type
    names: tuple[str, ...]
    checks: tuple[Callable[[Any], Any], ...]
    getter: Callable[[Any], tuple[Any, ...]]
    #: (position in the field tuple, converter) for fields that are not plain scalars.
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]


def _build_spec(code: int, cls: type) -> _MessageSpec:
    names: list[str] = []
    checks: list[Callable[[Any], Any]] = []
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for pos, f in enumerate(fields(cls)):
        annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        try:
            codec = _BY_ANNOTATION[annotation]
        except KeyError:
            raise TypeError(f"no wire codec for {cls.__name__}.{f.name}: {annotation}") from None
        names.append(f.name)
        checks.append(codec.check)
        if codec.encode is not None:
            converters.append((pos, codec.encode))
    return _MessageSpec(
        code=code,
        cls=cls,
        names=tuple(names),
        checks=tuple(checks),
        getter=operator.attrgetter(*names),
        converters=tuple(converters),
    )


_SPECS: tuple[_MessageSpec, ...] = tuple(
    _build_spec(code, cls) for code, cls in enumerate(MESSAGE_TYPES)
)
_SPEC_BY_TYPE = MappingProxyType({spec.cls: spec for spec in _SPECS})


# --------------------------------------------------------------------------
# Messages


def encode_message(msg: Message) -> bytes:
    """Encode one message as a msgpack payload (no frame header).

    Does not re-validate field values, for speed: the dataclasses and the
    core are trusted; `decode_message` is where distrust lives.
    """
    spec = _SPEC_BY_TYPE.get(type(msg))
    if spec is None:
        raise LocalProtocolError(f"not a Raft message: {type(msg).__name__}")
    values = spec.getter(msg)
    if type(values) is not tuple:  # attrgetter of a single name returns the bare value
        values = (values,)
    if spec.converters:
        values = list(values)
        for pos, convert in spec.converters:
            values[pos] = convert(values[pos])
    try:
        return msgpack.packb([PROTOCOL_VERSION, spec.code, *values], use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise LocalProtocolError(f"cannot encode {spec.cls.__name__}: {exc}") from exc


def _unpack(payload: bytes) -> Any:
    try:
        return msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:
        # msgpack signals bad input through many types (ExtraData, FormatError,
        # StackError, UnicodeDecodeError, TypeError, ValueError...): all the peer's fault.
        raise RemoteProtocolError(
            f"undecodable msgpack payload: {type(exc).__name__}: {exc}"
        ) from exc


def decode_message(payload: bytes) -> Message:
    """Decode and validate one payload; raises only `RemoteProtocolError`."""
    obj = _unpack(payload)
    if type(obj) is not list or len(obj) < 2:
        raise RemoteProtocolError("a message must be an array [version, type, ...]")
    version, code = obj[0], obj[1]
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise RemoteProtocolError(f"unsupported protocol version {version!r:.20}")
    if type(code) is not int or not 0 <= code < len(_SPECS):
        raise RemoteProtocolError(f"unknown message type {code!r:.20}")
    spec = _SPECS[code]
    values = obj[2:]
    if len(values) != len(spec.checks):
        raise RemoteProtocolError(
            f"{spec.cls.__name__} needs {len(spec.checks)} fields, got {len(values)}"
        )
    args = []
    for name, check, value in zip(spec.names, spec.checks, values, strict=True):
        try:
            args.append(check(value))
        except _Invalid as exc:
            raise RemoteProtocolError(f"{spec.cls.__name__}.{name}: {exc}") from None
    try:
        msg = spec.cls(*args)
    except (TypeError, ValueError) as exc:  # a dataclass's own __post_init__ said no
        raise RemoteProtocolError(f"invalid {spec.cls.__name__}: {exc}") from exc
    if spec.cls is AppendEntries:
        _check_contiguous(msg)
    return msg


def _check_contiguous(msg: AppendEntries) -> None:
    """§5.3: the entries of one AppendEntries follow prev_log_index without gaps."""
    expected = msg.prev_log_index + 1
    for entry in msg.entries:
        if entry.index != expected:
            raise RemoteProtocolError(
                f"AppendEntries.entries: index {entry.index} where {expected} was due"
            )
        expected += 1


def encode_frame(msg: Message, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """One message, ready to write to a socket."""
    return frame(encode_message(msg), max_frame_size)


def decode_frame(data: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> Message:
    """Decode ``data`` that must be exactly one whole frame (header and payload)."""
    if len(data) < _HEADER_SIZE:
        raise RemoteProtocolError(f"truncated frame header ({len(data)} bytes)")
    (size,) = _HEADER.unpack_from(data, 0)
    if size == 0:
        raise RemoteProtocolError("empty frame")
    if size > max_frame_size:
        raise RemoteProtocolError(f"frame of {size} bytes exceeds the limit of {max_frame_size}")
    if len(data) != _HEADER_SIZE + size:
        raise RemoteProtocolError(
            f"frame header says {size} bytes, {len(data) - _HEADER_SIZE} present"
        )
    return decode_message(bytes(data[_HEADER_SIZE:]))


# --------------------------------------------------------------------------
# Handshake


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame each side sends: who I am, in which cluster, speaking which version."""

    version: int
    cluster_id: str
    node_id: NodeId


def encode_hello(hello: Hello) -> bytes:
    """The handshake payload (frame it with `frame`)."""
    try:
        return msgpack.packb(
            [HELLO_MAGIC, hello.version, hello.cluster_id, hello.node_id], use_bin_type=True
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise LocalProtocolError(f"cannot encode {hello!r}: {exc}") from exc


def decode_hello(payload: bytes) -> Hello:
    """Decode a handshake payload; a different protocol version is refused here."""
    obj = _unpack(payload)
    if type(obj) is not list or len(obj) < 2 or obj[0] != HELLO_MAGIC:
        raise RemoteProtocolError("not a swarmraft handshake")
    version = obj[1]
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise RemoteProtocolError(
            f"peer speaks protocol version {version!r:.20}, we speak {PROTOCOL_VERSION}"
        )
    if len(obj) != 4:
        raise RemoteProtocolError("handshake must be [magic, version, cluster_id, node_id]")
    cluster_id, node_id = obj[2], obj[3]
    try:
        return Hello(version, _str(cluster_id), _node_id(node_id))
    except _Invalid as exc:
        raise RemoteProtocolError(f"handshake: {exc}") from None
