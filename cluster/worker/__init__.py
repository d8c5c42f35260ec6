"""The worker agent process: no Raft state, only tasks.

``python -m cluster.worker --config DIR/workerN/config.json``.  It talks to the
managers' swarm port over mutual TLS and runs its tasks' state machine
(`cluster.control.agent`).

May import: `cluster.control`, `cluster.security`, `cluster.client`,
`raft.runtime`.
"""
