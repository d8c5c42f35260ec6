"""The live status view (``watch``, and foreground ``up``)."""

from __future__ import annotations

import time

from cluster.layout import ClusterDir
from cluster.status import collect
from cluster.supervisor import Supervisor


def watch(
    sup: Supervisor, cdir: ClusterDir, interval: float = 0.3, count: int | None = None
) -> None:
    n = 0
    while count is None or n < count:
        st = collect(sup, cdir.load())
        print(st["leader"], st["term"], [(x["name"], x["role"]) for x in st["nodes"]], flush=True)
        n += 1
        time.sleep(interval)
