"""``bench --against etcd``: the ratio arithmetic (pure) and etcd's absence said in one line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cluster.bench import against
from cluster.bench.against import against_etcd, ratio_rows
from cluster.bench.load import cpu_seconds


def _sample(clients: int, write: str, ours: float, theirs: float) -> dict:
    def result(rate: float) -> dict:
        return {"ops_per_s": rate, "p50_ms": 1000 / rate, "cpu_ms_per_write": {"x": 0.5}}

    return {"clients": clients, "write": write, "ours": result(ours), "theirs": result(theirs)}


def test_ratio_rows_take_medians_of_alternating_runs() -> None:
    samples = [
        _sample(64, "config", 1000, 2000),
        _sample(64, "config", 3000, 2500),  # a noisy run on either side
        _sample(64, "config", 1200, 2400),
        _sample(1, "config", 500, 250),
    ]
    rows = ratio_rows(samples)
    assert [(r["clients"], r["write"]) for r in rows] == [(1, "config"), (64, "config")]
    row = rows[1]
    assert row["ops_per_s"] == 1200 and row["theirs_ops_per_s"] == 2400
    assert row["ratio"] == 0.5  # ours / theirs, of the medians
    assert rows[0]["ratio"] == 2.0
    assert row["cpu_ms_per_write"] == {"x": 0.5}


def test_without_etcd_one_line_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(against, "etcd_binary", lambda: None)
    said: list[str] = []

    async def ours() -> tuple[list[str], dict[str, int]]:
        raise AssertionError("nothing runs without etcd")

    got = asyncio.run(against_etcd(ours, 3, tmp_path, duration=1, warmup=0.1, say=said.append))
    assert got is None
    assert len(said) == 1 and "apt-get install etcd-server" in said[0]


def test_cpu_seconds_of_this_process_and_of_none() -> None:
    import os

    mine = cpu_seconds(os.getpid())
    assert mine is not None and mine > 0
    assert cpu_seconds(2**22 + 12345) is None
