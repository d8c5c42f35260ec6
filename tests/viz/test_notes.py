"""`viz.notes`: the study notes' templates, filled with plain data."""

from __future__ import annotations

import fnmatch
import tomllib

import jinja2
import pytest
from repo import ROOT

from scenarios.steps import builtins
from viz.notes import caption, differences, glossary, glossary_terms, render, study_order, topics


def _scenario(**over):
    data = {
        "title": "Kill the leader",
        "name": "leader-kill",
        "passed": True,
        "simulated": True,
        "network": "real processes",
        "seed": 3,
        "managers": 5,
        "quorum": 3,
        "tolerance": 2,
        "key_metric": "new leader after 0.50 s",
        "election_timeout_ms": 500,
        "heartbeat_ms": 50,
        "overrides": {},
        "description": "",
        "answers": [],
        "steps": [
            {
                "number": 1,
                "text": "wait leader",
                "status": "ok",
                "note": "",
                "cli": "",
                "docker": "",
            },
            {
                "number": 2,
                "text": "join role=worker",
                "status": "skipped",
                "note": "not here",
                "cli": "",
                "docker": "",
            },
        ],
        "happened": None,
        "quorum_rows": [],
        "joins": [],
        "rollouts": [],
        "cost_rows": [],
        "real_only": "",
        "topics": [],
        "figures": [],
        "checks": [{"name": "a check", "result": "pass", "detail": "1 | 2"}],
        "metrics": {},
        "glossary_links": [],
        "related": [],
        "misconceptions": [],
        "differs": [],
        "cheat_sheet": False,
    }
    return {**data, **over}


def test_the_note_opens_with_its_title_and_the_exam_card():
    text = render("scenario.md.j2", **_scenario(topics=[("the rule", "the Swarm fact")]))
    assert text.startswith(
        "# Kill the leader\n\n## Exam card\n\n- **5 managers**: a quorum is 3 of 5 (⌊N/2⌋+1), "
        "so 2 failures can be survived (⌊(N-1)/2⌋).\n- the Swarm fact\n- This run: new leader "
        "after 0.50 s; every check passed.\n\n"
    )
    assert (
        "## Why Raft did this\n\nthe rule\n\n## Appendix: the run in detail\n\n### Checks" in text
    )


def test_the_note_says_what_was_done_and_checked():
    text = render("scenario.md.j2", **_scenario())
    assert text.split("\n\n", 2)[2].startswith(
        "- **5 managers**: a quorum is 3 of 5 (⌊N/2⌋+1), so 2 failures can be survived (⌊(N-1)/2⌋)."
        "\n- This run: new leader after 0.50 s; every check passed.\n\n"
        "Scenario `leader-kill` -- passed; 5 managers, simulated (seed 3); "
        "election timeout 500 ms, heartbeat 50 ms.\n\n## What was done\n\n"
    )
    assert (
        "| # | scenario step | swarmraft command | Docker equivalent |\n"
        "| ---: | --- | --- | --- |\n"
        "| 1 | `wait leader` | -- | -- |\n"
        "| 2 | `join role=worker` -- *skipped*: not here | -- | -- |\n\n"
        "## Appendix: the run in detail\n\n### Checks\n"
    ) in text
    assert "| a check | pass | 1 / 2 |" in text  # a pipe would split the table's cell
    assert text.endswith("redraws the figures).\n")


def test_a_failed_real_run_with_per_node_timeouts():
    text = render(
        "scenario.md.j2",
        **_scenario(passed=False, simulated=False, overrides={"manager1": 150, "manager2": 900}),
    )
    assert (
        "-- **FAILED**; 5 managers, real processes; election timeout 500 ms, heartbeat 50 ms; "
        "per-node timeouts: manager1 150 ms, manager2 900 ms.\n" in text
    )


def test_join_story_for_a_worker_and_a_manager_that_never_became_a_voter():
    joins = [
        {"name": "worker1", "role": "worker", "t0": 1.0, "step": 7, "before": ["m1", "m2", "m3"],
         "quorum_before": 2, "after": ["m1", "m2", "m3"], "quorum_after": 2},
        {"name": "manager4", "role": "manager", "t0": 2.5, "step": 3,
         "before": ["m1", "m2", "m3"], "quorum_before": 2, "learner": None, "voter": None},
    ]  # fmt: skip
    text = render("scenario.md.j2", **_scenario(joins=joins))
    assert (
        "## The join, in numbers\n\n- **worker1** joined at 1.00 s (step 7) with the *worker* "
        "token: a Swarm agent that runs tasks, no Raft member. The configuration stayed at 3 "
        "voters, quorum 2 of 3 (at the end: 3 voters, quorum 2).\n\n- **manager4** asked to "
        "join at 2.50 s (step 3) with the *manager* token. Before: 3 voters (m1, m2, m3), "
        "quorum 2 of 3.\n- manager4 did not become a voter during the run.\n\n## Appendix"
    ) in text


def test_a_name_the_caller_forgot_is_an_error_not_a_gap():
    data = _scenario()
    del data["managers"]
    with pytest.raises(jinja2.UndefinedError, match="managers"):
        render("scenario.md.j2", **data)


def test_index_lists_every_note_and_its_replay():
    rows = [
        {"scenario": "a", "passed": False, "duration_s": 2.04, "key_metric": "x", "replay": True,
         "teaches": "the basics", "related": ["b"]},
        {"scenario": "b", "passed": True, "duration_s": 1.0, "key_metric": "y", "replay": False,
         "teaches": "", "related": []},
    ]  # fmt: skip
    text = render("index.md.j2", rows=rows)
    assert text.startswith("# Scenario notes\n\nRead them in this order")
    assert "[glossary](glossary.md)" in text
    assert text.endswith(
        "| # | note | what it teaches | result | duration | key metric | read with | replay |\n"
        "| ---: | --- | --- | --- | ---: | --- | --- | --- |\n"
        "| 1 | [a](a/report.md) | the basics | **FAIL** | 2.0 s | x | [b](b/report.md) | "
        "[replay](a/replay.html) |\n"
        "| 2 | [b](b/report.md) |  | pass | 1.0 s | y |  |  |\n"
    )


def test_the_note_links_its_words_to_the_glossary_and_its_related_notes():
    links = [{"id": "quorum", "term": "Quorum (majority)"}]
    text = render("scenario.md.j2", **_scenario(glossary_links=links, related=["join"]))
    assert (
        "- Words used here ([glossary](../glossary.md)): "
        "[Quorum (majority)](../glossary.md#quorum).\n"
        "- Read with: [join](../join/report.md).\n"
    ) in text


def test_glossary_terms_are_the_entries_a_text_uses_in_glossary_order():
    ids = [e["id"] for e in glossary_terms("A PRE-VOTE was refused; the quorum held.")]
    assert ids == ["quorum", "pre-vote"]
    assert glossary_terms("nothing here") == []


def test_the_glossary_defines_the_jargon_once_with_its_sources():
    entries = glossary()
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))
    for needed in ("term", "quorum", "leader-election", "pre-vote", "check-quorum", "learner",
                   "leader-completeness", "election-restriction", "commit-rule", "log-matching",
                   "autolock", "availability", "frozen", "dek-kek", "join-token",
                   "leadership-transfer", "read-index", "snapshot", "commit-index"):  # fmt: skip
        assert needed in ids
    for e in entries:
        assert e["text"] and e["raft"] and e["words"], e["id"]
        assert bool(e["docker"]) == bool(e["docker_url"]), e["id"]
        assert not e["docker_url"] or e["docker_url"].startswith("https://docs.docker.com/")
    text = render("glossary.md.j2", entries=entries)
    assert text.startswith("# Glossary\n")
    assert '### <a id="election-restriction"></a>Election restriction (§5.4.1)\n' in text
    assert "Raft: §5.4.1.\n\n###" in text


def test_the_study_order_lists_every_builtin_basics_first():
    order = study_order()
    assert set(order) == set(builtins()), "a new built-in needs its place in study.toml"
    names = list(order)
    assert names[0] == "leader-kill"
    assert names.index("quorum-table") < names.index("split-vote") < names.index("join")
    for name, e in order.items():
        assert e["teaches"], name
        assert set(e["related"]) <= set(order) - {name}, name


def test_a_mapping_entry_wins_over_a_dict_method_of_the_same_name():
    assert render("jepsen.md.j2", **_jepsen()).count("3 registers") == 1


def _jepsen():
    metrics = {"keys": 3, "faults_injected": 0, "ops": 9, "ok": 9, "fail": 0, "unknown": 0,
               "refused_409": 0, "states_explored": 20, "check_seconds": 0.5}  # fmt: skip
    return {"passed": True, "checked": True, "linearizable": True, "clients": 2, "managers": 5,
            "quorum": 3, "tolerance": 2, "duration": 2.5, "seed": 1, "metrics": metrics,
            "fault_kinds": [], "faults": [], "keys": [], "violations": [], "checks": [],
            "figures": []}  # fmt: skip


def test_jepsen_note_without_faults_or_figures():
    text = render("jepsen.md.j2", **_jepsen())
    assert "injected 0 faults (none). The history of 9 operations is **linearizable**." in text
    assert "## Faults\n\nNo fault was injected.\n\n## Per key" in text
    assert "![" not in text
    assert text.endswith("`result.json`, `traces/`.\n")


def test_every_template_ships_as_package_data():
    """A non-editable install has only what ``package-data`` lists."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["viz"]
    files = [p.relative_to(ROOT / "viz").as_posix() for p in (ROOT / "viz/templates").iterdir()]
    assert files
    assert [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []


def test_topics_give_a_rule_and_a_fact_each():
    found = topics()
    assert "election" in found and "figure8" in found
    for rule, fact in found.values():
        assert rule and fact and "\n" not in rule + fact  # one paragraph each


def test_each_step_prints_as_its_command_and_its_docker_equivalent():
    steps = [
        {"number": 4, "text": "kill leader", "status": "ok", "note": "", "cli":
         "python -m cluster kill manager3", "docker": "_no Docker verb: a crash_"},
        {"number": 5, "text": "drain manager2 availability=pause", "status": "ok", "note": "",
         "cli": "python -m cluster node update --availability pause manager2",
         "docker": "`docker node update --availability pause manager2`"},
    ]  # fmt: skip
    text = render("scenario.md.j2", **_scenario(steps=steps))
    row = "| 4 | `kill leader` | `python -m cluster kill manager3` | _no Docker verb: a crash_ |"
    assert row in text
    assert (
        "| 5 | `drain manager2 availability=pause` | `python -m cluster node update "
        "--availability pause manager2` | `docker node update --availability pause manager2` |"
    ) in text


def test_every_figure_has_a_caption_under_it():
    figures = [{"file": "timeline.png", "caption": "How to read it."},
               {"file": "log-1.png", "caption": ""}]  # fmt: skip
    text = render("scenario.md.j2", **_scenario(figures=figures))
    assert "![timeline](timeline.png)\n*How to read it.*\n\n![log-1](log-1.png)\n\n" in text


@pytest.mark.parametrize(
    "figure",
    ["timeline.png", "votes.png", "terms.png", "commit.png", "log-1.png", "log-12.png",
     "log-a.png", "log-end.png", "placement.png", "quorum-table.png", "tasks.png",
     "task-moves.png"],
)  # fmt: skip
def test_every_figure_the_notes_draw_is_described(figure):
    assert len(caption(figure)) > 40


def test_an_unknown_figure_has_no_caption_rather_than_a_wrong_one():
    assert caption("sketch-1.png") == ""


def test_misconceptions_are_corrected_with_the_runs_evidence():
    beliefs = [
        {"kind": "majority", "node": "m5", "term": 2, "yes": 4, "voters": 5},
        {"kind": "up_to_date", "candidate": "m3", "voter": "m1", "reason": "log behind",
         "refused": 7},
        {"kind": "secrets", "detail": "secret 's': 0 hits (plaintext or base64) in 12 files"},
    ]  # fmt: skip
    text = render("scenario.md.j2", **_scenario(misconceptions=beliefs, differs=["Docker x."]))
    assert (
        '- **Common misconception**: "all managers must agree before a change". '
        "A majority does: m5 won term 2 with 4 of 5 votes.\n"
    ) in text
    assert "may hold uncommitted entries" in text
    assert "Here 7 vote requests were refused on the log, first m1 to m3: _log behind_." in text
    assert "in every manager's Raft log" in text and "0 hits (plaintext or base64)" in text
    assert "- **Real Docker differs**: Docker x.\n" in text


def test_every_pause_says_which_one():
    """`--availability pause` and a frozen process share a word: a note says which."""
    for name, (rule, fact) in topics().items():
        for text in (rule, fact, differences().get(name, "")):
            if "pause" in text.lower():
                assert "SIGSTOP" in text or "--availability pause" in text, (name, text)


def test_the_loose_wordings_are_gone():
    found = topics()
    assert "no `docker` verb" in differences()["transfer"].lower()
    assert "docker node demote" in found["transfer"][1] and "§3.10" in found["transfer"][1]
    assert (
        "whole* Raft log" in found["secrets"][1]
        and "configs are not encrypted" in (found["secrets"][1])
    )
    assert "keeping every entry" not in found["recovery"][0]
    assert "§4.2.3" not in found["join"][0]
    assert "most up-to-date" not in found["stale"][1]
    assert "§5.4.2" not in found["quorum"][0] and "(N/2)+1" not in " ".join(
        text for pair in found.values() for text in pair
    )


def test_the_quorum_cheat_sheet_marks_this_runs_size():
    text = render("scenario.md.j2", **_scenario(cheat_sheet=True))
    assert (
        "| managers N | majority ⌊N/2⌋+1 | failures tolerated ⌊(N-1)/2⌋ |\n| ---: | ---: | ---: |\n"
        "| 1 | 1 | 0 |\n| 2 | 2 | 0 |\n| 3 | 2 | 1 |\n| 4 | 3 | 1 |\n"
        "| **5 (this run)** | **3** | **2** |\n| 6 | 4 | 2 |\n| 7 | 4 | 3 |\n\n"
    ) in text
    assert "| managers N |" not in render("scenario.md.j2", **_scenario())


def test_the_event_table_checks_and_metrics_follow_as_an_appendix():
    happened = {"headlines": ["m1 elected leader in term 1 at 0.50 s"],
                "events": [(0.5, "**m1 elected leader for term 1** (3 of 3 votes)")]}  # fmt: skip
    text = render(
        "scenario.md.j2", **_scenario(happened=happened, figures=[], metrics={"writes_ok": 3})
    )
    assert (
        "## What happened\n\nm1 elected leader in term 1 at 0.50 s. Every event, with its time, "
        "is in the appendix.\n\n"
    ) in text
    appendix = text.split("## Appendix: the run in detail\n\n", 1)[1]
    assert appendix.startswith("### Events\n\n| time | event |\n| ---: | --- |\n")
    assert (
        appendix.index("### Events")
        < appendix.index("### Checks")
        < appendix.index("### Metrics\n\nwrites_ok = 3")
    )


def test_the_swarms_answers_are_quoted_refusals_and_tables():
    table = [{"name": "manager1", "status": "Ready", "availability": "Active",
              "manager_status": "Leader", "role": "leader"},
             {"name": "manager2", "status": "Down", "availability": "Active",
              "manager_status": "Unreachable", "role": "down"}]  # fmt: skip
    answers = [
        {"number": 2, "command": "python -m cluster node ls", "ok": True, "said": "",
         "table": table, "held": None},
        {"number": 3, "command": "python -m cluster node rm manager2", "ok": False,
         "said": "400 node x must be demoted to worker before removal", "table": None,
         "held": None},
        {"number": 4, "command": "files", "ok": True, "said": "", "table": None,
         "held": [{"node": "worker1", "holds": "api-key", "uses": "api-key"}]},
    ]  # fmt: skip
    text = render("scenario.md.j2", **_scenario(answers=answers))
    part = text.split("## What the swarm answered", 1)[1].split("## ", 1)[0]
    assert "| manager2 | Down | Active | Unreachable | down |" in part
    assert "**refused**: _400 node x must be demoted to worker before removal_" in part
    assert "| worker1 | api-key | api-key |" in part
    assert "## What the swarm answered" not in render("scenario.md.j2", **_scenario())
