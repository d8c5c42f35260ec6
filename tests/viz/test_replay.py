"""`viz.replay` and `viz.web`: the replay page's data and the page itself (no browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from viz_sim_trace import leader_failover_trace

from viz.__main__ import main as viz_main
from viz.model import read_model
from viz.replay import Caption, replay_data, write_replay
from viz.web import page_html


def _embedded(html: str) -> dict:
    blob = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert blob is not None
    return json.loads(blob.group(1))


def test_replay_data_follows_the_trace(tmp_path: Path) -> None:
    model = read_model(leader_failover_trace(tmp_path / "t"))
    data = replay_data(model, [Caption(0.5, "kill the leader", "python -m cluster kill leader")])
    assert data["nodes"] == list(model.nodes) and len(data["nodes"]) == 5
    assert data["end"] == round(model.end, 4)
    # Every leader interval of the model is in the data, with its term.
    leaders = [iv for n in data["nodes"] for iv in data["roles"][n] if iv["role"] == "leader"]
    assert len(leaders) == len(model.leaders()) >= 2
    # Votes carry who asked, who answered and why a refusal was made.
    assert len(data["votes"]) == len(model.votes) > 0
    refused = [v for v in data["votes"] if not v["granted"]]
    assert all(v["reason"] for v in refused)
    # The partition is there with its groups, and the captions in time order.
    assert any(len(p["groups"]) >= 2 for p in data["partitions"])
    assert data["steps"] == [
        {"t": 0.5, "text": "kill the leader", "cli": "python -m cluster kill leader", "docker": ""}
    ]
    assert [e["t"] for e in data["events"]] == sorted(e["t"] for e in data["events"])


def test_replay_page_is_self_contained(tmp_path: Path) -> None:
    out = write_replay(leader_failover_trace(tmp_path / "t"), tmp_path / "replay.html", "failover")
    html = out.read_text()
    assert 'data-control="time"' in html
    assert "<title>failover</title>" in html
    # Nothing is fetched: no external script, stylesheet or image.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)
    assert _embedded(html)["mode"] == "replay"


def test_page_data_cannot_close_its_script_element() -> None:
    html = page_html("replay", "t", {"nodes": [], "note": "</script><script>alert(1)"})
    assert _embedded(html)["note"] == "</script><script>alert(1)"
    assert html.count("</script>") == 2  # the data's and the code's own ends


def test_titles_are_escaped() -> None:
    assert "<title>a &lt;b&gt;</title>" in page_html("live", "a <b>", {})


def test_replay_command_writes_the_page_or_says_why_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    traces = leader_failover_trace(tmp_path / "t")
    assert viz_main(["replay", str(traces)]) == 0
    assert (traces / "replay.html").exists()
    assert capsys.readouterr().out.strip() == str(traces / "replay.html")
    assert viz_main(["replay", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("viz: ") and err.count("\n") == 1


def test_a_simulated_run_draws_its_appends_link_by_link(tmp_path: Path) -> None:
    traces = leader_failover_trace(tmp_path / "t")
    data = _embedded(write_replay(traces, tmp_path / "r.html").read_text())
    kinds = {link[3] for link in data["links"]}
    assert {"heartbeat", "append", "append_reply"} <= kinds
    for t, src, dst, _kind, count, window in data["links"]:
        assert src != dst and count >= 1 and window > 0 and t >= 0
