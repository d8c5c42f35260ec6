"""The Raft protocol with no I/O: messages in, a batch of effects out.

`raft.core.protocol.RaftCore` is the state machine; its module docstring is
the theory of operation and the output contract.  Everything here is pure:
no sockets, files, clocks, threads, event loop or randomness of its own (a
seeded `random.Random` is passed in), so the same code runs in real processes
(`raft.runtime`) and in the simulator (`raft.sim`).

May import: the standard library's pure modules, msgpack, and `raft.core`.
"""
