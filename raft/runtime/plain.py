"""Settings and other plain records to and from JSON: one mechanism for all.

Every process reads its settings from a ``config.json`` the supervisor wrote;
the fault rules, the cluster's description and the settings of the manager,
the worker and the node are all frozen dataclasses.  Instead of a hand-written
``from_dict`` per class, `from_plain` builds any of them from decoded JSON
with ``msgspec.convert``: nested dataclasses, tuples, ``Path`` and optional
fields follow from the type hints, ``__post_init__`` checks still run, and a
wrong type is one precise line (``manager config: Expected `int`, got `str`
- at `$.api_port```).  Unknown keys are an error, or, for classes that keep
what a newer supervisor may have added, gathered into one field.  `to_plain`
is the way back (paths become strings).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

__all__ = ["from_plain", "to_plain"]

T = TypeVar("T")


def from_plain(cls: type[T], raw: Any, what: str, *, unknown_into: str | None = None) -> T:
    """``cls`` (a dataclass) from decoded JSON; ValueError naming ``what`` if it does not fit.

    Keys ``cls`` does not have are refused, unless ``unknown_into`` names the
    field (a dict) that keeps them.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f"{what}: expected a JSON object, got {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    data = dict(raw)
    unknown = sorted(k for k in data if k not in names)
    if unknown:
        if unknown_into is None:
            raise ValueError(f"{what}: unknown keys {unknown}")
        data[unknown_into] = {k: data.pop(k) for k in unknown}
    for where in _unknown_keys(cls, data, "$", skip=unknown_into):
        raise ValueError(f"{what}: unknown key at {where}")
    try:
        return msgspec.convert(data, type=cls, dec_hook=_decode)
    except msgspec.ValidationError as e:
        raise ValueError(f"{what}: {e}") from None


def _unknown_keys(kind: Any, value: Any, at: str, skip: str | None = None) -> list[str]:
    """Where ``value`` has keys that the dataclasses in ``kind`` do not (msgspec
    ignores them): a typo in a nested rule must not pass silently."""
    if dataclasses.is_dataclass(kind) and isinstance(value, Mapping):
        hints = typing.get_type_hints(kind)
        found = [f"{at}.{k}" for k in value if k not in hints]
        for k, v in value.items():
            if k in hints and k != skip:
                found += _unknown_keys(hints[k], v, f"{at}.{k}")
        return found
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (dict, Mapping) and isinstance(value, Mapping) and len(args) == 2:
        return [w for k, v in value.items() for w in _unknown_keys(args[1], v, f"{at}[{k!r}]")]
    if origin in (list, tuple) and isinstance(value, list | tuple) and args:
        item = args[0]
        return [w for i, v in enumerate(value) for w in _unknown_keys(item, v, f"{at}[{i}]")]
    if args and origin in (typing.Union, types.UnionType):
        return min((_unknown_keys(a, value, at) for a in args), key=len)
    return []


def to_plain(obj: Any) -> Any:
    """Builtins that ``json.dumps`` writes: dataclasses as objects, paths as strings."""
    return msgspec.to_builtins(obj, enc_hook=_encode)


def _decode(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot read a {kind.__name__} from {type(value).__name__}")


def _encode(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise NotImplementedError(f"cannot write a {type(value).__name__}")
