"""The manager process: a Raft node whose state machine is the Swarm store.

``python -m cluster.manager --config DIR/managerN/config.json``.  It owns the
`raft.runtime.node.RaftNode`, serves `cluster.api`, runs the leader's control
loops and learns the managers that join (`joins`).

May import: `cluster.state`, `cluster.control`, `cluster.security`,
`cluster.api`, `raft.core`, `raft.runtime`.
"""
