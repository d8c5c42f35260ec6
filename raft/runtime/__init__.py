"""A Raft server as a real process: the core's batches moved to disks and sockets.

The asyncio node driver (`node`), the TCP transport with mutual TLS
(`transport`, `tls`, `codec`), durable storage with fsync (`disk`) and the
trace writer (`trace`).

May import: `raft.core`, the standard library, asyncio, msgpack.
Never `raft.sim`, nor anything of Swarm.
"""
