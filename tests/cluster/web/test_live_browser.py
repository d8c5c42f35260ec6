"""The live web view in headless Chromium, on a real 5-manager cluster.

One cluster for the module's tests (they run in order): the page shows five
nodes and one leader; the kill button on the leader makes a new leader and
shows the old one down; partition and heal from the page; no console errors.
A screenshot of each state is kept (`browser.artifacts_dir`).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import artifacts_dir, open_page
from cluster_procs import running_cluster

from cluster.client.wait import wait_until
from cluster.web.server import read_info

pytestmark = pytest.mark.integration

LEADER = '[data-node][data-role="leader"]'


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, list[str], Path]]:
    path = tmp_path_factory.mktemp("web")
    with running_cluster(path, managers=5):
        server = subprocess.Popen(
            [sys.executable, "-m", "cluster", "--dir", str(path), "web"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            line = server.stdout.readline() if server.stdout else ""
            assert line.startswith("web view: http://127.0.0.1:"), line
            url = line.split(": ", 1)[1].strip()
            with open_page() as (page, errors):
                page.goto(url)
                yield page, errors, path
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(10)
            if server.poll() is None:
                server.kill()
                server.wait(5)
    assert read_info(path) is None  # the server removed its web.json on the way out


def _leader(page: Any, timeout_ms: float = 15_000, other_than: str | None = None) -> str:
    page.wait_for_function(
        """(old) => {
            const l = document.querySelectorAll('[data-node][data-role="leader"]');
            return l.length === 1 && l[0].dataset.node !== old;
        }""",
        arg=other_than,
        timeout=timeout_ms,
    )
    return page.get_attribute(LEADER, "data-node")


def test_five_nodes_and_one_leader(live: tuple[Any, list[str], Path]) -> None:
    page, errors, _ = live
    leader = _leader(page)
    assert page.locator("svg [data-node]").count() == 5
    assert int(page.get_attribute(LEADER, "data-term")) >= 1
    for action in ("kill", "restart", "pause", "unpause", "isolate", "transfer", "drain"):
        assert page.locator(f'button[data-action="{action}"][data-target="{leader}"]').count() == 1
    for action in ("heal", "write"):
        assert page.locator(f'button[data-action="{action}"]').count() == 1
    page.screenshot(path=str(artifacts_dir() / "live-five-managers.png"), full_page=True)
    assert errors == []


def test_kill_the_leader_from_the_page(live: tuple[Any, list[str], Path]) -> None:
    page, errors, _ = live
    old = _leader(page)
    page.click(f'button[data-action="kill"][data-target="{old}"]')
    page.wait_for_selector(f'svg [data-node="{old}"][data-role="down"]', timeout=10_000)
    new = _leader(page, other_than=old)
    assert new != old
    assert "python -m cluster kill " + old in page.inner_text("#command")
    page.screenshot(path=str(artifacts_dir() / "live-after-leader-kill.png"), full_page=True)
    page.click(f'button[data-action="restart"][data-target="{old}"]')
    page.wait_for_selector(f'svg [data-node="{old}"][data-role="follower"]', timeout=20_000)
    assert errors == []


def test_partition_and_heal_from_the_page(live: tuple[Any, list[str], Path]) -> None:
    page, errors, _ = live
    leader = _leader(page)
    # Cut the leader off with one follower: the three others are the majority.
    follower = next(
        n.get_attribute("data-node")
        for n in page.query_selector_all('svg [data-node][data-role="follower"]')
    )
    page.check(f'#partition input[value="{leader}"]')
    page.check(f'#partition input[value="{follower}"]')
    page.click('button[data-action="partition"]')
    page.wait_for_selector(".link.cut", timeout=10_000)
    new = _leader(page, timeout_ms=20_000, other_than=leader)
    assert new not in (leader, follower)
    page.wait_for_selector('#quorum[data-reachable="3"]', timeout=10_000)
    page.screenshot(path=str(artifacts_dir() / "live-partition.png"), full_page=True)
    page.click('button[data-action="heal"]')
    page.wait_for_function("() => document.querySelectorAll('.link.cut').length === 0")
    wait_until(
        lambda: page.locator('svg [data-node][data-role="follower"]').count() == 4,
        within=20,
        what="every other manager to follow the leader again",
    )
    assert "python -m cluster heal" in page.inner_text("#command")
    assert errors == []
