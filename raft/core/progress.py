"""What a leader knows about each follower, and how fast it may send to it.

Figure 2 gives the leader ``nextIndex`` and ``matchIndex`` per server.  Real
leaders add flow control on top (as etcd's raft does), in three states:

PROBE
    We do not know where the follower's log matches ours.  Send one
    AppendEntries, then wait for its answer (or the next heartbeat) before
    sending another: a follower that is far behind must not be flooded with
    messages it will reject.

REPLICATE
    The follower's match is known; stream entries optimistically, advancing
    ``next`` as we send, with at most ``max_inflight`` messages unacknowledged.

SNAPSHOT
    The entries it needs are compacted away; an InstallSnapshot is under way
    (§7) and nothing else is sent until it finishes.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Progress:
    """One follower as seen by the leader."""

    __slots__ = (
        "inflight",
        "match",
        "max_inflight",
        "next",
        "probe_sent",
        "recent_active",
        "snapshot_index",
        "snapshot_offset",
        "state",
    )

    def __init__(self, next_index: int, max_inflight: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.max_inflight = max_inflight
        #: Last index of each unacknowledged AppendEntries (REPLICATE only).
        self.inflight: deque[int] = deque()
        #: Heard from within the current election timeout (check-quorum, §6.2).
        self.recent_active = False
        self.snapshot_index = 0
        self.snapshot_offset = 0

    def __repr__(self) -> str:
        return (
            f"Progress({self.state.value}, match={self.match}, next={self.next}, "
            f"inflight={len(self.inflight)})"
        )

    @property
    def paused(self) -> bool:
        """May the leader send this follower another AppendEntries now?"""
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= self.max_inflight
        return True

    def become_probe(self, next_index: int) -> None:
        """Fall back to one message at a time, starting at ``next_index``."""
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight.clear()
        self.next = max(next_index, self.match + 1)

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.probe_sent = False
        self.inflight.clear()
        self.next = self.match + 1

    def become_snapshot(self, index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.probe_sent = False
        self.inflight.clear()
        self.snapshot_index = index
        self.snapshot_offset = 0

    def sent(self, last_index: int) -> None:
        """Record an AppendEntries carrying entries up to ``last_index``."""
        if self.state is ProgressState.REPLICATE:
            self.next = last_index + 1
            self.inflight.append(last_index)
        else:
            self.probe_sent = True

    def acknowledged(self, index: int) -> bool:
        """The follower matches us up to ``index``; True if that is news."""
        news = index > self.match
        if news:
            self.match = index
        self.next = max(self.next, index + 1)
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()
        return news
