"""The replicated state machine as Raft sees it: the Swarm `Store`.

Raft applies opaque entries; this adapter gives it the store and gives the
trace readable names.  It is apart from the process because it is the one
thing every manager must do identically (§5.3: the same commands in the same
order give the same state), and because its answers cross a snapshot: the
session layer keeps recent answers there, so they must be plain data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.state import errors as store_errors
from cluster.state.errors import StoreError
from cluster.state.store import Result, Store, decode_command

__all__ = ["StoreMachine", "decode_answer"]


class StoreMachine:
    """The `Store` as Raft's state machine, with readable trace names.

    Answers are plain lists, not `Result` objects: the session layer keeps
    recent answers in the snapshot, so they must be msgpack-serialisable.
    `decode_answer` turns them back into a `Result`.
    """

    def __init__(self, store: Store, before_new_key: Callable[[], None] | None = None) -> None:
        self.store = store
        #: Called just before an entry that stores a new wrapping of the data key
        #: is applied (`KeyRing.keep_dek`): the last moment the old one can be read.
        self.before_new_key = before_new_key

    def apply(self, index: int, data: bytes) -> list[Any]:
        if self.before_new_key is not None and _is_new_key(data):
            self.before_new_key()
        r = self.store.apply(index, data)
        if r.error is None:
            return ["ok", r.index, r.op, r.value]
        return ["error", r.index, r.op, type(r.error).__name__, r.error.desc]

    def snapshot(self) -> bytes:
        return self.store.snapshot()

    def restore(self, data: bytes) -> None:
        self.store.restore(data)

    def op_kind(self, data: bytes) -> str:
        return decode_command(data)[0]


def _is_new_key(data: bytes) -> bool:
    """Does the entry store a wrapping of the data key (alone, or in a batch, as
    ``swarm update`` sends it with the spec)?"""
    try:
        op, args = decode_command(data)
    except Exception:  # the store reports a malformed entry itself
        return False
    if op == "batch":
        parts = args.get("commands") if isinstance(args, dict) else None
        return any(isinstance(p, dict) and p.get("op") == "keyring.put" for p in parts or [])
    return op == "keyring.put"


def decode_answer(answer: Any) -> Result:
    """The `Result` an answer of `StoreMachine.apply` stands for."""
    if answer[0] == "ok":
        return Result(answer[1], answer[2], answer[3])
    cls = getattr(store_errors, answer[3], None)
    if not (isinstance(cls, type) and issubclass(cls, StoreError)):
        cls = StoreError
    return Result(answer[1], answer[2], error=cls(answer[4]))
