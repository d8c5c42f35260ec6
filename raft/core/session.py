"""Client sessions: exactly-once commands over an at-least-once log (dissertation §6.3).

Theory of operation
-------------------

A client that times out waiting for its command cannot tell whether the
command was lost or committed, so it retries -- and without help the state
machine would apply the command twice (§8 of the paper: "if the leader
crashes after committing the log entry but before responding to the client,
the client will retry the command with a new leader, causing it to be
executed a second time").  The dissertation's answer is a *session* per
client, kept in the replicated state machine itself:

* A client first **registers**.  The register command goes through the log
  like any other, and the client's id is the log index of that entry: unique,
  known to every replica, and never reused.
* Each later command carries ``(client_id, seq, payload)``.  The wrapper
  remembers, per client, the answers to its recent sequence numbers.  A
  command whose ``seq`` was already applied is answered from that memory, not
  applied again.  A ``seq`` too old to be remembered is answered with a
  `SessionError` of kind ``stale``: the client learns the outcome is unknown
  instead of getting a wrong answer.
* A client may also say which answers it has received (``ack``: every seq
  below it), so the replicas can forget those answers early.
* Sessions cannot live for ever.  A session not used for ``expire_after``
  log indexes is dropped, and a later command for it is answered with a
  `SessionError` of kind ``expired``.  The rule depends only on log indexes,
  which every replica sees identically, and never on a local clock: if one
  replica expired a session that another kept, the two would answer the same
  retry differently and the state machines would diverge.
* The session table is part of the snapshot (§7), so a replica restored from
  a snapshot suppresses duplicates exactly as one that applied every entry.

`SessionStateMachine` wraps any `raft.core.statemachine.StateMachine`
(``apply``, ``snapshot``, ``restore``) and is one itself.  Commands are small
msgpack arrays built by `encode_register`, `encode_command` and
`encode_unregister`.  A malformed command is answered with a `SessionError`
(kind ``bad-command``) rather than an exception, on every replica alike.

What the wrapped state machine's ``apply`` returns is the client's answer; it
must be msgpack-serializable (it is stored in the snapshot).  If it raises,
the failure is recorded as a `CommandFailed` answer, so that a retry of that
command gets the same failure instead of a second attempt.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import msgpack

from raft.core.statemachine import StateMachine, op_kind

__all__ = [
    "CommandFailed",
    "SessionError",
    "SessionStateMachine",
    "encode_command",
    "encode_register",
    "encode_unregister",
]

_REGISTER = "register"
_COMMAND = "command"
_UNREGISTER = "unregister"
_SNAPSHOT_VERSION = 1

# How a remembered answer is stored: the inner result, or a recorded failure.
_OK = 0
_FAILED = 1


# ==================================================================== answers


@dataclass(frozen=True, slots=True)
class SessionError:
    """The command was not applied, and why.

    ``kind`` is one of:

    * ``expired`` -- no session with this client id (never registered,
      unregistered, or dropped for inactivity): register again;
    * ``stale`` -- the sequence number is older than the answers this session
      still remembers; whether it was applied is unknown;
    * ``bad-command`` -- the bytes are not a session command.
    """

    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """The wrapped state machine raised while applying the command.

    Recorded like any answer, so a retry gets the same failure.
    """

    error: str
    message: str


# ==================================================================== envelopes


def encode_register() -> bytes:
    """Open a session; the answer (an int) is the new client id."""
    return msgpack.packb([_REGISTER])


def encode_command(client_id: int, seq: int, payload: bytes, ack: int = 0) -> bytes:
    """Command number ``seq`` (from 1, increasing) of ``client_id``.

    ``ack``: the client has received the answers to every seq below it, so the
    replicas may forget them.  Retry a command with the very same bytes.
    """
    return msgpack.packb([_COMMAND, client_id, seq, ack, payload])


def encode_unregister(client_id: int) -> bytes:
    """Close a session; the answer is True if it existed."""
    return msgpack.packb([_UNREGISTER, client_id])


# ==================================================================== the table


@dataclass(slots=True)
class _Session:
    #: Log index of the last command (or the registration) of this client.
    last_used: int
    #: Highest seq applied for this client (0: none yet).
    highest: int = 0
    #: Answers for seq in (floor, highest]; a seq there but absent was never applied.
    answers: dict[int, tuple[int, Any]] = field(default_factory=dict)
    #: Every seq <= floor is forgotten: stale.
    floor: int = 0


class SessionStateMachine:
    """Wraps a state machine so that each client command is applied at most once.

    ``expire_after``: a session unused for that many log indexes is dropped.
    ``window``: answers kept per session, counted in sequence numbers below the
    highest one applied (a client with at most ``window`` commands outstanding
    never sees ``stale``).
    """

    def __init__(self, inner: StateMachine, expire_after: int = 10_000, window: int = 64) -> None:
        if expire_after < 1 or window < 1:
            raise ValueError("expire_after and window must be at least 1")
        self.inner = inner
        self.expire_after = expire_after
        self.window = window
        #: client id -> session, least recently used first (so expiry pops from the front).
        self._sessions: OrderedDict[int, _Session] = OrderedDict()

    # ------------------------------------------------------------ views

    @property
    def sessions(self) -> dict[int, int]:
        """client id -> log index of its last use (for tests and status pages)."""
        return {cid: s.last_used for cid, s in self._sessions.items()}

    # ------------------------------------------------------------ StateMachine

    def apply(self, index: int, data: bytes) -> Any:
        self._expire(index)
        try:
            cmd = msgpack.unpackb(data)
        except Exception as e:  # any malformed msgpack; never an exception to the driver
            return SessionError("bad-command", f"not msgpack: {e}")
        if not isinstance(cmd, list) or not cmd:
            return SessionError("bad-command", "a session command is a non-empty array")
        op = cmd[0]
        if op == _COMMAND and len(cmd) == 5 and _ints(cmd[1], cmd[2], cmd[3]):
            if not isinstance(cmd[4], bytes):
                return SessionError("bad-command", "the payload must be bytes")
            return self._command(index, cmd[1], cmd[2], cmd[3], cmd[4])
        if op == _REGISTER and len(cmd) == 1:
            self._sessions[index] = _Session(last_used=index)
            return index
        if op == _UNREGISTER and len(cmd) == 2 and _ints(cmd[1]):
            return self._sessions.pop(cmd[1], None) is not None
        return SessionError("bad-command", f"unknown or malformed session command {cmd!r:.80}")

    def snapshot(self) -> bytes:
        table = [
            [cid, s.last_used, s.highest, s.floor, [[q, k, v] for q, (k, v) in s.answers.items()]]
            for cid, s in self._sessions.items()
        ]
        return msgpack.packb(
            {
                "version": _SNAPSHOT_VERSION,
                "expire_after": self.expire_after,
                "window": self.window,
                "sessions": table,
                "inner": self.inner.snapshot(),
            }
        )

    def restore(self, data: bytes) -> None:
        if not data:  # an empty snapshot: the state before any entry
            self._sessions = OrderedDict()
            self.inner.restore(data)
            return
        d = msgpack.unpackb(data, strict_map_key=False)
        if d.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"unknown session snapshot version {d.get('version')!r}")
        sessions: OrderedDict[int, _Session] = OrderedDict()
        for cid, last_used, highest, floor, answers in d["sessions"]:
            sessions[cid] = _Session(last_used, highest, {q: (k, v) for q, k, v in answers}, floor)
        self.inner.restore(d["inner"])
        self._sessions = sessions

    def op_kind(self, data: bytes) -> str:
        """A name for the trace: the wrapped command's kind, or the session op."""
        try:
            cmd = msgpack.unpackb(data)
            if cmd[0] == _COMMAND:
                return op_kind(self.inner, cmd[4])
            return str(cmd[0])
        except Exception:
            return "unknown"

    # ------------------------------------------------------------ internals

    def _expire(self, index: int) -> None:
        """Drop sessions unused for ``expire_after`` indexes (identical on every replica)."""
        horizon = index - self.expire_after
        while self._sessions:
            cid, s = next(iter(self._sessions.items()))
            if s.last_used >= horizon:
                return
            del self._sessions[cid]

    def _command(self, index: int, cid: int, seq: int, ack: int, payload: bytes) -> Any:
        s = self._sessions.get(cid)
        if s is None:
            return SessionError("expired", f"no session for client {cid}: register again")
        if seq < 1:
            return SessionError("bad-command", f"sequence numbers start at 1, got {seq}")
        s.last_used = index
        self._sessions.move_to_end(cid)
        if seq in s.answers:
            return self._answer(s.answers[seq])  # a retry: the first answer, not a second apply
        if seq <= s.floor:
            return SessionError(
                "stale",
                f"client {cid} seq {seq} is older than the answers kept (from {s.floor + 1})",
            )
        try:
            result = self.inner.apply(index, payload)
        except Exception as e:
            stored: tuple[int, Any] = (_FAILED, [type(e).__name__, str(e)])
            result = self._answer(stored)
        else:
            stored = (_OK, result)
            try:
                msgpack.packb(result)  # it goes into snapshots: find out now, on every replica
            except Exception as e:
                stored = (_FAILED, ["UnserializableResult", f"applied, but {e}"])
                result = self._answer(stored)
        s.answers[seq] = stored
        s.highest = max(s.highest, seq)
        self._forget(s, max(s.highest - self.window, ack - 1))
        return result

    @staticmethod
    def _forget(s: _Session, floor: int) -> None:
        if floor <= s.floor:
            return
        s.floor = floor
        for q in [q for q in s.answers if q <= floor]:
            del s.answers[q]

    @staticmethod
    def _answer(stored: tuple[int, Any]) -> Any:
        kind, value = stored
        if kind == _FAILED:
            return CommandFailed(*value)
        return value


def _ints(*values: object) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)
