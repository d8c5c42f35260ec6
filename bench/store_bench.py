"""How reads and control-loop passes scale with the size of the Swarm state (not a test).

Builds one `Store` the way Raft would (commands applied in log order) with
``--services`` services of ``--replicas`` tasks each (50,000 tasks by
default), then times, best of ``--repeat``:

* ``service ps``: the tasks of one service, from the task index; and the
  same through the API route's selection and JSON encoding (no HTTP);
* the same answer found by scanning every task (what it cost before the index);
* ``GET /tasks`` with no filter: every task, sorted (no copies: frozen objects);
* a full control-loop pass, and an incremental one after one task changed.

::

    python bench/store_bench.py                  # 500 services x 100 tasks
    python bench/store_bench.py --services 2000 --replicas 25 --json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from cluster.api.common import reply
from cluster.api.routes import _candidate_tasks
from cluster.control.orchestrator import ControlLoop
from cluster.control.reconciler import Reconciler
from cluster.state import commands as c
from cluster.state import objects as o
from cluster.state.store import Store

T0 = 1_714_564_800.0


def build(services: int, replicas: int, nodes: int = 5) -> Store:
    """A settled swarm: every task created, assigned and running."""
    store = Store()

    def apply(command: bytes) -> None:
        result = store.apply(store.applied_index + 1, command)
        assert result.ok, result.error

    for n in range(nodes):
        apply(c.create_node(f"node{n}", T0, f"worker{n}"))
    for s in range(services):
        spec = {
            "Name": f"svc{s}",
            "Mode": {"Replicated": {"Replicas": replicas}},
            "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1"}},
        }
        apply(c.create_service(spec, f"s{s:06d}", T0))
        for slot in range(1, replicas + 1):
            task_id = c.derived_id("task", f"s{s:06d}", slot)
            apply(c.create_task(task_id, T0, f"s{s:06d}", slot=slot))
            node = f"node{(s + slot) % nodes}"
            apply(c.update_task(task_id, T0, node_id=node, state="assigned"))
            apply(c.update_task(task_id, T0, state="running"))
    return store


def best_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=500)
    ap.add_argument("--replicas", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    a = ap.parse_args()

    start = time.perf_counter()
    store = build(a.services, a.replicas)
    built_s = time.perf_counter() - start
    target = f"s{a.services // 2:06d}"
    loop = ControlLoop()
    assert loop.step(store, T0) == [], "the built swarm should be settled"

    def scan() -> list[o.Obj]:
        return store.list(o.TASK, lambda t: t["ServiceID"] == target)

    reconciler = Reconciler(loop, full_every=1e9)
    reconciler.step(store, T0)  # the first pass is full

    def incremental() -> None:
        task = store.tasks(service_id=target)[0]
        # One change to look at: the task's labels stay, its status is re-reported.
        store.apply(
            store.applied_index + 1,
            c.update_task(task["ID"], T0, desired_state="running"),
        )
        reconciler.step(store, T0)

    rows = {
        "service_ps_indexed_ms": best_ms(lambda: store.tasks(service_id=target), a.repeat),
        "service_ps_api_json_ms": best_ms(
            lambda: reply(_candidate_tasks(store, {"service": [f"svc{a.services // 2}"]})),
            a.repeat,
        ),
        "service_ps_scan_ms": best_ms(scan, a.repeat),
        "all_tasks_ms": best_ms(store.tasks, a.repeat),
        "full_pass_ms": best_ms(lambda: loop.step(store, T0), a.repeat),
        "incremental_pass_ms": best_ms(incremental, a.repeat),
    }
    out = {
        "services": a.services,
        "tasks": store.count(o.TASK),
        "build_s": round(built_s, 2),
        **{k: round(v, 3) for k, v in rows.items()},
    }
    if a.json:
        print(json.dumps(out))
        return
    print(f"{out['services']} services, {out['tasks']} tasks (built in {built_s:.1f} s)")
    for key, value in rows.items():
        print(f"  {key:<22} {value:10.3f} ms")


if __name__ == "__main__":
    main()
