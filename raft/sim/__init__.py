"""The deterministic simulator: several `raft.core` servers under one seed.

A hostile in-memory network (delay, loss, duplication, reordering,
partitions), crashes and restarts, and a safety checker that runs after every
batch.  ``python -m raft.sim soak`` runs many seeds; ``replay`` runs one.

May import: `raft.core` and the standard library; never `raft.runtime`
(no sockets, no files, no wall clock).
"""
