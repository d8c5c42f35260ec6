"""The role a node certificate states in its OU: who may take part in Raft, who may only work.

A module of its own, with no ``cryptography`` in it, so that code which only
*compares* roles (the swarm port's routes, in every manager) does not load
the certificate machinery of `cluster.security.pki` (about 9 MB of memory).
"""

from __future__ import annotations

from raft.runtime.tls import MANAGER_ROLE

__all__ = ["MANAGER_ROLE", "WORKER_ROLE"]

#: The OU of a worker's certificate (a manager's is `MANAGER_ROLE`, from the transport).
WORKER_ROLE = "swarm-worker"
