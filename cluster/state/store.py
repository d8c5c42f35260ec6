"""The replicated Swarm state: what every manager's Raft log is applied to.

Theory of operation
-------------------
Raft only promises that every manager sees the same commands in the same
order (§5.3).  They end up with the same state only if applying a command is
a pure function of the state and the command.  So `Store.apply`:

* reads no clock, draws no random number and does no I/O: the proposer chose
  every ID and timestamp and wrote them *into* the command
  (`cluster.state.commands`);
* sets each changed object's ``Version.Index`` to the Raft index of the entry,
  which makes versions identical on every replica and gives the API a free
  compare-and-set: an update naming a stale version is refused;
* never raises for a bad command.  A committed entry cannot be taken back, so
  a refusal (name taken, stale version, garbage bytes) is a *result* every
  replica computes alike, and the state stays exactly as it was.  Each
  command runs in a `Txn` that journals what it overwrites and rolls back
  on any error, so a half-applied command is impossible.

State is a handful of tables of msgpack-friendly values: one per object kind
(`cluster.state.objects.KINDS`), ``sealed`` (each secret's AES-GCM ciphertext, kept
beside the secret object so the object itself can go straight to the API),
and ``keyring`` (the data-encryption key, wrapped; see `cluster.security.crypto`).
`snapshot` writes the tables as canonical msgpack (keys sorted, rows sorted),
so equal states give equal bytes, and `restore` reads them back (§7).

Reads cost nothing but the lookup: stored values are frozen
(`cluster.state.frozen`), so `get`, `list`, `tasks` and the rest hand out the
stored objects themselves, which no reader can change.  Derived state, never
part of a snapshot and rebuilt on `restore`: the name index, the task index
(tasks by service, node, desired state, state) and the change log
(`cluster.state.changes`) the leader's control loop watches.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgpack

from cluster.state import objects as o
from cluster.state.changes import Change, ChangeLog
from cluster.state.errors import (
    Ambiguous,
    InvalidArgument,
    NotFound,
    SnapshotError,
    StoreError,
)
from cluster.state.frozen import freeze
from cluster.state.handlers import HANDLERS
from cluster.state.txn import NameIndex, TaskIndex, Txn

SEALED = "sealed"
KEYRING = "keyring"
TABLES: tuple[str, ...] = (*o.KINDS, SEALED, KEYRING)

SNAPSHOT_FORMAT = "swarmraft-store"
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Result:
    """What applying one log entry produced: a value or an error, never both.

    ``value`` is the created or updated object as stored (frozen), ``{"ID": ...}`` for
    a removal, a list of values for a batch, ``None`` for a no-op.
    """

    index: int
    op: str
    value: Any = None
    error: StoreError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Any:
        """The value, or the error raised: for the proposer waiting on its entry."""
        if self.error is not None:
            raise self.error
        return self.value


Handler = Callable[[Txn, dict[str, Any]], Any]


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError("msgpack extension types are not part of the command format")


def decode_command(command: bytes) -> tuple[str, dict[str, Any]]:
    """Split a command into (op, args); `InvalidArgument` if it is not one."""
    try:
        cmd = msgpack.unpackb(command, raw=False, ext_hook=_no_ext)
    except Exception:
        raise InvalidArgument("malformed command: not a msgpack map") from None
    if not isinstance(cmd, dict) or not isinstance(cmd.get("op"), str):
        raise InvalidArgument("malformed command: missing op")
    args = cmd.get("args", {})
    if not isinstance(args, dict):
        raise InvalidArgument("malformed command: args must be a map")
    return cmd["op"], args


#: msgpack headers `Store.snapshot` writes by hand: the document's map of four
#: fields, and the ``[key, row]`` pair of each row.
_MAP4 = b"\x84"
_PAIR = b"\x92"


def _map_header(n: int) -> bytes:
    return msgpack.Packer().pack_map_header(n)


def _array_header(n: int) -> bytes:
    return msgpack.Packer().pack_array_header(n)


def _canonical(value: Any) -> Any:
    """Sort every map's keys so that equal states pack to equal bytes."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: (isinstance(kv[0], bytes), kv[0]))
        return {k: _canonical(v) for k, v in items}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


class Store:
    """The Swarm state machine: `apply` committed commands, read, snapshot.

    One instance per manager; nothing is shared between instances, so a test
    can run many replicas in one process and compare their snapshots.
    """

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Any]] = {t: {} for t in TABLES}
        self._names = NameIndex(self._tables)
        self._task_index = TaskIndex(self._tables)
        self._changes = ChangeLog()
        self._applied = 0
        # table -> key -> (the row as last snapshotted, its packed [key, row]).
        self._packed: dict[str, dict[str, tuple[Any, bytes]]] = {}

    @property
    def applied_index(self) -> int:
        """The index of the last entry applied (or restored from a snapshot)."""
        return self._applied

    # -- writing -------------------------------------------------------------

    def apply(self, index: int, command: bytes) -> Result:
        """Apply the committed entry at ``index``; refusals come back as results.

        An empty command is the no-op a new leader commits (§8) and changes
        nothing but the applied index.  An index at or below the applied
        index is refused without effect: replaying an entry would bump
        versions twice.
        """
        if not isinstance(index, int) or index <= self._applied:
            err = InvalidArgument(f"entry {index} is not after applied index {self._applied}")
            return Result(index if isinstance(index, int) else -1, "", error=err)
        self._applied = index
        if not command:
            return Result(index, "noop")
        op = ""
        tx = Txn(self._tables, index, self._names, self._task_index)
        try:
            op, args = decode_command(command)
            value = self._dispatch(tx, op, args, nested=False)
        except StoreError as err:
            tx.rollback()
            return Result(index, op, error=err)
        except Exception as exc:
            # A bug or a shape no validator foresaw.  Name only the exception
            # type: its text could quote data from the command.
            tx.rollback()
            return Result(
                index, op, error=InvalidArgument(f"malformed command ({type(exc).__name__})")
            )
        self._changes.record(index, tx.touched())
        return Result(index, op, value=value)

    def _dispatch(self, tx: Txn, op: str, args: dict[str, Any], nested: bool) -> Any:
        if op == "batch":
            if nested:
                raise InvalidArgument("malformed command: batches do not nest")
            commands = args.get("commands")
            if not isinstance(commands, list) or not commands:
                raise InvalidArgument("malformed command: batch needs commands")
            values = []
            for cmd in commands:
                if not isinstance(cmd, dict) or not isinstance(cmd.get("op"), str):
                    raise InvalidArgument("malformed command: missing op")
                sub_args = cmd.get("args", {})
                if not isinstance(sub_args, dict):
                    raise InvalidArgument("malformed command: args must be a map")
                values.append(self._dispatch(tx, cmd["op"], sub_args, nested=True))
            return values
        handler = HANDLERS.get(op)
        if handler is None:
            raise InvalidArgument(f"malformed command: unknown op {op[:40]!r}")
        return handler(tx, args)

    # -- snapshots (§7) ------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as canonical msgpack: equal states, equal bytes.

        The bytes are exactly ``packb(_canonical(doc))`` of the document
        `snapshot_document` builds, but written piece by piece so that a row
        not changed since the last snapshot is not encoded again: stored rows
        are frozen, so a row that is still the *same object* still has the
        same bytes.  Under load the whole-store encoding was the largest cost
        on every manager (a snapshot every ``snapshot_entries`` writes,
        docs/perf.md); now it follows what changed, plus one sort of the keys.
        """
        pack = msgpack.Packer(use_bin_type=True).pack
        out = [_MAP4, pack("AppliedIndex"), pack(self._applied), pack("Format")]
        out += [pack(SNAPSHOT_FORMAT), pack("Tables"), _map_header(len(self._tables))]
        fresh: dict[str, dict[str, tuple[Any, bytes]]] = {}
        for table in sorted(self._tables):
            rows, known = self._tables[table], self._packed.get(table, {})
            kept = fresh[table] = {}
            out += [pack(table), _array_header(len(rows))]
            for key in sorted(rows):
                row, cached = rows[key], known.get(key)
                if cached is None or cached[0] is not row:
                    cached = (row, _PAIR + pack(key) + pack(_canonical(row)))
                kept[key] = cached
                out.append(cached[1])
        out += [pack("Version"), pack(SNAPSHOT_VERSION)]
        self._packed = fresh
        return b"".join(out)

    def snapshot_document(self) -> dict[str, Any]:
        """What `snapshot` encodes, as one value (the reference its bytes are tested against)."""
        return {
            "Format": SNAPSHOT_FORMAT,
            "Version": SNAPSHOT_VERSION,
            "AppliedIndex": self._applied,
            "Tables": {t: [[k, rows[k]] for k in sorted(rows)] for t, rows in self._tables.items()},
        }

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's; `SnapshotError` if it is not one."""
        try:
            doc = msgpack.unpackb(data, raw=False, ext_hook=_no_ext)
        except Exception:
            raise SnapshotError("not a store snapshot: undecodable") from None
        if not isinstance(doc, dict) or doc.get("Format") != SNAPSHOT_FORMAT:
            raise SnapshotError("not a store snapshot")
        if doc.get("Version") != SNAPSHOT_VERSION:
            raise SnapshotError(f"unsupported snapshot version {doc.get('Version')!r}")
        applied, tables = doc.get("AppliedIndex"), doc.get("Tables")
        if not isinstance(applied, int) or not isinstance(tables, dict):
            raise SnapshotError("not a store snapshot: missing fields")
        fresh: dict[str, dict[str, Any]] = {t: {} for t in TABLES}
        for table, rows in tables.items():
            if table not in fresh or not isinstance(rows, list):
                raise SnapshotError(f"unknown table in snapshot: {str(table)[:40]!r}")
            for row in rows:
                if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], str)):
                    raise SnapshotError("malformed row in snapshot")
                fresh[table][row[0]] = freeze(row[1])
        self._tables, self._applied = fresh, applied
        self._packed = {}
        self._names = NameIndex(fresh)
        self._task_index = TaskIndex(fresh)
        self._changes = ChangeLog(start=applied)

    @classmethod
    def from_snapshot(cls, data: bytes) -> Store:
        store = cls()
        store.restore(data)
        return store

    # -- reading (every read returns the stored, frozen objects: no copies) --

    def changes_since(self, index: int) -> set[Change] | None:
        """(kind, ID) of every object changed after entry ``index``; ``None``: unknown.

        The control loop's watch (`cluster.state.changes`): ``None`` means the
        change log no longer reaches back that far (or a snapshot replaced
        the state since), so the reader must look at everything.
        """
        return self._changes.since(index)

    def get(self, kind: str, obj_id: str) -> o.Obj:
        """The object with exactly this ID; `NotFound` otherwise."""
        obj = self._rows(kind).get(obj_id)
        if obj is None:
            raise NotFound(f"{kind} {obj_id} not found")
        return obj

    def list(self, kind: str, where: Callable[[o.Obj], bool] | None = None) -> list[o.Obj]:
        """Objects of one kind sorted by ID, optionally filtered."""
        rows = self._rows(kind)
        return [rows[k] for k in sorted(rows) if where is None or where(rows[k])]

    def many(self, kind: str, ids: Iterable[str]) -> list[o.Obj]:
        """The objects of ``kind`` with these IDs that exist, sorted by ID."""
        rows = self._rows(kind)
        return [rows[k] for k in sorted(set(ids)) if k in rows]

    def count(self, kind: str) -> int:
        return len(self._rows(kind))

    def find_by_name(self, kind: str, name: str) -> o.Obj | None:
        """The object whose name is ``name`` (a node's hostname or Spec.Name)."""
        rows = self._rows(kind)
        found = [rows[k] for k in self._names.ids(kind, name)]
        if len(found) > 1:
            raise Ambiguous(f"{kind} {name} is ambiguous ({len(found)} matches found)")
        return found[0] if found else None

    def lookup(self, kind: str, ref: str) -> o.Obj:
        """Resolve what a user typed, as Docker does: full ID, then name, then ID prefix."""
        rows = self._rows(kind)
        if ref in rows:
            return rows[ref]
        found = self._names.ids(kind, ref) if ref else []
        if len(found) > 1:
            raise Ambiguous(f"{kind} {ref} is ambiguous ({len(found)} matches found)")
        if found:
            return rows[found[0]]
        matches = [k for k in rows if ref and k.startswith(ref)]
        if len(matches) > 1:
            raise Ambiguous(f"{kind} {ref} is ambiguous ({len(matches)} matches found)")
        if not matches:
            raise NotFound(f"{kind} {ref} not found")
        return rows[matches[0]]

    def cluster(self) -> o.Obj | None:
        """The one cluster object, or ``None`` before ``cluster.init``."""
        rows = self._tables[o.CLUSTER]
        return next(iter(rows.values())) if rows else None

    def tasks(
        self,
        service_id: str | None = None,
        node_id: str | None = None,
        desired_state: str | None = None,
        state: str | None = None,
    ) -> list[o.Obj]:
        """Tasks filtered like ``GET /tasks?filters=...`` would, sorted by ID.

        Each filter given picks its tasks from the task index; the smallest
        set is checked against the others, so ``service ps web`` costs the
        size of web's tasks, not of every task in the swarm.
        """
        wanted = [
            ("ServiceID", service_id),
            ("NodeID", node_id),
            ("DesiredState", desired_state),
            ("State", state),
        ]
        sets = [self._task_index.ids(f, v) for f, v in wanted if v is not None]
        if not sets:
            return self.list(o.TASK)
        smallest, *others = sorted(sets, key=len)
        rows = self._tables[o.TASK]
        return [rows[k] for k in sorted(smallest) if all(k in other for other in others)]

    def task_count(self, service_id: str) -> int:
        """How many tasks ``service_id`` owns (live or not), from the index: O(1)."""
        return len(self._task_index.ids("ServiceID", service_id))

    def task_services(self) -> set[str]:
        """IDs of the services that own tasks (removed services' included)."""
        return set(self._task_index.values("ServiceID"))

    def live_tasks_on(self, node_id: str) -> int:
        """How many live tasks (`objects.task_is_live`) run on this node, from the index."""
        return self._task_index.live_on_node[node_id]

    def services_using(self, kind: str, obj_id: str) -> list[o.Obj]:
        """Services whose containers reference this secret or config."""
        ref_id = f"{kind.capitalize()}ID"
        return self.list(
            o.SERVICE,
            lambda s: any(r.get(ref_id) == obj_id for r in o.references(s["Spec"], kind)),
        )

    def sealed_secret(self, secret_id: str) -> dict[str, Any]:
        """A secret's sealed data ``{Alg, KeyID, Nonce, Ciphertext}``, for decrypting."""
        sealed = self._tables[SEALED].get(secret_id)
        if sealed is None:
            raise NotFound(f"secret {secret_id} not found")
        return copy.deepcopy(sealed)

    def data_keys(self) -> list[dict[str, Any]]:
        """Wrapped DEKs (``{KeyID, Wrapped, Index, UpdatedAt}``), the newest last."""
        rows = self._tables[KEYRING].values()
        return [copy.deepcopy(r) for r in sorted(rows, key=lambda r: (r["Index"], r["KeyID"]))]

    def active_data_key(self) -> dict[str, Any] | None:
        """The wrapped DEK new secrets are sealed with: the latest one stored."""
        keys = self.data_keys()
        return keys[-1] if keys else None

    def _rows(self, kind: str) -> dict[str, Any]:
        if kind not in o.KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        return self._tables[kind]

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}s={len(self._tables[k])}" for k in o.KINDS)
        return f"Store(applied_index={self._applied}, {counts})"
