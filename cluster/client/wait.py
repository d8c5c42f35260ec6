"""One way to wait for a condition with a deadline.

Tools wait all the time -- for a leader, for a restarted manager to listen,
for a learner to be promoted -- and a hand-written ``while time.monotonic() <
deadline`` loop in each place is easy to get subtly wrong (no sleep, a sleep
past the deadline, a last try never made).  Two shapes cover every case:

* `attempts` yields once immediately and then every ``every`` seconds until
  ``within`` seconds have passed; the loop's body decides what success is and
  ``break``s.  A ``for ... else`` clause runs when time ran out:

      for _ in attempts(within=3.0):
          if ready():
              break
      else:
          raise ClusterError("not ready after 3 s")

* `wait_until` calls a probe until it returns something truthy and returns
  that value, or raises `WaitTimeout` naming what it waited for.

`async_attempts` / `async_wait_until` are the same for coroutines.  Only the
tools use these: the Raft core counts ticks and never waits on a clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

__all__ = ["WaitTimeout", "async_attempts", "async_wait_until", "attempts", "wait_until"]

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not hold within the time allowed."""


def attempts(within: float, every: float = 0.1) -> Iterator[int]:
    """Yield 0, 1, 2, ... : now, then every ``every`` s, while ``within`` s last.

    The last attempt is made at (or just before) the deadline, never after a
    sleep that overshoots it.
    """
    end = time.monotonic() + within
    n = 0
    while True:
        yield n
        n += 1
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(every, left))


async def async_attempts(within: float, every: float = 0.1) -> AsyncIterator[int]:
    """`attempts` for coroutines: sleeps with `asyncio.sleep`."""
    end = time.monotonic() + within
    n = 0
    while True:
        yield n
        n += 1
        left = end - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(every, left))


def wait_until(probe: Callable[[], T], within: float, what: str, every: float = 0.1) -> T:
    """Call ``probe`` until it returns a truthy value, and return that value.

    Raises `WaitTimeout` ("... waiting for WHAT") once ``within`` s have passed.
    """
    for _ in attempts(within, every):
        if result := probe():
            return result
    raise WaitTimeout(f"timed out after {within:g} s waiting for {what}")


async def async_wait_until(
    probe: Callable[[], Awaitable[T]], within: float, what: str, every: float = 0.1
) -> T:
    """`wait_until` for a coroutine probe."""
    async for _ in async_attempts(within, every):
        if result := await probe():
            return result
    raise WaitTimeout(f"timed out after {within:g} s waiting for {what}")
