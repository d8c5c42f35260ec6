"""Reading a TOML table into a frozen dataclass, with one-line errors.

Every step and expectation is a dataclass whose fields *are* its schema: the
annotation says the type (``str``, ``int``, ``float``, ``list[str]``,
``list[int]``, ``list[list[str]]``, ``bool``, or any of them ``| None``), a
field without a default is required, and ``toml_name`` gives the key as the
file spells it when that is a Python keyword (``as``, ``for``).  So adding a
field is writing it down once; the checks below never drift from the class.

`Record.from_toml` does the generic part (missing, unknown, mistyped fields)
and then calls the class's own `Record.validate` for what only it knows
(a count of at least 1, a node name that exists).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

__all__ = [
    "WORDS",
    "ParseContext",
    "Record",
    "ScenarioError",
    "canonical",
    "fits",
    "toml_name",
    "unknown",
]


class ScenarioError(Exception):
    """A mistake in a scenario file: one line, naming where it is."""


def canonical(word: str, aliases: Mapping[str, str]) -> str:
    """``Transfer-Leadership`` -> ``transfer_leadership``, then through ``aliases``."""
    w = word.strip().lower().replace("-", "_").replace(" ", "_")
    return aliases.get(w, w)


def unknown(what: str, word: str, known: list[str]) -> str:
    """``unknown action 'kil' (did you mean 'kill'?; known: ...)``."""
    close = difflib.get_close_matches(word.replace("-", "_"), known, n=1)
    hint = f"did you mean {close[0]!r}?; " if close else ""
    return f"unknown {what} {word!r} ({hint}known: {', '.join(known)})"


def toml_name(name: str) -> Any:
    """Field metadata: the key as the file writes it (``as`` for ``alias``)."""
    return field(default=None, metadata={"toml": name})


WORDS: dict[Any, str] = {
    str: "a non-empty string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    "list[str]": "a list of names",
    "list[int]": "a list of integers",
    "list[list[str]]": 'a list of groups, e.g. [["manager1"], ["manager2", "manager3"]]',
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def fits(value: Any, kind: Any) -> bool:
    """Does a TOML value fit a field's type (``kind``: a type or a list spelling)?"""
    if kind is str:
        return isinstance(value, str) and value != ""
    if kind is int:
        return _is_int(value)
    if kind is float:  # an integer is a number too (5 seconds)
        return _is_int(value) or isinstance(value, float)
    if kind is bool:
        return isinstance(value, bool)
    if not isinstance(value, list):
        return False
    if kind == "list[str]":
        return all(isinstance(x, str) and x for x in value)
    if kind == "list[int]":
        return all(_is_int(x) for x in value)
    if kind == "list[list[str]]":
        return len(value) >= 1 and all(
            isinstance(g, list) and g and all(isinstance(x, str) and x for x in g) for g in value
        )
    raise AssertionError(kind)


def _kind(hint: Any) -> Any:
    """``str | None`` -> str; ``list[str]`` -> "list[str]" (the keys of `_WORDS`)."""
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is list:
        return str(hint).replace("typing.", "")
    return hint


@dataclass(slots=True)
class ParseContext:
    """What validation of one step or expectation may need to know of the file."""

    where: str  # "step 3 (kill)": the prefix of every error
    #: Node names known so far (a join or a promote of a new manager adds one).
    names: list[str]
    #: ``as`` names given by earlier steps.
    aliases: set[str]
    #: How many steps the scenario has (expectations refer to them by number).
    steps: int = 0

    def fail(self, message: str) -> typing.NoReturn:
        raise ScenarioError(f"{self.where}: {message}")

    def node_ref(self, key: str, ref: str) -> None:
        """``ref`` must name a node: ``leader``, a node of the cluster, or an alias."""
        if ref == "leader" or ref in self.names or ref in self.aliases:
            return
        known = ", ".join([*self.names, "leader", *sorted(self.aliases)])
        self.fail(f"field {key!r}: unknown node {ref!r} (known: {known})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """A step or an expectation: its number in the file, and its typed fields."""

    number: int  # from 1, in file order
    #: The fields as the file wrote them (key -> value, file order): what
    #: `describe` shows and `get` answers, so a reader sees their own words.
    written: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    #: Field names that are bookkeeping, not read from the file.
    _OWN: ClassVar[frozenset[str]] = frozenset({"number", "written"})

    @classmethod
    def schema(cls) -> dict[str, tuple[str, Any, bool]]:
        """TOML key -> (attribute, kind, required), in class order."""
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            if f.name in cls._OWN:
                continue
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            out[f.metadata.get("toml", f.name)] = (f.name, _kind(hints[f.name]), required)
        return out

    @classmethod
    def from_toml(cls, number: int, raw: Mapping[str, Any], ctx: ParseContext) -> Self:
        """Build from the table's fields (without ``action``/``check``), or `ScenarioError`."""
        schema = cls.schema()
        for key, (_attr, _kind, required) in schema.items():
            if required and key not in raw:
                ctx.fail(f"missing field {key!r}")
        for key, value in raw.items():
            if key not in schema:
                names = ", ".join(sorted(schema)) or "none"
                ctx.fail(f"unknown field {key!r} (allowed: {names})")
            kind = schema[key][1]
            if not fits(value, kind):
                ctx.fail(f"field {key!r} must be {WORDS[kind]}")
        values = {schema[k][0]: v for k, v in raw.items()}
        record = cls(number=number, written=dict(raw), **values)
        return record.validate(ctx)

    def validate(self, ctx: ParseContext) -> Self:
        """Checks only this kind knows; may return a normalised copy (by default: itself)."""
        return self

    def get(self, key: str, default: Any = None) -> Any:
        """A field by its TOML key, as written (``default`` when the file left it out)."""
        return self.written.get(key, default)

    @property
    def args(self) -> dict[str, Any]:
        """Every field the file gave, as written."""
        return dict(self.written)
