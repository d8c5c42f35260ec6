"""`cluster.client.wait`: the one way tools wait for a condition with a deadline."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from cluster.client.wait import (
    WaitTimeout,
    async_attempts,
    async_wait_until,
    attempts,
    wait_until,
)


class _Clock:
    """A fake clock: `sleep` moves it, so the tests never race the wall clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_attempts_tries_at_once_then_every_period_until_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    monkeypatch.setattr(time, "monotonic", clock.monotonic)
    monkeypatch.setattr(time, "sleep", clock.sleep)
    tries = list(attempts(within=0.25, every=0.1))
    assert tries == [0, 1, 2, 3]  # at 0, 0.1, 0.2 and the last one at the deadline
    assert clock.slept == [0.1, 0.1, 0.05]  # never a sleep past the deadline
    assert clock.now == pytest.approx(100.25)


def test_attempts_with_no_time_still_tries_once() -> None:
    assert list(attempts(within=0)) == [0]


def test_break_skips_the_else_and_time_out_runs_it() -> None:
    for n in attempts(within=5, every=0.01):
        if n == 2:
            break
    else:
        pytest.fail("the loop should have succeeded on its third try")
    for _ in attempts(within=0.05, every=0.01):
        pass
    else:
        timed_out = True
    assert timed_out


def test_wait_until_returns_the_probes_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "ready", within=5, what="x", every=0.01) == (
        "ready"
    )


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeout, match="waiting for a leader"):
        wait_until(lambda: None, within=0.05, what="a leader", every=0.01)


def test_async_twins(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float, result: object = None) -> object:
        clock.sleep(seconds)
        return await real_sleep(0, result)

    monkeypatch.setattr(time, "monotonic", clock.monotonic)
    monkeypatch.setattr(asyncio, "sleep", fake_sleep)

    async def main() -> None:
        tries = [n async for n in async_attempts(within=0.1, every=0.04)]
        assert tries == [0, 1, 2, 3] and clock.slept == [0.04, 0.04, 0.02]
        counter = itertools.count()

        async def probe() -> bool:
            return next(counter) >= 2

        assert await async_wait_until(probe, within=5, what="x", every=0.01) is True

        async def never() -> int:
            return 0

        with pytest.raises(WaitTimeout, match="waiting for zero"):
            await async_wait_until(never, 0.05, "zero", 0.01)

    asyncio.run(main())
