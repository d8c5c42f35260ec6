"""Scenario files: parsing, and validation errors that name the step and the field."""

from __future__ import annotations

import pytest

from scenarios.steps import ScenarioError, builtins, load, parse

GOOD = """
name = "t"
[cluster]
managers = 3
[[step]]
action = "kill"
node = "leader"
as = "old"
[[step]]
action = "restart"
node = "old"
[[expect]]
check = "leader_within"
seconds = 2
after_step = 1
"""


def test_parses_steps_aliases_and_expectations():
    scn = parse(GOOD)
    assert [s.action for s in scn.steps] == ["kill", "restart"]
    assert scn.steps[1].get("node") == "old"
    assert scn.expects[0].check == "leader_within"
    assert scn.cluster.names == ["manager1", "manager2", "manager3"]


@pytest.mark.parametrize("name", list(builtins()))
def test_every_builtin_parses(name):
    assert load(builtins()[name]).name == name


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[[step]]\naction = "kill"\n', ["step 1 (kill)", "'node'"]),
        ('[[step]]\naction = "explode"\n', ["step 1", "'action'", "explode"]),
        ('[[step]]\naction = "wait"\n[[step]]\naction = "write"\ncount = "x"\n', ["step 1"]),
        (
            '[[step]]\naction = "heal"\n[[step]]\naction = "write"\ncount = "x"\n',
            ["step 2", "'count'"],
        ),
        ('[[step]]\naction = "kill"\nnode = "manager9"\n', ["step 1", "'node'", "manager9"]),
        ('[[step]]\naction = "wait"\nfor = "pizza"\n', ["step 1", "'for'", "pizza"]),
        ('[[step]]\naction = "wait"\nfor = "leader_in"\n', ["step 1", "'nodes'"]),
        ('[[step]]\naction = "heal"\ncolour = 1\n', ["step 1", "'colour'"]),
        ('[[step]]\naction = "partition"\ngroups = "a"\n', ["step 1", "'groups'"]),
        (
            '[[step]]\naction = "heal"\n[[expect]]\ncheck = "leader_within"\nseconds = 1\n'
            "after_step = 7\n",
            ["expect 1", "'after_step'"],
        ),
        ('[[step]]\naction = "heal"\n[[expect]]\ncheck = "magic"\n', ["expect 1", "magic"]),
        ("[cluster]\nmanagers = 12\n[[step]]\naction = 'heal'\n", ["[cluster]", "'managers'"]),
        ("[[step]]\naction = 'heal'\n[[step]]\n", ["step 2", "'action'"]),
        ("name = 't'\n", ["no [[step]]"]),
        ("[[step]\n", ["not valid TOML"]),
    ],
)
def test_mistakes_are_one_line_naming_where(text, words):
    if "name" not in text:
        text = 'name = "t"\n' + text
    with pytest.raises(ScenarioError) as err:
        parse(text, source="t.toml")
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_alias_must_not_shadow_a_node():
    with pytest.raises(ScenarioError, match=r"step 1.*'as'"):
        parse('name="t"\n[[step]]\naction="kill"\nnode="leader"\nas="manager2"\n')


def test_cli_reports_a_bad_file_in_one_line(tmp_path, capsys):
    from scenarios.__main__ import main

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n[[step]]\naction = "kill"\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "step 1 (kill)" in err and "'node'" in err


def test_steps_and_expectations_are_typed_values():
    from scenarios.steps.actions import Kill, Partition, Wait
    from scenarios.steps.expects import LeaderWithin

    scn = parse(
        'name = "t"\n'
        '[[step]]\naction = "wait"\nfor = "leader-elected"\n'
        '[[step]]\naction = "Kill"\nnode = "leader"\nas = "old"\n'
        '[[step]]\naction = "partition"\ngroups = [["old"], ["manager2", "manager3"]]\n'
        '[[expect]]\ncheck = "leader-elected-within"\nseconds = 5\nafter_step = 2\n'
    )
    wait, kill, part = scn.steps
    assert isinstance(wait, Wait) and wait.until == "leader" and wait.timeout == 15.0
    assert isinstance(kill, Kill) and (kill.node, kill.alias) == ("leader", "old")
    assert isinstance(part, Partition) and part.groups == [["old"], ["manager2", "manager3"]]
    assert kill.describe() == "kill leader (as old)"
    (e,) = scn.expects
    assert isinstance(e, LeaderWithin) and (e.seconds, e.after_step) == (5, 2)
    assert e.label() == "leader_within 5 s after step 2"


def test_a_step_is_frozen():
    import dataclasses

    step = parse('name = "t"\n[[step]]\naction = "kill"\nnode = "manager1"\n').steps[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.node = "manager2"
