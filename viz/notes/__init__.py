"""Study notes from templates: the prose lives in ``viz/templates/*.md.j2``.

The caller computes every number and decides every fact (what happened,
which checks passed); a template only says it.  So a note's wording can be
read and edited in one place, as Markdown, and the code that runs a
scenario holds no paragraphs.

Templates are rendered with jinja2's `StrictUndefined`: a name the caller
forgot is an error, never an empty gap in a note.  Blocks trim their own
line (``trim_blocks``, ``lstrip_blocks``), so ``{% if %}`` lines leave no
blank lines behind.  Filters the templates share:

* ``fmt(spec)``  -- Python's format spec: ``{{ t | fmt('7.2f') }}``;
* ``cell``       -- text safe inside a Markdown table cell (``|`` escaped as ``/``);
* ``plural(word)`` -- ``1 write``, ``2 writes``;
* ``names``      -- ``a, b, c``;
* ``caption``    -- the line under a figure (`caption`).

`topics` reads ``viz/templates/topics.toml``: per topic of a scenario, the
Raft rule and the Swarm fact a note explains, one paragraph each; `caption`
reads ``viz/templates/captions.toml``: the line under each figure saying how
to read it; `glossary` reads ``viz/templates/glossary.toml``: the jargon,
defined once, that every note links to (`glossary_terms`: which entries a
note's text uses); `study_order` reads ``viz/templates/study.toml``: the
order of the index, what each note teaches and the notes related to it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

__all__ = [
    "caption",
    "differences",
    "glossary",
    "glossary_terms",
    "render",
    "study_order",
    "topics",
]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _names(items: Iterable[Any]) -> str:
    return ", ".join(str(i) for i in items)


class _NotesEnvironment(Environment):
    """``data.keys`` in a template is the mapping's entry ``"keys"``, not the
    dict method of that name (jinja2 prefers attributes): a note's data is
    plain dicts, and a number must never print as ``<built-in method ...>``."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@cache
def _environment() -> Environment:
    env = _NotesEnvironment(
        loader=PackageLoader("viz", "templates"),
        undefined=StrictUndefined,
        autoescape=False,  # Markdown, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = lambda value, spec: format(value, spec)
    env.filters["cell"] = lambda text: str(text).replace("|", "/")
    env.filters["plural"] = _plural
    env.filters["names"] = _names
    env.filters["caption"] = caption
    return env


def render(template: str, **data: Any) -> str:
    """The note ``template`` (a file name under ``viz/templates``) filled with ``data``."""
    return _environment().get_template(template).render(**data)


@cache
def topics() -> dict[str, tuple[str, str]]:
    """topic -> (the Raft rule that made it happen, the Swarm / DCA fact)."""
    text = resources.files("viz").joinpath("templates", "topics.toml").read_text("utf-8")
    return {name: (t["rule"], t["fact"]) for name, t in tomllib.loads(text).items()}


@cache
def _captions() -> dict[str, str]:
    text = resources.files("viz").joinpath("templates", "captions.toml").read_text("utf-8")
    return dict(tomllib.loads(text))


def caption(figure: str) -> str:
    """How to read ``figure`` (a file name such as ``log-2.png``), one line; the
    log matrices (``log-2``, ``log-a``) share the ``log`` line.  Empty for a figure nobody
    described yet (a test keeps every figure the notes draw described)."""
    stem = figure.rsplit(".", 1)[0]
    found = _captions()
    if stem not in found and stem.startswith("log-"):
        stem = "log"  # log-1, log-2, ... and figure 8's log-a ... log-end
    return found.get(stem, "")


@cache
def glossary() -> list[dict[str, str]]:
    """The glossary's entries in study order: ``id`` (the anchor notes link to),
    ``term``, ``text``, ``raft`` and ``docker``/``docker_url`` (empty when none),
    ``words`` (what in a note's text makes it link the entry)."""
    text = resources.files("viz").joinpath("templates", "glossary.toml").read_text("utf-8")
    return [
        {"id": key, "raft": "", "docker": "", "docker_url": "", "words": [], **entry}
        for key, entry in tomllib.loads(text).items()
    ]


def glossary_terms(text: str) -> list[dict[str, str]]:
    """The glossary entries whose words occur in ``text`` (any case), in the
    glossary's order: what a note links to instead of defining it again."""
    low = text.lower()
    return [e for e in glossary() if any(w.lower() in low for w in e["words"])]


@cache
def study_order() -> dict[str, dict[str, Any]]:
    """scenario name -> ``teaches`` (one line) and ``related`` (scenario names),
    in the order a student should read the notes: basics first."""
    text = resources.files("viz").joinpath("templates", "study.toml").read_text("utf-8")
    return {
        name: {"teaches": e["teaches"], "related": list(e.get("related", []))}
        for name, e in tomllib.loads(text).items()
    }


@cache
def differences() -> dict[str, str]:
    """topic -> where real Docker differs from what such a run shows (topics
    without a difference are absent)."""
    text = resources.files("viz").joinpath("templates", "topics.toml").read_text("utf-8")
    return {name: t["differs"] for name, t in tomllib.loads(text).items() if "differs" in t}
