"""What the checker answers: per key (`KeyResult`), overall (`Verdict`), and
why a key failed (`Violation`)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from scenarios.linearizability.history import Operation

__all__ = ["KeyResult", "Verdict", "Violation"]


@dataclass(frozen=True, slots=True)
class Violation:
    """Why one key is not linearizable, as small as we could make it."""

    key: Hashable
    #: The earliest completion time at which the history cut there already fails.
    failed_at: float
    #: The operation completing at ``failed_at``: it cannot be placed.
    op: Operation
    #: 1-minimal set of ok operations (incl. ``op``) whose answers cannot all hold.
    core: tuple[Operation, ...]
    #: Longest order of the core (plus possible unknown effects) the search reached.
    partial: tuple[Operation, ...]
    #: Model state after ``partial``, described by the model.
    state: str
    #: The operation whose deadline passed after ``partial`` (None if not found).
    blocked: Operation | None
    explanation: str


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict for one key: ``ok`` is None when the state budget ran out."""

    key: Hashable
    ok: bool | None
    ops: int
    states: int
    violation: Violation | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verdict for a whole history: linearizable iff every key is."""

    ok: bool | None
    model: str
    keys: dict[Hashable, KeyResult] = field(default_factory=dict)

    @property
    def states(self) -> int:
        """Search states explored over all keys (the deterministic cost measure)."""
        return sum(r.states for r in self.keys.values())

    @property
    def violations(self) -> list[Violation]:
        return [r.violation for r in self.keys.values() if r.violation is not None]

    def explain(self) -> str:
        """A paragraph per failing or undecided key, or one line when all is well."""
        if self.ok:
            return f"linearizable: {len(self.keys)} key(s), {self.states} states explored"
        parts = []
        for r in self.keys.values():
            if r.violation is not None:
                parts.append(r.violation.explanation)
            elif r.ok is None:
                parts.append(f"key {r.key!r}: undecided, state budget exhausted")
        return "\n\n".join(parts)
