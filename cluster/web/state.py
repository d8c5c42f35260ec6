"""What the live page shows, gathered from a running cluster (the page's "frame").

Three loops run side by side, each with short timeouts so that a paused or
dead manager only ever makes its own card stale:

* every `RAFT_EVERY` seconds, each running manager's ``/raft/status``
  (role, term, election timer, log tail, commit and applied index);
* every `SWARM_EVERY` seconds, the services, tasks and nodes from one manager
  that answers (a local read, no barrier: the view must work without quorum);
* every `TAIL_EVERY` seconds, the new lines of each node's trace and of the
  supervisor's fault log: votes become messages on the page, role changes,
  elections and faults become events.

`frame` assembles the latest of each into the plain dict the page draws.  A
vote line is written by the voter when it answers, and traces reach the disk
in batches (`raft.runtime.trace`), so a vote's request and answer are shown
from the moment the line is read: at most a few hundred milliseconds late.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from pathlib import Path
from typing import Any

import aiohttp

from cluster.local.layout import ClusterDir, ClusterError, Description, Member
from cluster.local.status import count_reachable, manager_role, quorum
from cluster.local.supervisor import Supervisor

__all__ = ["LiveState"]

RAFT_EVERY = 0.1
SWARM_EVERY = 0.5
TAIL_EVERY = 0.1
LEG = 0.45  # seconds a message takes on the page, per leg (as in app.js)
KEEP_MESSAGES = 3.0  # seconds
KEEP_EVENTS = 60
LINK_WINDOW = 0.5  # seconds of per-link summaries a link's rate is averaged over


class LiveState:
    """The cluster as last seen; `run` keeps it fresh, `frame` reads it."""

    def __init__(self, cdir: ClusterDir, sup: Supervisor) -> None:
        self.cdir = cdir
        self.sup = sup
        self.desc: Description | None = None
        self.raft: dict[str, dict[str, Any]] = {}
        self.process: dict[str, str] = {}
        self.swarm: dict[str, Any] = {"services": [], "tasks": [], "nodes": []}
        self.messages: deque[dict[str, Any]] = deque(maxlen=400)
        #: (seen at, from, to, messages per second) of recent per-link summaries.
        self.link_rates: deque[tuple[float, str, str, float]] = deque(maxlen=2000)
        self.events: deque[dict[str, Any]] = deque(maxlen=KEEP_EVENTS)
        self._offsets: dict[Path, int] = {}
        #: The last term each manager reported: a down or paused node keeps it on
        #: the page (its ``data-term``), as Raft keeps it on the node's disk.
        self.last_term: dict[str, int] = {}
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ loops

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=0.4)
        async with aiohttp.ClientSession(timeout=timeout) as http, asyncio.TaskGroup() as tg:
            tg.create_task(self._every(RAFT_EVERY, lambda: self.poll_raft(http)))
            tg.create_task(self._every(SWARM_EVERY, lambda: self.poll_swarm(http)))
            tg.create_task(self._every(TAIL_EVERY, self._tail_async))

    @staticmethod
    async def _every(period: float, step: Any) -> None:
        while True:
            started = time.monotonic()
            with contextlib.suppress(OSError, ValueError, ClusterError, aiohttp.ClientError):
                await step()
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def poll_raft(self, http: aiohttp.ClientSession) -> None:
        desc = self.cdir.load()
        self.desc = desc
        states = {m.name: self.sup.process_state(m) for m in desc.members}
        self.process = states
        running = [m for m in desc.members if m.role == "manager" and states[m.name] == "running"]
        answers = await asyncio.gather(*(self._get(http, m, "/raft/status") for m in running))
        seen = {m.name: a for m, a in zip(running, answers, strict=True) if isinstance(a, dict)}
        for name, st in seen.items():
            if not st.get("locked"):
                self.last_term[name] = int(st.get("term") or 0)
        self.raft = seen

    async def poll_swarm(self, http: aiohttp.ClientSession) -> None:
        if self.desc is None:
            return
        for m in self._managers_answering():
            got = await asyncio.gather(
                self._get(http, m, "/services"),
                self._get(http, m, "/tasks"),
                self._get(http, m, "/nodes?consistency=local"),
            )
            if all(isinstance(g, list) for g in got):
                self.swarm = {"services": got[0], "tasks": got[1], "nodes": got[2]}
                return

    async def _tail_async(self) -> None:
        await asyncio.to_thread(self.tail)

    @staticmethod
    async def _get(http: aiohttp.ClientSession, m: Member, path: str) -> Any:
        try:
            async with http.get(m.api_url + path) as resp:
                return await resp.json() if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    def _managers_answering(self) -> list[Member]:
        assert self.desc is not None
        leader = self._leader()
        ms = [m for m in self.desc.members if m.name in self.raft]
        ms.sort(key=lambda m: (m.name != leader, m.name))
        return [m for m in ms if not self.raft[m.name].get("locked")]

    # ------------------------------------------------------------ traces

    def tail(self, now: float | None = None) -> None:
        """Read what the traces gained since the last call (from their end at first)."""
        if self.desc is None:
            return
        now = time.time() if now is None else now
        paths = [self.cdir.node_dir(m.name) / "trace.jsonl" for m in self.desc.members]
        paths.append(self.cdir.faults_file)
        for path in paths:
            for line in self._new_lines(path):
                self._take(line, now)
        while self.messages and self.messages[0]["t"] < now - KEEP_MESSAGES:
            self.messages.popleft()
        while self.link_rates and self.link_rates[0][0] < now - LINK_WINDOW:
            self.link_rates.popleft()

    def _new_lines(self, path: Path) -> list[dict[str, Any]]:
        try:
            size = path.stat().st_size
        except OSError:
            return []
        start = self._offsets.setdefault(path, size)  # first sight: only what comes next
        if size < start:
            start = 0  # the file was replaced (a purged and recreated cluster)
        if size == start:
            return []
        with path.open("rb") as f:
            f.seek(start)
            chunk = f.read(size - start)
        complete = chunk.rfind(b"\n") + 1
        self._offsets[path] = start + complete
        out = []
        for raw in chunk[:complete].splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if isinstance(line, dict):
                    out.append(line)
        return out

    def _take(self, line: dict[str, Any], now: float) -> None:
        kind, node = line.get("type"), str(line.get("node", ""))
        t = float(line.get("t", now))
        if kind == "message" and line.get("kind") in ("append", "heartbeat"):
            src, dst = str(line.get("from", node)), str(line.get("to"))
            count, window = int(line.get("count", 1)), float(line.get("window") or 0.1)
            self.link_rates.append((now, src, dst, count / max(window, 0.01)))
            self._message(str(line["kind"]), src, dst, line.get("term"), now)
        elif kind == "vote":
            candidate, term = str(line.get("candidate")), line.get("term")
            pre = bool(line.get("pre_vote"))
            self._message("pre-vote" if pre else "vote", candidate, node, term, now)
            answer = "grant" if line.get("granted") else "refuse"
            self._message(answer, node, candidate, term, now + LEG, line.get("reason"))
            if not line.get("granted") and not pre:
                self._event(t, f"{node} refused its vote to {candidate}: {line.get('reason')}")
        elif kind == "election":
            what = "pre-vote" if line.get("pre_vote") else "election"
            article = "a" if what == "pre-vote" else "an"
            self._event(t, f"{node} starts {article} {what} for term {line.get('term')}")
        elif kind == "role":
            self._event(
                t, f"{node}: {line.get('from')} → {line.get('to')} (term {line.get('term')})"
            )
        elif kind == "fault":
            detail = line.get("groups") or line.get("target") or ""
            self._event(t, f"fault: {line.get('kind')} {_words(detail)}".rstrip())

    def _message(
        self, kind: str, src: str, dst: str, term: Any, t: float, reason: Any = None
    ) -> None:
        self.messages.append(
            {
                "id": next(self._ids),
                "kind": kind,
                "from": src,
                "to": dst,
                "term": term,
                "t": t,
                "reason": reason,
            }
        )

    def _event(self, t: float, text: str) -> None:
        self.events.append({"t": t, "text": text})

    # ------------------------------------------------------------ the frame

    def _leader(self) -> str | None:
        leaders = [
            (st.get("term", 0), n) for n, st in self.raft.items() if st.get("role") == "leader"
        ]
        return max(leaders)[1] if leaders else None

    def frame(self, now: float | None = None) -> dict[str, Any]:
        """The cluster as the page draws it (see the top of ``viz/web/app.js``)."""
        now = time.time() if now is None else now
        desc = self.desc
        if desc is None:
            return {"t": now, "nodes": [], "messages": [], "events": [], "services": []}
        leader = self._leader()
        voters: list[str] = list((self.raft.get(leader or "") or {}).get("voters") or [])
        managers = [m for m in desc.members if m.role == "manager"]
        n_voters = len(voters) or len(managers)
        store_nodes = {n.get("ID"): n for n in self.swarm["nodes"] if isinstance(n, dict)}
        tasks_on = _tasks_by_node(self.swarm["tasks"], self.swarm["services"])
        nodes = []
        for m in desc.members:
            st = self.raft.get(m.name)
            node = store_nodes.get(m.node_id, {})
            nodes.append(
                {
                    "name": m.name,
                    "kind": m.role,
                    "role": self._role(m, st, voters),
                    "availability": node.get("Spec", {}).get("Availability"),
                    "tasks": tasks_on.get(m.node_id, []),
                    "term": self.last_term.get(m.name, 0),
                    **(_raft_facts(st) if st else {}),
                }
            )
        managers_now = [n for n in nodes if n["kind"] == "manager"]
        reachable = count_reachable(leader, desc.partition, managers_now)
        # A node that is down or frozen now sends nothing: what it sent just before
        # (summaries read late) would only muddle the picture of who talks now.
        silent = {n["name"] for n in nodes if n["role"] in ("down", "paused")}
        return {
            "t": now,
            "cluster": str(self.cdir.path),
            "leader": leader,
            "term": max((n.get("term") or 0 for n in nodes), default=0),
            "quorum": {"managers": n_voters, "needed": quorum(n_voters), "reachable": reachable},
            "partition": desc.partition,
            "nodes": nodes,
            "links": [x for x in self._links(now) if x["from"] not in silent],
            "messages": [m for m in self.messages if m["from"] not in silent],
            "events": list(self.events),
            "services": _services(self.swarm["services"], self.swarm["tasks"]),
        }

    def _role(self, m: Member, st: dict[str, Any] | None, voters: list[str]) -> str:
        process = self.process.get(m.name, "down")
        if m.role == "worker":
            return process if process != "running" else "worker"
        return manager_role(m.name, process, st, voters)

    def _links(self, now: float) -> list[dict[str, Any]]:
        """Appends and heartbeats per second on each link, over the last second."""
        rates: dict[tuple[str, str], list[float]] = {}
        for seen, src, dst, rate in self.link_rates:
            if seen >= now - LINK_WINDOW:
                rates.setdefault((src, dst), []).append(rate)
        return [
            {"from": src, "to": dst, "rate": round(sum(r) / len(r), 1)}
            for (src, dst), r in sorted(rates.items())
        ]


def _raft_facts(st: dict[str, Any]) -> dict[str, Any]:
    tick = float(st.get("tick_interval") or 0.0)
    timer = None
    if tick and st.get("election_timeout"):
        timer = {
            "elapsed": st.get("election_elapsed", 0) * tick,
            "timeout": st["election_timeout"] * tick,
        }
    return {
        "term": st.get("term", 0),
        "leader": st.get("leader"),
        "voted_for": st.get("voted_for"),
        "commit": st.get("commit_index", 0),
        "applied": st.get("applied_index", 0),
        "last_index": st.get("last_log_index", 0),
        "last_term": st.get("last_log_term", 0),
        "log": st.get("log_tail") or [],
        "timer": timer,
    }


def _services(services: list[Any], tasks: list[Any]) -> list[dict[str, Any]]:
    out = []
    for s in services:
        if not isinstance(s, dict):
            continue
        mode = s.get("Spec", {}).get("Mode", {})
        mine = [t for t in tasks if isinstance(t, dict) and t.get("ServiceID") == s.get("ID")]
        wanted = [t for t in mine if t.get("DesiredState") == "running"]
        running = [t for t in wanted if t.get("Status", {}).get("State") == "running"]
        replicated = "Replicated" in mode
        out.append(
            {
                "name": s.get("Spec", {}).get("Name"),
                "mode": "replicated" if replicated else "global",
                "desired": mode["Replicated"].get("Replicas") if replicated else len(wanted),
                "running": len(running),
            }
        )
    return out


def _tasks_by_node(tasks: list[Any], services: list[Any]) -> dict[str, list[dict[str, Any]]]:
    names = {s.get("ID"): s.get("Spec", {}).get("Name") for s in services if isinstance(s, dict)}
    out: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        if not isinstance(t, dict) or t.get("DesiredState") != "running" or not t.get("NodeID"):
            continue
        out.setdefault(t["NodeID"], []).append(
            {
                "service": names.get(t.get("ServiceID"), "?"),
                "slot": t.get("Slot"),
                "state": t.get("Status", {}).get("State"),
            }
        )
    return out


def _words(detail: Any) -> str:
    if isinstance(detail, list):
        return " | ".join(",".join(g) if isinstance(g, list) else str(g) for g in detail)
    return str(detail)
