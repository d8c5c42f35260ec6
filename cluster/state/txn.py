"""One command's transaction over the store's tables, and the name index.

`Txn` is what a handler (`cluster.state.handlers`) sees of the state: reads,
and writes that are journalled so `Store.apply` can roll a failed command back
whole.  `NameIndex` is derived state the transaction keeps current.  Both live
apart from `cluster.state.store` so that the handlers can name them without
importing the store that imports the handlers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from cluster.state import objects as o
from cluster.state.frozen import freeze

__all__ = ["NameIndex", "TaskIndex", "Txn"]


class Txn:
    """One command's view of the tables, with an undo journal.

    Handlers read through `get`/`rows` and change state only through `put`
    and `delete`, always with a fresh value: what `get` returns is frozen
    (`cluster.state.frozen`), and `put` freezes what it stores, so the
    journal's saved previous value is the true one and every reader may hold
    on to a stored object without copying it.  Handlers must also not let the
    *order* of `rows` decide an outcome: a restored replica holds the same
    rows in another order.
    """

    _MISSING = object()

    def __init__(
        self,
        tables: dict[str, dict[str, Any]],
        index: int,
        names: NameIndex | None = None,
        tasks: TaskIndex | None = None,
    ) -> None:
        self.index = index
        self._tables = tables
        self._names = names if names is not None else NameIndex(tables)
        self._tasks = tasks if tasks is not None else TaskIndex(tables)
        self._ports = self._tasks.ports
        self._undo: list[tuple[str, str, Any]] = []

    def get(self, table: str, key: str) -> Any:
        return self._tables[table].get(key)

    def rows(self, table: str) -> Iterable[Any]:
        return self._tables[table].values()

    def named(self, kind: str, name: str) -> list[Any]:
        """The objects of ``kind`` that answer to ``name`` (`_names`), in ID order."""
        rows = self._tables[kind]
        return [rows[k] for k in self._names.ids(kind, name)]

    def ingress_ports(self) -> dict[tuple[int, str], list[Any]]:
        """(published port, protocol) -> the services publishing it on the ingress, by ID."""
        rows = self._tables[o.SERVICE]
        return {key: [rows[i] for i in sorted(ids)] for key, ids in self._ports.items()}

    def put(self, table: str, key: str, value: Any) -> Any:
        """Store ``value`` (frozen on the way in); returns the stored, frozen value."""
        rows = self._tables[table]
        previous = rows.get(key, self._MISSING)
        self._undo.append((table, key, previous))
        rows[key] = value = freeze(value)
        self._reindex(table, key, previous, value)
        return value

    def delete(self, table: str, key: str) -> None:
        rows = self._tables[table]
        if key in rows:
            previous = rows.pop(key)
            self._undo.append((table, key, previous))
            self._reindex(table, key, previous, self._MISSING)

    def touched(self) -> set[tuple[str, str]]:
        """(kind, ID) of every object this command wrote or removed: the store's change log."""
        return {(table, key) for table, key, _ in self._undo if table in o.KINDS}

    def _reindex(self, table: str, key: str, old: Any, new: Any) -> None:
        self._names.replace(table, key, old, new)
        self._tasks.replace(table, key, old, new)  # and its `PortIndex`

    def rollback(self) -> None:
        """Undo every change of this command, newest first."""
        while self._undo:
            table, key, previous = self._undo.pop()
            current = self._tables[table].get(key, self._MISSING)
            if previous is self._MISSING:
                self._tables[table].pop(key, None)
            else:
                self._tables[table][key] = previous
            self._reindex(table, key, current, previous)


class NameIndex:
    """kind -> name -> IDs of the objects answering to it (`_names`).

    Looking a name up used to scan every object of the kind, and every create
    checks that its name is free: creating N configs cost O(N^2).  The index
    is derived state: kept current by `Txn.put`/`delete`/`rollback` and
    rebuilt from the tables on `Store.restore`, never part of a snapshot.
    """

    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._by_kind: dict[str, dict[str, set[str]]] = {k: {} for k in o.KINDS}
        for kind in o.KINDS:
            for obj_id, obj in tables.get(kind, {}).items():
                self._add(kind, obj_id, obj)

    def ids(self, kind: str, name: str) -> list[str]:
        """IDs of the objects of ``kind`` named ``name``, sorted."""
        found = self._by_kind[kind].get(name)
        return sorted(found) if found else []

    def replace(self, table: str, obj_id: str, old: Any, new: Any) -> None:
        """Row ``obj_id`` of ``table`` changed from ``old`` to ``new`` (`Txn._MISSING`: absent)."""
        if table not in self._by_kind:
            return  # not an object kind (sealed, keyring): no names
        if old is not Txn._MISSING:
            self._remove(table, obj_id, old)
        if new is not Txn._MISSING:
            self._add(table, obj_id, new)

    def _add(self, kind: str, obj_id: str, obj: Any) -> None:
        index = self._by_kind[kind]
        for name in _names(kind, obj):
            index.setdefault(name, set()).add(obj_id)

    def _remove(self, kind: str, obj_id: str, obj: Any) -> None:
        index = self._by_kind[kind]
        for name in _names(kind, obj):
            ids = index.get(name)
            if ids is not None:
                ids.discard(obj_id)
                if not ids:
                    del index[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NameIndex) and self._by_kind == other._by_kind

    __hash__ = None  # type: ignore[assignment]


def _names(kind: str, obj: o.Obj) -> tuple[str, ...]:
    """The names an object answers to in `Store.lookup`."""
    if kind == o.NODE:
        names = (obj.get("Description", {}).get("Hostname"), obj.get("Spec", {}).get("Name"))
        return tuple(n for n in names if n)
    name = obj.get("Spec", {}).get("Name")
    return (name,) if name else ()


class TaskIndex:
    """Task IDs by service, node, desired state and state; live tasks per node.

    The API's filtered listings (``service ps``: the tasks of one service)
    and the control loop's incremental passes ask for a few tasks out of
    tens of thousands; scanning them all made both cost O(all tasks).  Like
    `NameIndex`, derived state: kept current by `Txn` (rollback included),
    rebuilt on `Store.restore`, never part of a snapshot.
    """

    FIELDS = ("ServiceID", "NodeID", "DesiredState", "State")

    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        self._by: dict[str, dict[str, set[str]]] = {f: {} for f in self.FIELDS}
        #: node ID -> how many live tasks (`objects.task_is_live`) it holds: the spread.
        self.live_on_node: Counter[str] = Counter()
        for task_id, task in tables.get(o.TASK, {}).items():
            self._add(task_id, task)
        #: The services' ingress ports ride along, so that the store keeps one object.
        self.ports = PortIndex(tables)

    def ids(self, field: str, value: str) -> set[str]:
        """IDs of the tasks whose ``field`` (one of `FIELDS`) is ``value``; do not change it."""
        return self._by[field].get(value) or set()

    def values(self, field: str) -> Iterable[str]:
        """Every value ``field`` has in some task (each service ID that owns tasks, say)."""
        return self._by[field].keys()

    def replace(self, table: str, task_id: str, old: Any, new: Any) -> None:
        """Like `NameIndex.replace`, for the task table (and the services' ports)."""
        self.ports.replace(table, task_id, old, new)
        if table != o.TASK:
            return
        if old is not Txn._MISSING:
            self._remove(task_id, old)
        if new is not Txn._MISSING:
            self._add(task_id, new)

    @staticmethod
    def _values(task: o.Obj) -> tuple[Any, ...]:
        return (
            task.get("ServiceID"),
            task.get("NodeID"),
            task.get("DesiredState"),
            task.get("Status", {}).get("State"),
        )

    def _add(self, task_id: str, task: o.Obj) -> None:
        for field, value in zip(self.FIELDS, self._values(task), strict=True):
            if value:
                self._by[field].setdefault(value, set()).add(task_id)
        if task.get("NodeID") and o.task_is_live(task):
            self.live_on_node[task["NodeID"]] += 1

    def _remove(self, task_id: str, task: o.Obj) -> None:
        for field, value in zip(self.FIELDS, self._values(task), strict=True):
            ids = self._by[field].get(value) if value else None
            if ids is not None:
                ids.discard(task_id)
                if not ids:
                    del self._by[field][value]
        node_id = task.get("NodeID")
        if node_id and o.task_is_live(task):
            self.live_on_node[node_id] -= 1
            if not self.live_on_node[node_id]:
                del self.live_on_node[node_id]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TaskIndex)
            and self._by == other._by
            and self.live_on_node == other.live_on_node
            and self.ports == other.ports
        )

    __hash__ = None  # type: ignore[assignment]


class PortIndex(dict[tuple[int, str], set[str]]):
    """(published port, protocol) -> IDs of the services publishing it on the ingress.

    Every service create and update checks its ingress ports against every
    other service's; scanning all services there made creating N services
    cost O(N^2).  Derived state like `NameIndex`.
    """

    def __init__(self, tables: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        for service_id, service in tables.get(o.SERVICE, {}).items():
            self._change(service_id, service, +1)

    def replace(self, table: str, service_id: str, old: Any, new: Any) -> None:
        if table != o.SERVICE:
            return
        if old is not Txn._MISSING:
            self._change(service_id, old, -1)
        if new is not Txn._MISSING:
            self._change(service_id, new, +1)

    def _change(self, service_id: str, service: o.Obj, sign: int) -> None:
        for p in service.get("Endpoint", {}).get("Ports", []):
            if p.get("PublishMode") != "ingress" or not p.get("PublishedPort"):
                continue
            key = (p["PublishedPort"], p["Protocol"])
            if sign > 0:
                self.setdefault(key, set()).add(service_id)
            elif key in self:
                self[key].discard(service_id)
                if not self[key]:
                    del self[key]
