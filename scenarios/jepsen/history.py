"""The Jepsen test's history: what one HTTP answer means for the checker.

Theory of operation
-------------------
Each register of the test is a config.  Its value is ``Spec.Labels["value"]``
and its version is ``Version.Index``, the Raft index of its last change, so
a key is exactly a `scenarios.linearizability.VersionedModel` object:

=====================  ================================  ==========================
client operation       HTTP request                      model operation
=====================  ================================  ==========================
``read``               ``GET /configs/{key}``            ``read`` -> (version, value)
``write``              ``POST /configs/{key}/update``    ``write`` (expected, value)
                       ``?version=<last version this``   -> new version, or None (409)
                       ``client saw>``
``cas``                the same, with a version drawn    the same
                       from the key's recent versions
                       (often stale: a refusal is the
                       point)
=====================  ================================  ==========================

The API has no blind write: every update names the version it was read at,
so ``write`` and ``cas`` differ only in how the client picks that version
(its own freshest view, or a random recent one); both are the model's
``write``.  A 409 "update out of sequence" is an *ok* answer with output
None: the store refused the command when it applied it, a committed fact
that the version differed at that moment.

What an answer proves is decided conservatively, by `classify`:

* 200 is ok; a read outputs ``(Version.Index, value)``, an update its new
  ``Version.Index``;
* 409 on an update is an ok refusal (see above);
* other 4xx (400 invalid, 404 no such config) are refused before or by the
  state machine without effect: fail;
* 503 is a fail only when its message says the request never reached a Raft
  proposal (no leader known, not the leader either, a read barrier or a
  leadership transfer stopped it first).  Any other 503 -- a proposal that
  timed out ("it may still commit later"), leadership lost in flight, the
  leader unreachable from the follower that forwarded -- and a 500 are
  unknown;
* no answer: a refused connection means nothing was sent (fail); a timeout or
  a connection dropped after sending is unknown.

For reads the distinction does not matter (the checker drops failed and
unknown reads alike) but the history shows it anyway.  The process of an
operation is its client's number: the checker needs no per-process order,
and one row per client is what the figure draws.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scenarios.linearizability import Operation, Status, VersionedModel, encode_op

__all__ = [
    "NOT_PROPOSED",
    "JepsenModel",
    "Record",
    "Reply",
    "classify",
    "history_lines",
    "record_from_line",
    "to_operation",
]

#: Substrings of 503 messages that prove the write never became a Raft
#: proposal (cluster/api.py, cluster/manager.py, cluster/api_common.py).  A
#: message not listed here is taken as "may have committed": if the wording
#: changes, the test only grows more cautious.
NOT_PROPOSED = (
    "knows of no leader",  # a follower with no leader to forward to
    "is not the leader either",  # a forwarded request met a non-leader
    "no quorum: the swarm has no leader",  # read barrier before the update (lookup)
    "no leader confirmed a read",  # read barrier timed out
    "read barrier timed out",  # the API's bound on that barrier
    "leadership transfer to",  # ProposalDropped: the leader takes no proposals
    "could not open a client session",  # the command itself was never proposed
)

#: Kinds of client operation and the model operation each becomes.
MODEL_KIND = {"read": "read", "write": "write", "cas": "write", "final-read": "read"}


@dataclass(frozen=True, slots=True)
class Reply:
    """What the client got back: an HTTP status and JSON body, or no answer."""

    status: int | None = None
    body: Any = None
    #: Why there was no answer (None if there was one).
    error: str | None = None
    #: False only when the request certainly never left (connection refused).
    sent: bool = True
    served_by: str | None = None

    @property
    def message(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("message", ""))
        return "" if self.body is None else str(self.body)


@dataclass(slots=True)
class Record:
    """One client operation as recorded (richer than the checker's `Operation`)."""

    id: int
    client: int
    op: str  # read | write | cas | final-read
    key: str
    #: ``(expected_version, value)`` for write and cas; None for reads.
    input: Any
    invoke: float
    end: float  # when the client had its answer or gave up (absolute seconds)
    status: Status
    output: Any = None
    node: str | None = None
    served_by: str | None = None
    http: int | None = None
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.end - self.invoke


def classify(op: str, reply: Reply) -> tuple[Status, Any]:
    """(status, output) of an operation that got ``reply``; see the module docstring."""
    reading = MODEL_KIND[op] == "read"
    if reply.status is None:
        return (Status.INFO if reply.sent else Status.FAIL), None
    if reply.status == 200:
        body = reply.body if isinstance(reply.body, dict) else {}
        version = body.get("Version", {}).get("Index")
        if reading:
            labels = body.get("Spec", {}).get("Labels") or {}
            return Status.OK, (version, labels.get("value"))
        return Status.OK, version
    if reply.status == 409 and not reading:
        return Status.OK, None
    if 400 <= reply.status < 500:
        return Status.FAIL, None
    if reply.status == 503 and any(s in reply.message for s in NOT_PROPOSED):
        return Status.FAIL, None
    return Status.INFO, None


def to_operation(rec: Record) -> Operation:
    """The checker's view: model kind, (expected, value) in, version (and value) out."""
    return Operation(
        id=rec.id,
        process=rec.client,
        kind=MODEL_KIND[rec.op],
        key=rec.key,
        input=rec.input,
        output=rec.output if rec.status is Status.OK else None,
        invoke=rec.invoke,
        complete=rec.end if rec.status is not Status.INFO else math.inf,
        status=rec.status,
    )


def history_lines(records: Iterable[Record]) -> Iterable[str]:
    """JSON lines `scenarios.linearizability.loads_history` reads, plus our own fields.

    The checker's fields come from `encode_op` (an unknown outcome has
    ``complete`` null); ``op``, ``node``, ``served_by``, ``http``, ``error``
    and ``end`` (when the client gave up, for the figure) are extra and
    ignored by the decoder.
    """
    for rec in records:
        line = json.loads(encode_op(to_operation(rec)))
        line.update(
            op=rec.op,
            end=rec.end,
            node=rec.node,
            served_by=rec.served_by,
            http=rec.http,
            error=rec.error,
        )
        yield json.dumps(line, separators=(",", ":"))


def record_from_line(line: Mapping[str, Any]) -> Record:
    """Inverse of `history_lines` for one decoded line (figures from a saved history)."""
    status = Status(line["status"])
    end = line.get("end")
    if end is None:
        end = line["complete"] if line.get("complete") is not None else line["invoke"]
    return Record(
        id=int(line["id"]),
        client=int(line["process"]),
        op=line.get("op", line["kind"]),
        key=line["key"],
        input=line.get("input"),
        invoke=float(line["invoke"]),
        end=float(end),
        status=status,
        output=line.get("output"),
        node=line.get("node"),
        served_by=line.get("served_by"),
        http=line.get("http"),
        error=line.get("error"),
    )


class JepsenModel(VersionedModel):
    """`VersionedModel` whose initial (version, value) is known per key.

    The test creates every config before the clients start and reads it back
    linearizably, so the checker starts each key from a fact, not from an
    unknown version.
    """

    def __init__(self, initial: Mapping[Hashable, tuple[int, Any]]) -> None:
        super().__init__()
        self.initial_by_key = {k: (v, val) for k, (v, val) in initial.items()}

    def init(self, key: Hashable) -> Hashable:
        return self.initial_by_key.get(key, self.initial)
