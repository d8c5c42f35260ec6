"""What a run leaves for a student besides each note: ``OUT/glossary.md`` and
``OUT/index.md`` in study order, and notes whose steps read as commands."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
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


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("notes")
    assert main(["run", "leader-kill", "--simulated", "--out", str(out)]) == 0, failed_checks(
        out, "leader-kill"
    )
    return out


def test_a_run_writes_the_glossary_its_note_links_to(out: Path):
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


def test_one_measure_of_time_to_new_leader_everywhere_in_the_note(out: Path):
    """Index, check, headline (also the timeline's title) and exam card print
    one number; a wait step no longer prints how long it polled."""
    result = json.loads((out / "leader-kill/result.json").read_text())
    dt = f"{result['metrics']['time_to_leader_s']:.2f}"
    note = (out / "leader-kill/report.md").read_text()
    assert f"- This run: new leader after {dt} s;" in note
    assert re.search(
        rf"^manager\d elected leader in term \d+ {dt} s after step 4 \(kill ", note, re.M
    )
    check = next(c for c in result["checks"] if c["name"].startswith("leader_within"))
    assert f" {dt} s after step 4 " in check["detail"]
    said = set(re.findall(r"(\d+\.\d\d) s after step", note))
    assert said == {dt}
    assert "-- leader after" not in note and "leader: manager" in note  # the wait rows
    assert (
        write_index(out, [_outcome("leader-kill", time_to_leader_s=float(dt))])
        .read_text()
        .count(f"new leader after {dt} s")
        == 1
    )


def test_a_run_without_a_second_election_draws_only_its_timeline(tmp_path: Path):
    """Votes, terms, commit and log figures of a run whose only election is the
    first would repeat the start-up (drain, secrets-at-rest, autolock)."""
    out = tmp_path / "out"
    assert main(["run", "drain", "--simulated", "--out", str(out)]) == 0, failed_checks(
        out, "drain"
    )
    assert sorted(p.name for p in (out / "drain").glob("*.png")) == ["timeline.png"]


def test_a_run_with_a_new_leader_draws_the_whole_story(out: Path):
    names = {p.name for p in (out / "leader-kill").glob("*.png")}
    assert {"timeline.png", "votes.png", "terms.png", "commit.png", "log-1.png"} <= names
