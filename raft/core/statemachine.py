"""The interface between Raft and the application it replicates.

Raft orders commands; the *state machine* gives them meaning (§2 of the
paper: "replicated state machines").  The node driver (`raft.runtime.node`) hands
every committed NORMAL entry to `StateMachine.apply`, in log order, exactly
once per process lifetime, and uses `snapshot` / `restore` for log
compaction and for installing a leader's snapshot (§7).

Determinism is the whole contract: every replica applies the same commands
in the same order and must reach the same state and return the same result.
So `apply` must not read clocks, randomness, the environment or anything
outside ``data``; if it raises, it must raise on every replica (the driver
passes the exception to the waiting client as the command's outcome and
carries on).

`raft.kv.KVStateMachine` is the small built-in example used by tests and the
benchmark; the Swarm store in ``cluster/`` is the real one.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["StateMachine", "op_kind"]


@runtime_checkable
class StateMachine(Protocol):
    """What the node driver needs from the replicated application."""

    def apply(self, index: int, data: bytes) -> Any:
        """Apply the command committed at log ``index``; return the client's result."""
        ...

    def snapshot(self) -> bytes:
        """The whole state as bytes, as of the last applied index (§7)."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with one produced by `snapshot`."""
        ...


def op_kind(state_machine: object, data: bytes) -> str:
    """A short name for the command in ``data``, for the ``apply`` trace lines.

    The driver treats commands as opaque bytes.  A state machine that wants
    readable traces defines ``op_kind(data) -> str``; otherwise every command
    is just "command".  Never raises: a trace must not break the apply path.
    """
    describe = getattr(state_machine, "op_kind", None)
    if describe is None:
        return "command"
    try:
        return str(describe(data))
    except Exception:
        return "unknown"
