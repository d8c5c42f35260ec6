"""The client the docker verbs share: `Api`, one manager's HTTP API.

Which manager: ``--node NAME`` picks one; otherwise the first running
manager that answers a quick ``/raft/status`` (paused and stopped ones are
skipped, and during a partition the managers on its largest side are tried
first).  Writes need not go to the leader: the API forwards them there.

The API resolves every reference (a name, an ID prefix, or for nodes the
word ``leader``), so the verbs pass what the user typed.

This is the only module of the verbs that sends requests (`request`, from
`cluster.client.http`); keeping it apart lets the helpers in
`cluster.cli.format` stay pure and lets a test swap the transport in one
place.  `remove_each` is here too: docker's ``rm``, the same for services,
secrets and configs.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

from cluster.cli.format import Obj
from cluster.client.http import ApiError, Unreachable, request
from cluster.local.layout import ClusterError, Description, Member

__all__ = ["FAST_FAILURE", "PROBE_TIMEOUT", "Api", "remove_each"]

#: How long a manager gets to answer the "are you there" probe.
PROBE_TIMEOUT = 0.5
#: A failure faster than this (connection refused) means "try the next manager".
FAST_FAILURE = 1.0


class Api:
    """One manager's HTTP API, chosen as the module docstring says."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.desc: Description = ctx.cdir.load()
        self.pinned: str | None = getattr(ctx.args, "via", None)
        self._tried: set[str] = set()
        self._member: Member | None = None
        t = self.desc.timing
        # The API bounds its own answer (a few election timeouts, plus one
        # forwarding hop); wait a little longer than that, never forever.
        self.timeout = t.request_timeout * 2 + 2.0

    def _candidates(self) -> list[Member]:
        sup = self.ctx.sup
        if self.pinned:
            m = sup.resolve(self.desc, self.pinned)
            state = sup.process_state(m)
            if state != "running":
                raise ClusterError(f"{m.name} is {state}; pick a running manager with --node")
            return [m]
        managers = [m for m in self.desc.members if m.role == "manager"]
        running = [m for m in managers if sup.process_state(m) == "running"]
        if not running:
            raise ClusterError(
                "no manager is running (start the cluster with: python -m cluster up -d)"
            )
        sizes = {n: len(g) for g in self.desc.partition for n in g}
        # A stable sort: manager order within a side, the largest side first.
        return sorted(running, key=lambda m: -sizes.get(m.name, 0))

    def _pick(self) -> Member:
        if self._member is not None:
            return self._member
        tried = []
        for m in self._candidates():
            if m.name in self._tried:
                continue
            tried.append(m.name)
            try:
                st = request("GET", f"{m.api_url}/raft/status", timeout=PROBE_TIMEOUT)
            except (Unreachable, ApiError):
                self._tried.add(m.name)
                continue
            if isinstance(st, dict) and st.get("locked") and not self.pinned:
                self._tried.add(m.name)  # autolock: it serves nothing until unlocked
                continue
            self._member = m
            return m
        if not tried:
            raise ClusterError("no manager answered")
        raise ClusterError(f"no manager answered (tried {', '.join(tried)})")

    @property
    def manager(self) -> Member:
        return self._pick()

    def call(
        self, method: str, path: str, body: Any = None, *, query: dict[str, Any] | None = None
    ) -> Any:
        """One API request; a write carries a request ID so a retry is not applied twice."""
        if query:
            path += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"X-Request-ID": uuid.uuid4().hex} if method != "GET" else None
        while True:
            m = self._pick()
            started = time.monotonic()
            try:
                return request(
                    method, m.api_url + path, body, timeout=self.timeout, headers=headers
                )
            except Unreachable:
                # It died between the probe and the request: try another one,
                # unless it is the one the user asked for or it hung.
                if self.pinned or time.monotonic() - started > FAST_FAILURE:
                    raise
                self._tried.add(m.name)
                self._member = None

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query or None)

    def lookup(self, kind: str, ref: str) -> Obj:
        """An object by name, ID prefix (or ``leader`` for a node), resolved by the API."""
        return self.get(f"/{kind}s/{quote(ref, safe='')}")


def remove_each(ctx: Any, kind: str, refs: Sequence[str], query: str = "") -> int:
    """docker's ``rm``: remove each one, report each failure, fail if any failed."""
    api = Api(ctx)
    failed = 0
    for ref in refs:
        try:
            obj = api.lookup(kind, ref)
            api.call("DELETE", f"/{kind}s/{obj['ID']}{query}")
        except ApiError as e:
            print(f"error: {e.message}", file=sys.stderr)
            failed += 1
            continue
        print(ref)
    return 1 if failed else 0
