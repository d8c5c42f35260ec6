"""What a run leaves for a student besides each note: ``OUT/glossary.md`` and
``OUT/index.md`` in study order, and notes whose steps read as commands."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from scenario_runs import failed_checks

from scenarios.__main__ import main
from scenarios.report import write_index


def _outcome(name: str, **metrics: float) -> SimpleNamespace:
    return SimpleNamespace(scenario=name, passed=True, duration_s=1.0, metrics=metrics)


def test_index_lists_the_notes_in_study_order_then_the_unknown_ones(tmp_path: Path):
    ran = [_outcome("mine"), _outcome("join"), _outcome("quorum-table"), _outcome("leader-kill")]
    text = write_index(tmp_path, ran).read_text()
    rows = re.findall(r"^\| (\d+) \| \[([\w-]+)\]", text, re.M)
    assert rows == [("1", "leader-kill"), ("2", "quorum-table"), ("3", "join"), ("4", "mine")]
    # Each built-in says what it teaches; "read with" names only notes of this run.
    join = next(line for line in text.splitlines() if line.startswith("| 3 |"))
    assert "learner" in join
    assert "[quorum-table](quorum-table/report.md)" in join and "split-vote" not in join


def test_a_run_writes_the_glossary_its_note_links_to(tmp_path: Path):
    out = tmp_path / "out"
    assert main(["run", "leader-kill", "--simulated", "--out", str(out)]) == 0, failed_checks(
        out, "leader-kill"
    )
    glossary = (out / "glossary.md").read_text()
    note = (out / "leader-kill/report.md").read_text()
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>', glossary))
    linked = set(re.findall(r"\]\(\.\./glossary\.md#([\w-]+)\)", note))
    assert {"quorum", "pre-vote", "leader-election"} <= linked <= anchors
    # The steps read as the commands a reader would type, and in Docker.
    kill = next(line for line in note.splitlines() if line.startswith("| 4 | `kill leader"))
    assert "`python -m cluster kill manager" in kill and "no Docker verb" in kill
    assert "`docker node ls` (MANAGER STATUS)" in note
    # Every figure has its caption on the next line.
    lines = note.splitlines()
    figures = [i for i, line in enumerate(lines) if line.startswith("![")]
    assert figures and all(lines[i + 1].startswith("*") for i in figures)
