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


def test_attempts_tries_at_once_then_until_the_deadline() -> None:
    start = time.monotonic()
    tries = list(attempts(within=0.25, every=0.05))
    elapsed = time.monotonic() - start
    assert tries[0] == 0 and tries == list(range(len(tries)))
    assert 3 <= len(tries) <= 7
    assert elapsed >= 0.25  # the last try was made at the deadline, not before


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


def test_async_twins() -> None:
    async def main() -> None:
        tries = [n async for n in async_attempts(within=0.1, every=0.02)]
        assert tries[0] == 0 and len(tries) >= 3
        counter = itertools.count()

        async def probe() -> int:
            return next(counter) >= 2

        assert await async_wait_until(probe, within=5, what="x", every=0.01) is True
        with pytest.raises(WaitTimeout):
            await async_wait_until(lambda: asyncio.sleep(0, result=0), 0.05, "zero", 0.01)

    asyncio.run(main())
