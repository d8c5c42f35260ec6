"""Network faults on demand: what the transport drops or delays, per peer.

`FaultFilter` is the network's misbehaviour as plain data: per peer and per
direction it can cut the link, lose a fraction of messages or delay them.
The transport (`raft.runtime.transport`) applies outbound rules in ``send``
and inbound rules on arrival, so when both sides of a partition carry rules
the cut holds in both directions even for messages already in flight.
`PersistentFaultFilter` saves the rules after every change, so a partition
set by the scenario runner survives the node's restart.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from raft.core.messages import NodeId
from raft.runtime.plain import from_plain, to_plain

__all__ = ["Direction", "FaultFilter", "LinkFault", "PersistentFaultFilter"]

Direction = Literal["outbound", "inbound", "both"]


@dataclass(frozen=True, slots=True)
class LinkFault:
    """What goes wrong on one direction of one link.

    ``drop`` cuts it entirely; otherwise each message is lost with
    probability ``loss`` and the survivors arrive ``delay`` seconds late.
    """

    drop: bool = False
    loss: float = 0.0
    delay: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss must be a probability, got {self.loss}")
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinkFault:
        return from_plain(cls, data, "link fault")


@dataclass(slots=True)
class FaultFilter:
    """Per-peer, per-direction link faults.  The key ``"*"`` means every peer.

    A rule for a named peer replaces the ``"*"`` rule for that peer (it does
    not combine with it), so "lose 10% everywhere but cut manager3" is two
    rules.  Outbound rules are checked in `Transport.send`, inbound ones when
    a message arrives: an asymmetric partition is an outbound rule on one
    side only.
    """

    outbound: dict[NodeId, LinkFault] = field(default_factory=dict)
    inbound: dict[NodeId, LinkFault] = field(default_factory=dict)

    ALL = "*"

    def rule(self, direction: Literal["outbound", "inbound"], peer: NodeId) -> LinkFault | None:
        """The rule in force for ``peer`` in ``direction``, if any."""
        rules = self.outbound if direction == "outbound" else self.inbound
        return rules.get(peer) or rules.get(self.ALL)

    def decide(
        self, direction: Literal["outbound", "inbound"], peer: NodeId, rng: random.Random
    ) -> float | None:
        """``None`` to drop this message, else the delay in seconds (0.0: deliver now)."""
        rules = self.outbound if direction == "outbound" else self.inbound
        if not rules:  # the common case: no faults at all
            return 0.0
        rule = rules.get(peer) or rules.get(self.ALL)
        if rule is None:
            return 0.0
        if rule.drop or (rule.loss and rng.random() < rule.loss):
            return None
        return rule.delay

    def set_rule(self, peer: NodeId, fault: LinkFault, direction: Direction = "both") -> None:
        """Install ``fault`` for ``peer`` (or ``"*"``) in one or both directions."""
        for rules in self._tables(direction):
            rules[peer] = fault

    def block(self, *peers: NodeId, direction: Direction = "both") -> None:
        """Cut the links to and/or from ``peers``."""
        for peer in peers:
            self.set_rule(peer, LinkFault(drop=True), direction)

    def clear(self, *peers: NodeId, direction: Direction = "both") -> None:
        """Remove the rules for ``peers`` (all rules if none are named)."""
        for rules in self._tables(direction):
            if not peers:
                rules.clear()
            for peer in peers:
                rules.pop(peer, None)

    def heal(self) -> None:
        """Remove every rule."""
        self.clear()

    def _tables(self, direction: Direction) -> list[dict[NodeId, LinkFault]]:
        if direction not in ("outbound", "inbound", "both"):
            raise ValueError(f"bad direction {direction!r}")
        return [
            t
            for d, t in (("outbound", self.outbound), ("inbound", self.inbound))
            if direction in (d, "both")
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot of the rules (links in name order)."""
        return {
            "outbound": to_plain(dict(sorted(self.outbound.items()))),
            "inbound": to_plain(dict(sorted(self.inbound.items()))),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultFilter:
        """Rebuild from `to_dict` output; raises ValueError on anything else."""
        return from_plain(cls, data, "fault filter")


class PersistentFaultFilter:
    """The transport's `FaultFilter`, saved to JSON after every change.

    A partition set by the scenario runner must survive the node's restart,
    or "restart the isolated node" would quietly heal it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filter = FaultFilter()
        if path.exists():
            self.filter = FaultFilter.from_dict(json.loads(path.read_text()))

    def set_rule(self, peer: NodeId, fault: LinkFault, direction: Direction = "both") -> None:
        self.filter.set_rule(peer, fault, direction)
        self._save()

    def block(self, *peers: NodeId, direction: Direction = "both") -> None:
        self.filter.block(*peers, direction=direction)
        self._save()

    def clear(self, *peers: NodeId, direction: Direction = "both") -> None:
        """Remove the rules for ``peers``; with none named, every rule (heal)."""
        self.filter.clear(*peers, direction=direction)
        self._save()

    heal = clear

    def replace(self, rules: Mapping[str, Any]) -> None:
        """Install the rules of a `FaultFilter.to_dict` object, replacing all others."""
        new = FaultFilter.from_dict(rules)
        self.filter.outbound, self.filter.inbound = new.outbound, new.inbound
        self._save()

    def to_dict(self) -> dict[str, Any]:
        return self.filter.to_dict()

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.filter.to_dict(), indent=1))
        os.replace(tmp, self.path)
