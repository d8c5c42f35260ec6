"""The local supervisor: one cluster on this machine, in one directory.

The directory's layout and description (`layout`), starting, stopping and
signalling the processes, the faults (kill, pause, partition), joining new
nodes (`join`), and the status every view shows (`status`).

May import: `cluster.client`, `cluster.security`, `cluster.state`,
`raft.core`, `raft.runtime`.  Never the manager's process code: it talks to
managers through their HTTP API and their configuration files.
"""
