"""What one Jepsen-style run is asked to do (`scenarios.jepsen`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    duration: float = 30.0
    clients: int = 5
    seed: int = 1
    keys: int = 3
    managers: int = 5
    #: the history must hold more ok operations than this to count
    min_ok: int = 50
    keep: bool = False
    #: Netns mode (root): each manager in its own network namespace, the
    #: nemesis's partitions dropped by the kernel (`cluster.local.netns`).
    netns: bool = False
    #: where the cluster lives (default: a new temporary directory)
    cluster_dir: Path | None = None
    #: the checker's bound per key (explored states) before "undecided"
    max_states: int = 2_000_000
    #: seconds between progress lines
    progress_every: float = 2.0
