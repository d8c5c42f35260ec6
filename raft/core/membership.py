"""Membership changes, one server at a time (dissertation §4).

A configuration (`ConfState`) names the voters, whose majority decides, and
the learners, who receive the log but neither vote nor count towards a
majority.  Changes go through the log as CONFIG entries and take effect on
each server as soon as the entry is *appended*, not when it commits (§4.1).

Changing one server at a time keeps any majority of the old configuration
overlapping any majority of the new one, so two leaders can never be elected
by disjoint majorities.  That is why the leader refuses a second change while
the first is uncommitted.

Adding a server is done in two steps (§4.2.1): it joins as a learner, catches
up, and only then is promoted to voter, so that a new, empty server does not
stall commitment while it copies the log.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from raft.core.messages import ConfState, NodeId


class ConfChangeOp(enum.Enum):
    ADD_LEARNER = "add-learner"
    PROMOTE = "promote"  # learner -> voter
    DEMOTE = "demote"  # voter -> learner
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class ConfChange:
    op: ConfChangeOp
    node: NodeId


class ConfChangeError(Exception):
    """A membership change that cannot be made now; the message says why."""


def apply_change(conf: ConfState, change: ConfChange) -> ConfState:
    """The configuration after ``change``; raises ConfChangeError if it makes no sense."""
    voters, learners, node = list(conf.voters), list(conf.learners), change.node
    op = change.op
    if op is ConfChangeOp.ADD_LEARNER:
        if node in voters or node in learners:
            raise ConfChangeError(f"{node} is already a member")
        learners.append(node)
    elif op is ConfChangeOp.PROMOTE:
        if node not in learners:
            raise ConfChangeError(f"{node} is not a learner")
        learners.remove(node)
        voters.append(node)
    elif op is ConfChangeOp.DEMOTE:
        if node not in voters:
            raise ConfChangeError(f"{node} is not a voter")
        voters.remove(node)
        learners.append(node)
    elif op is ConfChangeOp.REMOVE:
        if node in voters:
            voters.remove(node)
        elif node in learners:
            learners.remove(node)
        else:
            raise ConfChangeError(f"{node} is not a member")
    if not voters:
        raise ConfChangeError("a cluster needs at least one voter")
    return ConfState(voters=tuple(voters), learners=tuple(learners))


def encode_conf(conf: ConfState) -> bytes:
    """The data of a CONFIG entry: the whole new configuration, not a delta,
    so that any single entry tells the configuration in force after it."""
    return json.dumps({"voters": list(conf.voters), "learners": list(conf.learners)}).encode()


def decode_conf(data: bytes) -> ConfState:
    d = json.loads(data)
    return ConfState(voters=tuple(d["voters"]), learners=tuple(d["learners"]))
