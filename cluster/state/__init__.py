"""The replicated Swarm state: what every manager's Raft log is applied to.

Objects (`objects`), the `store` that applies commands, one transaction per
command (`txn`), the handlers of each command (`handlers`), the commands a
proposer builds (`commands`) and the errors they answer with (`errors`).
Deterministic: applying a command reads no clock, draws no random number and
does no I/O, so every manager computes the same state (§5.3).

May import: `cluster.security` (secrets are sealed in the store),
`raft.core`, the standard library's pure modules, msgpack.  No asyncio,
aiohttp or clock.
"""
