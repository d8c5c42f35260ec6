"""The aiohttp apps every manager serves, on 127.0.0.1.

The users' Docker-shaped API (`server`, `routes`, `schema`, `common`) and the
swarm port where nodes join and workers talk over mutual TLS (`swarm`).  Both
reach the manager only through the `backend.Backend` protocol, so tests run
them against an in-memory fake.

May import: `cluster.state`, `cluster.control`, `cluster.security`,
`raft.core`, `raft.runtime`, aiohttp.
"""
