"""A linearizability checker for client histories: pure Python, no I/O.

Theory of operation
-------------------
A *history* is what clients saw: each `Operation` was invoked at one moment
and answered at a later one, with an outcome.  The history is *linearizable*
(Herlihy and Wing) when every operation can be given one instant, its
linearization point, inside its own interval, such that replaying the
operations one at a time in the order of those points through a sequential
*model* (a register, a versioned object) gives exactly the answers the clients
got.  That is the promise a Raft-backed store makes: a completed write is never
lost and never read "stale", however leaders die.

Outcomes are the subtle part.  ``ok`` answers are facts: the operation took
effect inside its interval and returned what it says.  ``fail`` answers are
facts too, that it did *not* take effect, so the checker drops them.  ``info``
(a timeout, a dropped connection) is ignorance: the operation may have taken
effect at any instant after its invocation, even long after the client gave
up, or never.  Its completion time is therefore +infinity and its output is
unknown; an unknown read cannot change anything and is dropped too.

The search (Wing and Gong, improved by Lowe; the idea behind Knossos and
Porcupine) walks a doubly linked list of *call* and *return* events sorted by
time.  Scanning from the front, any call it meets belongs to an operation that
could be linearized next: it tries the model on it and, if the model agrees,
*lifts* the call and its return out of the list, pushes the choice on a stack
and starts again from the front.  Meeting a *return* means that operation's
deadline came while it was still unplaced: the last choice was wrong, so it
pops the stack, puts the lifted events back and tries the next candidate.
Success is reached when every ``ok`` operation is placed; ``info`` operations
have no return event, so they never force a backtrack and may stay unplaced.

Two things keep it fast.  A cache of (set of placed operations, model state)
pairs, the set kept as a Python int used as a bitset: two search paths that
placed the same operations and reached the same state have the same future, so
the second is cut off.  And P-compositionality: linearizability is local to
each object, so every key's sub-history is checked on its own; the search is
exponential in the worst case, but in the size of one key's concurrency, not of
the whole history.

When a key fails, the answer should be small enough to read.  We report:

1. the *first failing moment*: the earliest completion time T such that the
   history cut at T (operations invoked after T removed, those still running
   at T made ``info``) is already not linearizable.  Cutting is monotone, so a
   binary search finds T, and the operation completing at T is "the operation
   that cannot be placed";
2. a *conflict core*: a 1-minimal set of ``ok`` operations of that cut whose
   answers cannot all be true.  We shrink by *weakening* operations, never by
   deleting them: a weakened operation may or may not have happened, inside
   its own interval, and its answer is forgotten.  Weakening only adds
   possible orders, so a history that still fails fails for a reason already
   present.  (Deleting a write would instead make its readers fail for a new,
   invented reason; weakening to a plain unknown outcome would let the
   operation float to +infinity, and a few hundred of those make the search
   explode.)  Every core operation is needed: weakening any single one of
   them makes the cut linearizable;
3. the longest partial linearization of that core the search reached and
   the operation that could not follow it, as the human-readable story.

Where each part lives:

* `scenarios.linearizability.history`  -- `Operation`, `Status`, JSON lines.
* `scenarios.linearizability.model`    -- the sequential models (register,
  versioned object).
* `scenarios.linearizability.search`   -- the search over call/return events.
* `scenarios.linearizability.checker`  -- `check`/`check_key` and the diagnosis.
* `scenarios.linearizability.verdict`  -- `KeyResult`, `Verdict`, `Violation`.
* `scenarios.linearizability.generate` -- a correct register's random history.

May import: nothing of the project (pure Python, no I/O): Jepsen, the
scenario checks and the benchmark all use it.
"""

from scenarios.linearizability.checker import check, check_key
from scenarios.linearizability.generate import random_register_history
from scenarios.linearizability.history import (
    Operation,
    Status,
    decode_op,
    dumps_history,
    encode_op,
    freeze,
    loads_history,
)
from scenarios.linearizability.model import Model, RegisterModel, VersionedModel
from scenarios.linearizability.verdict import KeyResult, Verdict, Violation

__all__ = [
    "KeyResult",
    "Model",
    "Operation",
    "RegisterModel",
    "Status",
    "Verdict",
    "VersionedModel",
    "Violation",
    "check",
    "check_key",
    "decode_op",
    "dumps_history",
    "encode_op",
    "freeze",
    "loads_history",
    "random_register_history",
]
