"""The documentation lives in the repository, and its links hold.

Someone who clones the project must be able to read its contract, so no
tracked file may send readers to a document outside the repository (the
design notes the project started from lived one directory up).  And every
relative link in ``README.md`` and ``docs/*.md`` must reach a file that
exists -- with its ``#anchor``, a heading of that page.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from repo import ROOT

# Written as patterns so that this file does not match itself.
OUTSIDE_REFERENCES = re.compile(r"\.\./shared\b|\bshared[/]DESIGN\.md")

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def tracked_files() -> list[Path]:
    """The files git tracks; outside a git checkout, every file but caches and outputs."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        ).stdout
        return [ROOT / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        skip = {".git", ".venv", "__pycache__", "out", ".cluster", ".ruff_cache"}
        return [
            p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
        ]


def outside_references(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line: text`` for each line that refers to a document outside the repository."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError):
        return []  # binary files (figures), or deleted but not yet committed
    return [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for n, line in enumerate(text.splitlines(), 1)
        if OUTSIDE_REFERENCES.search(line)
    ]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = _CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in _HEADING.findall(text)}


def broken_links(page: Path) -> list[str]:
    """Relative links of a Markdown page whose file (or heading) does not exist.

    Links inside code blocks and code spans are examples, not links.
    """
    text = _CODE_SPAN.sub("", _FENCE.sub("", page.read_text(encoding="utf-8")))
    bad = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # http:, https:, mailto:
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            bad.append(f"{page.name}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{page.name}: {target} (no such heading)")
    return bad


def test_no_tracked_file_refers_outside_the_repository() -> None:
    found = [hit for path in tracked_files() for hit in outside_references(path)]
    assert found == []


@pytest.mark.parametrize(
    "line",
    ["See ../" + "shared" + "/DESIGN.md.", "(shared" + "/DESIGN.md, CLI)", "(.." + "/shared)"],
)
def test_the_outside_reference_check_catches(line: str, tmp_path: Path) -> None:
    f = tmp_path / "notes.md"
    f.write_text(f"A first line.\n{line}\n")
    assert outside_references(f, tmp_path) == [f"notes.md:2: {line}"]


def test_the_documentation_pages_exist() -> None:
    names = {p.name for p in PAGES}
    for page in ("README.md", "cli.md", "http-api.md", "traces.md", "scenarios.md"):
        assert page in names
    assert (ROOT / "docs" / "architecture.md").exists()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_reaches_a_file(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_catches(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok too](there.md#a-heading) [web](https://example.org/x)\n"
        "[gone](missing.md) [no anchor](there.md#nowhere)\n"
        "```\n[example only](not-checked.md)\n```\n"
    )
    assert broken_links(page) == [
        "page.md: missing.md (no such file)",
        "page.md: there.md#nowhere (no such heading)",
    ]
