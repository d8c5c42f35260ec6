"""Histories: `Operation` (one client call, its interval and outcome), `Status`,
and the JSON-lines form (`dumps_history`, `loads_history`) tools exchange."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Operation",
    "Status",
    "decode_op",
    "dumps_history",
    "encode_op",
    "freeze",
    "loads_history",
]


class Status(enum.StrEnum):
    """How an operation ended, as far as the client knows."""

    OK = "ok"  #: took effect inside its interval; ``output`` is what it returned
    FAIL = "fail"  #: definitely did not take effect
    INFO = "info"  #: unknown (timeout): may take effect at any time after invoke, or never


_STATUS_ALIASES = {"timeout": Status.INFO, "unknown": Status.INFO}


class _FrozenDict(dict):
    """A dict that can be hashed, so JSON objects can be model states."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))


def freeze(value: Any) -> Hashable:
    """Make a JSON-ish value hashable (lists become tuples) so states can be cached."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return _FrozenDict((k, freeze(v)) for k, v in value.items())
    return value


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation on one key, from invocation to answer.

    ``input`` depends on ``kind``: a register ``write`` carries the value, a
    ``cas`` the pair ``(expected, new)``, a ``read`` nothing.  ``output`` is
    meaningful only for ``ok``: the value read, or for ``cas`` whether it
    applied.  Inputs and outputs are frozen on construction (lists become
    tuples) because they end up inside cached model states.
    """

    id: int
    process: int | str
    kind: str
    key: Hashable
    input: Any = None
    output: Any = None
    invoke: float = 0.0
    complete: float = math.inf
    status: Status = Status.OK

    def __post_init__(self) -> None:
        status = self.status
        if not isinstance(status, Status):
            status = _STATUS_ALIASES.get(status) or Status(status)
            object.__setattr__(self, "status", status)
        object.__setattr__(self, "input", freeze(self.input))
        object.__setattr__(self, "output", freeze(self.output))
        object.__setattr__(self, "key", freeze(self.key))
        if status is Status.INFO:
            # Ignorance extends forever: the effect may land after the client gave up.
            object.__setattr__(self, "complete", math.inf)
        elif not math.isfinite(self.complete):
            raise ValueError(f"operation {self.id}: a {status.value} answer needs a finite time")
        if self.complete < self.invoke:
            raise ValueError(f"operation {self.id}: completes before it is invoked")

    def __str__(self) -> str:
        body = f"{self.kind}({self.key!r}"
        if self.input is not None:
            body += f", {self.input!r}"
        body += ")"
        if self.status is Status.OK and self.output is not None:
            body += f" -> {self.output!r}"
        end = "∞" if math.isinf(self.complete) else f"{self.complete:.3f}"
        who = f"p{self.process}" if isinstance(self.process, int) else self.process
        return f"#{self.id} {who} {body} {self.status.value} [{self.invoke:.3f}, {end}]"


def _thaw(value: Any) -> Any:
    """Inverse of `freeze` for JSON: tuples back to lists, frozen dicts to dicts."""
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    return value


def encode_op(op: Operation) -> str:
    """One JSON line for ``op``; ``complete`` is null for an unknown outcome (no +inf in JSON)."""
    return json.dumps(
        {
            "id": op.id,
            "process": op.process,
            "kind": op.kind,
            "key": _thaw(op.key),
            "input": _thaw(op.input),
            "output": _thaw(op.output),
            "invoke": op.invoke,
            "complete": None if math.isinf(op.complete) else op.complete,
            "status": op.status.value,
        },
        separators=(",", ":"),
    )


def decode_op(line: str) -> Operation:
    """Parse one line written by `encode_op` (``status`` may also be "timeout"/"unknown")."""
    d = json.loads(line)
    complete = d.get("complete")
    return Operation(
        id=int(d["id"]),
        process=d["process"],
        kind=d["kind"],
        key=d["key"],
        input=d.get("input"),
        output=d.get("output"),
        invoke=float(d["invoke"]),
        complete=math.inf if complete is None else float(complete),
        status=d.get("status", "ok"),
    )


def dumps_history(ops: Iterable[Operation]) -> str:
    """A whole history as JSON lines; a recorder may instead write `encode_op` per line."""
    return "".join(encode_op(op) + "\n" for op in ops)


def loads_history(lines: str | Iterable[str]) -> list[Operation]:
    """Read JSON lines (a string or any iterable of lines, e.g. an open file); blanks skipped."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    return [decode_op(line) for line in lines if line.strip()]
