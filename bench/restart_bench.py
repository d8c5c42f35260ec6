"""How long does a manager take to serve again after a restart on a long log?  (A measurement.)

Starts a local 3-manager cluster, optionally creates ``--services`` services
(so that the snapshot carries a real store), then commits ``--entries``
entries in all through the leader's ``POST /raft/bench`` (no-op entries
proposed inside the leader: replicated, fsynced on a majority, committed and
applied like any other, but ignored by the store; `cluster.manager.bench`).
Filling through the HTTP API would take an hour for a million entries; the
no-op entries cost the log, the snapshots and the restart exactly what real
ones do, except for the store they leave unchanged.

Then, ``--rounds`` times: SIGKILL a follower, start it again on its data
(``restart``) and time from the start until its ``GET /raft/status`` answers
as a follower with ``applied_index == commit_index`` and a commit index at
least the leader's when it was killed -- i.e. until it serves reads again.

Every 10,000 applied entries a manager replaces its log prefix with a
snapshot (§7; 500 entries stay behind it), so a restart reads one snapshot
plus at most ~10,500 entries whatever the log's length: the time should not
depend on ``--entries`` beyond that (try ``--entries 100000`` against the
default to see it).

::

    python bench/restart_bench.py                      # 1,000,000 entries
    python bench/restart_bench.py --entries 100000 --services 1000 --json

Everything runs on 127.0.0.1 and the cluster is always stopped and purged
at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cluster.bench.scale import rss_mb
from cluster.client.http import ApiError, Unreachable, request
from cluster.client.wait import attempts
from cluster.local.layout import ClusterDir, Member, Timing
from cluster.local.supervisor import Supervisor

#: One ``/raft/bench`` call lasts at most this long (the server caps it at 60 s).
FILL_CALL_S = 30.0


def status(m: Member) -> dict[str, Any] | None:
    try:
        return request("GET", f"{m.api_url}/raft/status", timeout=0.5)
    except (ApiError, Unreachable, OSError, ValueError):
        return None


def managers(sup: Supervisor) -> list[Member]:
    return [m for m in sup.cdir.load().members if m.role == "manager"]


def leader(sup: Supervisor, timeout: float = 30.0) -> tuple[Member, dict[str, Any]]:
    for _ in attempts(timeout, every=0.05):
        for m in managers(sup):
            st = status(m)
            if st and st.get("role") == "leader":
                return m, st
    raise RuntimeError(f"no leader within {timeout:g} s")


def create_services(sup: Supervisor, n: int) -> None:
    """``n`` services of 0 replicas, one at a time (bounded retries on a 503)."""
    for i in range(n):
        body = {
            "Name": f"restart-bench-{i}",
            "TaskTemplate": {"ContainerSpec": {"Image": "bench:1"}},
            "Mode": {"Replicated": {"Replicas": 0}},
        }
        for attempt in range(5):
            try:
                request("POST", f"{leader(sup)[0].api_url}/services/create", body, timeout=10)
                break
            except ApiError as e:
                if e.status == 409 and attempt:
                    break
                if e.status != 503:
                    raise
            except Unreachable:
                pass
            time.sleep(0.2 * (attempt + 1))
        if (i + 1) % 1000 == 0:
            print(f"{i + 1}/{n} services", file=sys.stderr, flush=True)


def fill(sup: Supervisor, entries: int, outstanding: int) -> float:
    """Propose no-op entries until the leader has applied ``entries``; entries per second."""
    t0 = time.monotonic()
    start = leader(sup)[1]["applied_index"]
    while True:
        m, st = leader(sup)
        left = entries - st["applied_index"]
        if left <= 0:
            break
        body = {"outstanding": outstanding, "size": 16, "duration": FILL_CALL_S,
                "max_ops": left}  # fmt: skip
        request("POST", f"{m.api_url}/raft/bench", body, timeout=FILL_CALL_S + 60)
        done = leader(sup)[1]["applied_index"]
        rate = (done - start) / (time.monotonic() - t0)
        print(f"{done:,}/{entries:,} entries applied ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    return round((leader(sup)[1]["applied_index"] - start) / (time.monotonic() - t0), 1)


def restart_once(sup: Supervisor, timeout: float) -> dict[str, Any]:
    """Kill a follower, start it again; seconds until it serves as an up-to-date follower."""
    lead = leader(sup)[0]
    victim = next(m for m in managers(sup) if m.name != lead.name)
    sup.kill(victim.name)
    floor = leader(sup)[1]["commit_index"]
    t0 = time.monotonic()
    sup.restart(victim.name)
    victim = next(m for m in managers(sup) if m.name == victim.name)
    answering = None
    while time.monotonic() - t0 < timeout:
        st = status(victim)
        if st and answering is None:
            answering = round(time.monotonic() - t0, 3)
        if (
            st
            and st.get("role") == "follower"
            and st["applied_index"] == st["commit_index"] >= floor
        ):
            return {
                "manager": victim.name,
                "serving_s": round(time.monotonic() - t0, 3),
                "answering_s": answering,
                "applied_index": st["applied_index"],
                "last_log_index": st.get("last_log_index"),
                "rss_mb": rss_mb(victim.pid),
            }
        time.sleep(0.01)
    raise RuntimeError(f"{victim.name} did not serve within {timeout:g} s of its restart")


def data_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run(cdir: ClusterDir, a: argparse.Namespace) -> dict[str, Any]:
    sup = Supervisor(cdir)
    sup.up(3, None, Timing(), {})
    leader(sup)
    if a.services:
        create_services(sup, a.services)
    fill_rate = fill(sup, a.entries, a.outstanding)
    time.sleep(1.0)  # let the followers apply and snapshot the last entries
    rounds = [restart_once(sup, a.timeout) for _ in range(a.rounds)]
    for r in rounds:
        print(f"restart {r['manager']}: first answer after {r['answering_s']} s, serving "
              f"after {r['serving_s']} s", file=sys.stderr)  # fmt: skip
    victim = rounds[-1]["manager"]
    return {
        "entries": leader(sup)[1]["applied_index"],
        "services": a.services,
        "fill_entries_per_s": fill_rate,
        "serving_s": [r["serving_s"] for r in rounds],
        "serving_p50_s": statistics.median(r["serving_s"] for r in rounds),
        "answering_s": [r["answering_s"] for r in rounds],
        "last_log_index": rounds[-1]["last_log_index"],
        "rss_mb_after_restart": rounds[-1]["rss_mb"],
        "data_dir_mb": round(data_bytes(cdir.node_dir(victim)) / 2**20, 1),
        "data_files_kb": {
            str(f.relative_to(cdir.node_dir(victim))): round(f.stat().st_size / 1024)
            for f in sorted(cdir.node_dir(victim).rglob("*"))
            if f.is_file() and f.stat().st_size > 100 * 1024
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000, help="applied entries before")
    ap.add_argument("--services", type=int, default=0, help="services in the store first")
    ap.add_argument("--outstanding", type=int, default=256, help="no-op proposals in flight")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0, help="bound on one restart")
    ap.add_argument("--json", action="store_true", help="also print one JSON object")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="restart-bench-"))
    cdir = ClusterDir(tmp / "cluster")
    try:
        out = run(cdir, a)
    finally:
        if cdir.exists():
            Supervisor(cdir).down(purge=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{out['entries']:,} entries, {out['services']} services: serving again after "
        f"{out['serving_s']} s (median {out['serving_p50_s']} s); log kept "
        f"{out['last_log_index']:,}; RSS {out['rss_mb_after_restart']} MiB"
    )
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
