"""A Raft server as a real process: the core's batches moved to disks and sockets.

The asyncio node driver (`node`, with its `settings`, its waiting `clients`
and the factories of its storage and transport, `backends`), the TCP
transport with mutual TLS (`transport`, `handshake`, `links`, `faults`,
`tls`, `codec`), durable storage with fsync (`disk`, its bytes encoded by
`diskformat`), the trace writer (`trace`), and two test-only hooks: a disk
whose power a test can cut (`powercut`), and one a test can fill, slow down
or make fail its fsync (`faultydisk`).

May import: `raft.core`, the standard library, asyncio, msgpack.
Never `raft.sim`, nor anything of Swarm.
"""
