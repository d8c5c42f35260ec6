"""Sequential models: what one key does when operations come one at a time.

The checker only asks a model to `step`; a new kind of object is a new model."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

from scenarios.linearizability.history import Operation, Status, freeze

__all__ = ["Model", "RegisterModel", "VersionedModel"]


class Model(Protocol):
    """A sequential specification: what one key does when operations come one at a time.

    ``step`` must be a pure function of (state, op) and states must be hashable:
    the checker caches them.  For an ``info`` operation, ``step`` describes the
    effect *if* it happened (it must not reject on output, which is unknown).
    """

    name: str
    #: Kinds that never change the state; unknown-outcome ones are dropped.
    read_kinds: frozenset[str]

    def init(self, key: Hashable) -> Hashable: ...

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]: ...

    def is_pure(self, op: Operation) -> bool:
        """True if ``op`` is a pure observation: in every state ``step`` either
        refuses it or leaves the state exactly as it was.  The search places
        such operations greedily (see `search`), so say False when unsure."""
        ...

    def describe_state(self, state: Hashable) -> str: ...


class RegisterModel:
    """A read/write/compare-and-set register, one per key, starting at ``initial``.

    ``cas`` takes ``(expected, new)``; an ``ok`` cas whose output is False
    reports that the comparison failed, which is also information: at its
    linearization point the register held something other than ``expected``.
    """

    name = "register"
    read_kinds = frozenset({"read"})

    def __init__(self, initial: Any = None) -> None:
        self.initial = freeze(initial)

    def init(self, key: Hashable) -> Hashable:
        return self.initial

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]:
        kind = op.kind
        if kind == "read":
            return op.status is not Status.OK or op.output == state, state
        if kind == "write":
            return True, op.input
        if kind == "cas":
            expected, new = op.input
            if op.status is not Status.OK:
                return True, (new if state == expected else state)
            if op.output is False:
                return state != expected, state
            return state == expected, new
        raise ValueError(f"register: unknown operation kind {kind!r}")

    def is_pure(self, op: Operation) -> bool:
        if op.status is not Status.OK:
            return False
        return op.kind == "read" or (op.kind == "cas" and op.output is False)

    def describe_state(self, state: Hashable) -> str:
        return f"value {state!r}"


class VersionedModel:
    """An object with a version number, updated by compare-and-set on the version.

    Like a Docker API object's ``Version.Index``: ``read`` returns
    ``(version, value)``; ``write`` takes ``(expected_version, value)`` and
    applies iff the current version equals ``expected_version``, after which
    the version is the index the server answered with (``output``).  An ``ok``
    write with output None was refused as stale (HTTP 409) -- a fact about the
    version at that moment.  A timed-out write leaves the new version unknown
    (None in the state): until a read reveals it, any version matches.
    """

    name = "versioned"
    read_kinds = frozenset({"read"})

    def __init__(self, initial_version: int | None = 0, initial_value: Any = None) -> None:
        self.initial = (initial_version, freeze(initial_value))

    def init(self, key: Hashable) -> Hashable:
        return self.initial

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]:
        version, value = state
        if op.kind == "read":
            if op.status is not Status.OK:
                return True, state
            seen_version, seen_value = op.output
            if seen_value != value or (version is not None and version != seen_version):
                return False, state
            return True, (seen_version, value)  # pins an unknown version
        if op.kind == "write":
            expected, new_value = op.input
            matches = version is None or version == expected
            if op.status is not Status.OK:
                return True, ((None, new_value) if matches else state)
            if op.output is None:  # refused: the version did not match
                return version is None or version != expected, state
            return matches, (op.output, new_value)
        raise ValueError(f"versioned: unknown operation kind {op.kind!r}")

    def is_pure(self, op: Operation) -> bool:
        # Not even reads: one can pin a version left unknown by a timed-out write.
        return False

    def describe_state(self, state: Hashable) -> str:
        version, value = state
        shown = "unknown" if version is None else version
        return f"version {shown}, value {value!r}"
