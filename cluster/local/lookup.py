"""Which member a user means, and which one leads.

Every command that names a node accepts a name, a node-ID prefix or the word
``leader`` (DESIGN.md, Names); the last one needs to ask the running
managers, which is also how ``up`` and a recovery wait for an election.
Apart from the processes because this asks managers over HTTP, and a
process is signalled without asking anyone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.client.http import ApiError, Unreachable, request
from cluster.client.wait import attempts
from cluster.local.layout import ClusterError, Description, Member
from cluster.local.processes import Processes

__all__ = ["Progress", "find_leader", "resolve", "wait_for_leader"]

Progress = Callable[[str], None]


def find_leader(
    processes: Processes, desc: Description, initialised: bool = False
) -> tuple[Member, dict[str, Any]] | None:
    """The running manager that says it leads, with its ``/raft/status``.

    With ``initialised``, only once it has also set up the swarm (its first
    act as leader), so the user's very next command can write.
    """
    for m in desc.members:
        if m.role != "manager" or processes.state(m) != "running":
            continue
        try:
            st = request("GET", f"{m.api_url}/raft/status", timeout=0.5)
        except (Unreachable, ApiError):
            continue
        if st.get("role") == "leader" and (not initialised or st.get("initialised", True)):
            return m, st
    return None


def wait_for_leader(
    processes: Processes,
    desc: Description,
    timeout: float,
    progress: Progress = lambda _: None,
) -> str | None:
    """Poll the managers until one leads an initialised swarm; its name, or None."""
    for attempt in attempts(timeout):
        found = find_leader(processes, desc, initialised=True)
        if found is not None:
            m, st = found
            progress(f"{m.name} is the leader (term {st.get('term')})")
            return m.name
        if attempt == 0:
            progress("waiting for an election...")
    return None


def resolve(processes: Processes, desc: Description, ref: str) -> Member:
    """A member by name, node-ID prefix, or the word ``leader``."""
    if ref == "leader":
        found = find_leader(processes, desc)
        if found is None:
            raise ClusterError("there is no leader right now")
        return found[0]
    for m in desc.members:
        if m.name == ref:
            return m
    matches = [m for m in desc.members if m.node_id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ClusterError(f"node ID prefix {ref!r} is ambiguous")
    names = ", ".join(m.name for m in desc.members)
    raise ClusterError(f"no node {ref!r} in this cluster (nodes: {names})")
