"""A Raft server as a real process: the core's batches moved to disks and sockets.

The asyncio node driver (`node`, with its `settings`, its waiting `clients`,
the `persister` that writes and fsyncs each batch, the `applier`, and the
factories of its storage and transport, `backends`), the TCP
transport with mutual TLS (`transport`, `handshake`, `links`, `faults`,
`tls`, `codec`), durable storage with fsync (`disk`, its bytes encoded by
`diskformat`, read back at recovery by `diskread`), the trace writer
(`trace`), settings read from JSON by their type hints (`plain`), the event
loop chosen (`eventloop`), and two test-only hooks: a disk
whose power a test can cut (`powercut`), and one a test can fill, slow down
or make fail its fsync (`faultydisk`).

May import: `raft.core`, the standard library, asyncio, msgpack.
Never `raft.sim`, nor anything of Swarm.
"""
