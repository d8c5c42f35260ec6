"""A scenario's replay page in headless Chromium: at its end it shows the leader
that the run's study note names, and scrubbing back shows the old one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser import artifacts_dir, open_page

from scenarios.__main__ import main as scenarios_main


@pytest.fixture(scope="module")
def leader_kill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replay")
    argv = ["run", "leader-kill", "--simulated", "--seed", "3", "--out", str(out)]
    assert scenarios_main(argv) == 0
    return out / "leader-kill"


def test_the_replay_ends_with_the_leader_the_note_names(leader_kill: Path) -> None:
    note = (leader_kill / "report.md").read_text()
    named = re.search(r"(manager\d+) elected leader in term (\d+)", note)
    assert named is not None, "the note names no new leader"
    page_path = leader_kill / "replay.html"  # the run's own, as the runner wrote it
    with open_page() as (page, errors):
        page.goto(page_path.as_uri())
        slider = page.locator('input[data-control="time"]')
        end = float(slider.get_attribute("max"))
        slider.fill(str(end))
        slider.dispatch_event("input")
        leader = page.locator('svg [data-node][data-role="leader"]')
        assert leader.count() == 1
        assert leader.get_attribute("data-node") == named.group(1)
        assert leader.get_attribute("data-term") == named.group(2)
        page.screenshot(path=str(artifacts_dir() / "replay-leader-kill-end.png"), full_page=True)
        # Back at the start another manager led, in an earlier term.
        slider.fill("0.5")
        slider.dispatch_event("input")
        first = page.locator('svg [data-node][data-role="leader"]')
        assert first.count() == 1 and first.get_attribute("data-node") != named.group(1)
        assert int(first.get_attribute("data-term")) < int(named.group(2))
        # Each step is a caption with the command behind it, at the moment it ran.
        kill_at = _caption_time(page_path, "kill leader")
        slider.fill(f"{kill_at + 0.001:.3f}")
        slider.dispatch_event("input")
        caption = page.inner_text("#caption")
        assert "kill leader" in caption and "python -m cluster kill manager" in caption
        assert errors == []


def _caption_time(page: Path, text: str) -> float:
    blob = re.search(
        r'<script type="application/json" id="data">(.*?)</script>', page.read_text(), re.S
    )
    assert blob is not None
    steps = json.loads(blob.group(1))["steps"]
    return next(s["t"] for s in steps if text in s["text"])
