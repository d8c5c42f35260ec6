"""A real cluster of manager processes for integration tests, always cleaned up.

`running_cluster` starts managers with the supervisor in a temporary
directory and, whatever happens in the test, stops them: first with
``down`` (SIGTERM, then SIGKILL), then, as a last resort, by SIGKILLing
every PID recorded in ``cluster.json`` whose command line is a manager's
(which in netns mode also removes the cluster's namespaces and rules).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cluster.client.http import ApiError, Unreachable
from cluster.client.wait import attempts
from cluster.local.layout import ClusterDir, Description, Timing
from cluster.local.supervisor import Supervisor


def kill_leftovers(path: Path) -> None:
    """SIGKILL every process recorded in DIR/cluster.json that is still ours."""
    Supervisor(ClusterDir(path)).kill_all()


@contextlib.contextmanager
def running_cluster(
    path: Path,
    managers: int = 3,
    timing: Timing | None = None,
    workers: int = 0,
    netns: bool = False,
) -> Iterator[tuple[Supervisor, Description]]:
    sup = Supervisor(ClusterDir(path))
    try:
        desc = sup.up(managers, timing=timing or Timing(), workers=workers, netns=netns)
        yield sup, desc
    finally:
        try:
            sup.down()
        finally:
            kill_leftovers(path)


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``cond`` until it returns something truthy; fail after ``timeout`` s.
    A manager that does not answer yet (or answers an error) counts as "not yet"."""
    for _ in attempts(timeout):
        with contextlib.suppress(Unreachable, ApiError):
            if value := cond():
                return value
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def leader_name(desc: Description, sup: Supervisor) -> str | None:
    found = sup.find_leader(desc)
    return found[0].name if found else None
