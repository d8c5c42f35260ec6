"""The deterministic simulator: several `raft.core` servers under one seed.

A hostile in-memory network (delay, loss, duplication, reordering,
partitions), disks that lose what was not synced when a node crashes
(`node`), crashes between events and between the steps of the persistence
order, restarts, and a safety checker (`checker`) that runs after every
batch (`simulator`).  ``python -m raft.sim soak`` runs many seeds; ``replay``
runs one (`soak`).

May import: `raft.core` and the standard library; never `raft.runtime`
(no sockets, no files, no wall clock).
"""
