"""Client sessions (dissertation §6.3): each command applied at most once.

`SessionStateMachine` wraps the built-in KV store here; a small counter state
machine makes double application visible (its answer is the running total).
"""

from __future__ import annotations

import msgpack
import pytest

from raft.core.session import (
    CommandFailed,
    SessionError,
    SessionStateMachine,
    encode_command,
    encode_register,
    encode_unregister,
)
from raft.core.statemachine import StateMachine, op_kind
from raft.kv import KVStateMachine, encode_set


class Counter:
    """Adds each command's integer to a total and answers the new total."""

    def __init__(self) -> None:
        self.total = 0
        self.applied: list[int] = []

    def apply(self, index: int, data: bytes) -> int:
        if data == b"boom":
            raise ValueError("boom")
        self.applied.append(index)
        self.total += int(data)
        return self.total

    def snapshot(self) -> bytes:
        return msgpack.packb(self.total)

    def restore(self, data: bytes) -> None:
        self.total = msgpack.unpackb(data) if data else 0


class Replica:
    """One state machine fed log entries by index, as the node driver does."""

    def __init__(self, **kw: int) -> None:
        self.sm = SessionStateMachine(Counter(), **kw)
        self.index = 0

    def apply(self, data: bytes) -> object:
        self.index += 1
        return self.sm.apply(self.index, data)

    def register(self) -> int:
        cid = self.apply(encode_register())
        assert isinstance(cid, int)
        return cid


def test_is_a_state_machine():
    assert isinstance(SessionStateMachine(KVStateMachine()), StateMachine)


# §6.3: "If it receives a command whose serial number has already been
# executed, it responds immediately without re-executing the request."
def test_retried_command_is_answered_with_the_first_answer_not_applied_twice():
    r = Replica()
    cid = r.register()
    assert cid == 1  # the client id is the index of the register entry
    assert r.apply(encode_command(cid, 1, b"5")) == 5
    assert r.apply(encode_command(cid, 2, b"7")) == 12
    # The client timed out on seq 1 and retries it (maybe via a new leader).
    assert r.apply(encode_command(cid, 1, b"5")) == 5
    assert r.apply(encode_command(cid, 2, b"7")) == 12
    assert r.sm.inner.total == 12
    assert r.sm.inner.applied == [2, 3]
    # A new seq is applied.
    assert r.apply(encode_command(cid, 3, b"1")) == 13


def test_sessions_are_separate_per_client():
    r = Replica()
    a, b = r.register(), r.register()
    assert a != b
    assert r.apply(encode_command(a, 1, b"1")) == 1
    assert r.apply(encode_command(b, 1, b"10")) == 11  # same seq, other client: applied
    assert r.apply(encode_command(a, 1, b"1")) == 1


def test_pipelined_commands_may_commit_out_of_order_within_the_window():
    r = Replica(window=8)
    cid = r.register()
    assert r.apply(encode_command(cid, 2, b"2")) == 2
    assert r.apply(encode_command(cid, 1, b"1")) == 3  # never applied before: applied now
    assert r.apply(encode_command(cid, 1, b"1")) == 3  # and only once


# §6.3: the session keeps a bounded number of answers; an older seq gets a
# clear error, never a wrong answer or a second application.
def test_seq_older_than_the_window_is_stale():
    r = Replica(window=2)
    cid = r.register()
    for seq in range(1, 6):
        r.apply(encode_command(cid, seq, b"1"))
    assert r.sm.inner.total == 5
    assert r.apply(encode_command(cid, 4, b"1")) == 4  # still remembered
    res = r.apply(encode_command(cid, 2, b"1"))
    assert isinstance(res, SessionError) and res.kind == "stale"
    assert r.sm.inner.total == 5


def test_ack_lets_the_replicas_forget_answers_early():
    r = Replica(window=100)
    cid = r.register()
    r.apply(encode_command(cid, 1, b"1"))
    r.apply(encode_command(cid, 2, b"1", ack=2))  # the client has seq 1's answer
    res = r.apply(encode_command(cid, 1, b"1"))
    assert isinstance(res, SessionError) and res.kind == "stale"
    assert r.apply(encode_command(cid, 2, b"1")) == 2


def test_unknown_or_unregistered_client_is_expired():
    r = Replica()
    res = r.apply(encode_command(99, 1, b"1"))
    assert isinstance(res, SessionError) and res.kind == "expired"
    cid = r.register()
    assert r.apply(encode_unregister(cid)) is True
    assert r.apply(encode_unregister(cid)) is False
    res = r.apply(encode_command(cid, 1, b"1"))
    assert isinstance(res, SessionError) and res.kind == "expired"
    assert r.sm.inner.total == 0


# §6.3 / §7: the session table is replicated state, so it is in the snapshot.
def test_snapshot_round_trip_keeps_sessions_and_answers():
    a = Replica(window=4)
    cid = a.register()
    for seq in range(1, 7):
        a.apply(encode_command(cid, seq, str(seq).encode()))
    other = a.register()
    a.apply(encode_command(other, 1, b"100"))
    image = a.sm.snapshot()

    b = Replica(window=4)
    b.sm.restore(image)
    b.index = a.index
    assert b.sm.sessions == a.sm.sessions
    assert b.sm.inner.total == a.sm.inner.total == 121
    for r in (a, b):  # both replicas answer the same retries identically
        assert r.apply(encode_command(cid, 6, b"6")) == 21
        assert r.apply(encode_command(other, 1, b"100")) == 121
        res = r.apply(encode_command(cid, 1, b"1"))
        assert isinstance(res, SessionError) and res.kind == "stale"
        assert r.apply(encode_command(cid, 7, b"1")) == 122
    assert a.sm.snapshot() == b.sm.snapshot()


def test_restore_of_an_empty_snapshot_is_the_initial_state():
    r = Replica()
    r.register()
    r.sm.restore(b"")
    assert r.sm.sessions == {}
    assert r.sm.inner.total == 0


# §6.3: "servers must agree on when a client's session expires" -- by the log
# index, never by a local clock.  One replica applies every entry, the other
# restores from a snapshot part way: both expire the same session at the same
# index and answer the same way.
def test_expiry_is_deterministic_across_replicas():
    def run(restore_at: int | None) -> list[object]:
        r = Replica(expire_after=5)
        answers: list[object] = []
        log = [encode_register(), encode_register()]  # clients 1 and 2
        log += [encode_command(2, seq, b"1") for seq in range(1, 8)]  # only 2 stays busy
        log += [encode_command(1, 1, b"1"), encode_command(2, 8, b"1")]
        for i, data in enumerate(log, start=1):
            if restore_at == i:
                image = r.sm.snapshot()
                r = Replica(expire_after=5)
                r.sm.restore(image)
                r.index = i - 1
            answers.append(r.apply(data))
        answers.append(sorted(r.sm.sessions))
        return answers

    full = run(None)
    assert full == run(4) == run(7) == run(10)
    assert full[-3] == SessionError("expired", "no session for client 1: register again")
    assert full[-2] == 8
    assert full[-1] == [2]


def test_index_gaps_count_towards_expiry():
    # No-ops and configuration entries never reach the state machine, but
    # they still use up log indexes: expiry counts indexes, not commands.
    sm = SessionStateMachine(Counter(), expire_after=10)
    assert sm.apply(1, encode_register()) == 1
    assert sm.apply(5, encode_command(1, 1, b"1")) == 1
    assert sm.apply(15, encode_command(1, 2, b"1")) == 2  # unused for 10: still alive
    res = sm.apply(26, encode_command(1, 3, b"1"))  # unused for 11
    assert isinstance(res, SessionError) and res.kind == "expired"


@pytest.mark.parametrize(
    "data",
    [
        b"\xc1",  # never valid msgpack
        b"",
        msgpack.packb(42),
        msgpack.packb([]),
        msgpack.packb(["command", 1, 1]),
        msgpack.packb(["command", "x", 1, 0, b"1"]),
        msgpack.packb(["command", 1, 1, 0, "not bytes"]),
        msgpack.packb(["command", 1, 0, 0, b"1"]),
        msgpack.packb(["launch", 1]),
        msgpack.packb(["register", "extra"]),
    ],
)
def test_bad_envelope_is_an_error_result_not_an_exception(data):
    r = Replica()
    r.register()
    before = r.sm.snapshot()
    res = r.apply(data)
    assert isinstance(res, SessionError) and res.kind == "bad-command"
    assert r.sm.snapshot() == before  # nothing changed
    assert op_kind(r.sm, data) in ("unknown", "launch", "register", "command")


def test_failing_command_is_recorded_so_a_retry_does_not_apply_it_again():
    r = Replica()
    cid = r.register()
    first = r.apply(encode_command(cid, 1, b"boom"))
    assert first == CommandFailed("ValueError", "boom")
    assert r.apply(encode_command(cid, 1, b"boom")) == first
    image = r.sm.snapshot()
    b = Replica()
    b.sm.restore(image)
    assert b.sm.apply(10, encode_command(cid, 1, b"boom")) == first


def test_wraps_the_kv_store_and_names_ops_for_traces():
    sm = SessionStateMachine(KVStateMachine())
    cid = sm.apply(1, encode_register())
    cmd = encode_command(cid, 1, encode_set("k", b"v"))
    assert sm.apply(2, cmd) is None
    assert sm.inner.get("k") == b"v"
    assert op_kind(sm, cmd) == "set"  # the wrapped command's kind
    assert op_kind(sm, encode_register()) == "register"
