"""Frozen maps and lists: what the store hands its readers instead of copies.

Why
---
Every read of the store used to return a deep copy, so that no caller could
change the replicated state behind Raft's back (a manager whose state
drifted from the others' would answer differently, and its next snapshot
would differ).  With thousands of tasks, those copies were most of the
leader's work: its control loop copied the whole world on every pass.

Instead, every value the store keeps is *frozen* when it is written
(`Txn.put` and `Store.restore` call `freeze`): a `FrozenDict` or
`FrozenList` that refuses every change with a `TypeError`.  Readers get the
stored object itself, for free, and a reader that tries to edit it fails
loudly at the line that tried, instead of silently corrupting one replica.
A handler that wants to change an object starts from `thaw` (an ordinary,
editable deep copy; ``copy.deepcopy`` does the same) and puts back a new value.

They are subclasses of `dict` and `list`, so everything that reads dicts and
lists (msgpack, json, ``==`` against plain values, ``{**obj}``) works
unchanged; only the mutating methods are closed.
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["FrozenDict", "FrozenList", "freeze", "thaw"]


def _refuse(self: object, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(
        f"{type(self).__name__} is read-only: stored objects are never changed in place "
        "(start from thaw(obj) or copy.deepcopy(obj) and write the new value back)"
    )


class FrozenDict(dict[str, Any]):
    """A map that cannot change after it was built (see the module doc)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return thaw(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


class FrozenList(list[Any]):
    """A list that cannot change after it was built (see the module doc)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return thaw(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __repr__(self) -> str:
        return f"FrozenList({list.__repr__(self)})"


def freeze(value: Any) -> Any:
    """``value`` with every map and list in it frozen (already-frozen parts are reused)."""
    if type(value) is FrozenDict or type(value) is FrozenList:
        return value
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """An ordinary, editable deep copy of ``value`` (plain dicts and lists)."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value
