"""Typed errors of the Swarm state machine, worded the way Docker words them.

The store never lets one of these escape from `Store.apply`: a command that a
Raft log holds has already been committed, so refusing it is a *result* that
every replica computes identically, not a crash.  The proposer and the HTTP
API do see them as exceptions (via `Result.unwrap`), and the API turns each
one into a status code with `http_status`.

Docker passes swarmkit's gRPC errors through to the user unchanged, so a user
sees ``rpc error: code = AlreadyExists desc = secret foo already exists``.
`str(err)` gives exactly that line; `err.desc` gives the part after ``desc =``.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every refusal the state machine can answer with."""

    code = "Unknown"
    http_status = 500

    def __init__(self, desc: str) -> None:
        super().__init__(desc)
        self.desc = desc

    def __str__(self) -> str:
        return f"rpc error: code = {self.code} desc = {self.desc}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.desc!r})"

    def to_wire(self) -> dict[str, str]:
        """A plain dict for the HTTP body or a trace line."""
        return {"code": self.code, "message": str(self)}


class NotFound(StoreError):
    """No object of that kind has that ID, name or ID prefix."""

    code = "NotFound"
    http_status = 404


class AlreadyExists(StoreError):
    """A name (or ID) is already taken within its kind."""

    code = "AlreadyExists"
    http_status = 409


class InvalidArgument(StoreError):
    """A malformed command or a spec Docker would refuse."""

    code = "InvalidArgument"
    http_status = 400


class FailedPrecondition(StoreError):
    """The command is well formed but the current state forbids it."""

    code = "FailedPrecondition"
    http_status = 400


class Unimplemented(StoreError):
    """Docker does not support this change either (e.g. renaming a service)."""

    code = "Unimplemented"
    http_status = 501


class VersionConflict(StoreError):
    """Compare-and-set failed: the caller's ``Version.Index`` is stale.

    swarmkit calls this "update out of sequence"; our API answers 409 so a
    client knows to re-read the object and retry.
    """

    code = "Unknown"
    http_status = 409

    def __init__(self, desc: str = "update out of sequence") -> None:
        super().__init__(desc)


class Ambiguous(InvalidArgument):
    """An ID prefix or a (non-unique) node hostname matches several objects."""


class SnapshotError(ValueError):
    """The bytes handed to `Store.restore` are not a store snapshot.

    Unlike a bad command, a bad snapshot is a local fault (corrupt disk or a
    bug), so `restore` raises it instead of returning a result.
    """
