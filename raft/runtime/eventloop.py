"""Which event loop a server process runs on: uvloop when installed, else asyncio's.

Why
---
A manager spends much of its CPU in the event loop's own machinery rather
than in Raft: waking on sockets, scheduling callbacks, writing to sockets
through the TLS layer (docs/perf.md).  uvloop implements the same asyncio
API on libuv, in C, and does that machinery several times cheaper.  Nothing
else changes: the node, the transport and aiohttp see the same asyncio
interfaces, and Raft's safety does not depend on which loop runs it (the
persistence order is decided by `raft.core.persist`, not by the loop).

uvloop is a dependency, but the code never requires it: without it, or with
``SWARMRAFT_EVENT_LOOP=asyncio`` in the environment (to compare the two, or
to rule the loop out when chasing a bug), the process runs on asyncio's
standard loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["ENV", "loop_factory", "loop_name", "run"]

T = TypeVar("T")

#: ``asyncio`` forces the standard loop; anything else (or unset) prefers uvloop.
ENV = "SWARMRAFT_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's default loop."""
    if os.environ.get(ENV, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: for the start-up log line."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop `loop_factory` chooses."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
