"""Leadership transfer (dissertation §3.10).

The leader stops taking proposals, brings the chosen follower's log up to
date, and sends it TimeoutNow; the follower starts an election at once,
skipping pre-vote, and the other voters grant it even though they still hear
from the old leader.  A transfer that has not succeeded within an election
timeout is abandoned and the leader carries on.

The transfer is a small protocol of its own running on top of the others:
its state is one target and one timer, and it touches them at a few points
only (a proposal is refused while it runs, replication sends TimeoutNow once
the target has caught up, a role change or a configuration that drops the
target ends it).  Keeping its own steps here lets it be read in one place.
"""

from __future__ import annotations

from raft.core.membership import ConfChangeError
from raft.core.messages import NodeId, TimeoutNow
from raft.core.types import NotLeader, Role


class LeadershipTransfer:
    """Handing leadership to another voter, mixed into `RaftCore`.

    Works on the state `RaftCore.__init__` sets up: ``_transferee`` (the
    target, None when no transfer runs) and ``_transfer_elapsed`` (ticks
    since it began).
    """

    # ================================================================ leadership transfer (§3.10)

    @property
    def transferee(self) -> NodeId | None:
        """The follower a leadership transfer is handing over to, if any."""
        return self._transferee

    def transfer_leadership(self, target: NodeId | None = None) -> NodeId:
        """Hand leadership to ``target`` (default: the most up-to-date voter), §3.10.

        The leader stops taking proposals, brings the target's log up to
        date, then sends it TimeoutNow so it starts an election at once and
        wins it.  If that has not happened within an election timeout the
        transfer is abandoned and the leader carries on.
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        candidates = [p for p in self.conf.voters if p != self.id]
        if target is None:
            if not candidates:
                raise ConfChangeError("no other voter to transfer leadership to")
            target = max(candidates, key=lambda p: (self.progress[p].match, p))
        elif target not in candidates:
            raise ConfChangeError(f"{target} is not another voter of this cluster")
        self._transferee = target
        self._transfer_elapsed = 0
        self._trace("transfer", {"from": self.id, "to": target, "term": self.term})
        if self.progress[target].match == self.log.last_index:
            self._send(TimeoutNow(self.term, self.id, target))
        else:
            self._send_append(target)
        return target

    def _tick_transfer(self) -> None:
        """A leader's tick while a transfer may be under way."""
        if self._transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self.config.election_ticks:
                # §3.10: give up after an election timeout and resume service.
                self._trace("transfer", {"to": self._transferee, "term": self.term, "failed": True})
                self._transferee = None

    def _handle_timeout_now(self, m: TimeoutNow) -> None:
        if self.role is Role.LEADER or not self.is_voter:
            return
        self._trace("transfer", {"from": m.src, "to": self.id, "term": self.term})
        # Skip pre-vote: the leader asked us to run, and voters grant a
        # transfer election even while they still hear from that leader.
        self._campaign(pre_vote=False, transfer=True)
