"""Raft consensus, and nothing of Swarm.

Packages, and what each may import (checked by ``tests/test_architecture.py``):

* `raft.core`    -- the sans-I/O protocol: messages, the core and its parts,
  the log, progress, quorum arithmetic, membership, reads, client sessions,
  the storage interface and its in-memory twin, and the persistence order
  both drivers follow.  Imports only itself and the standard library's pure
  modules (no asyncio, socket, time, os, threading, no module-level random).
* `raft.runtime` -- what moves the core's batches to the world in a real
  process: the asyncio node driver, the TCP/TLS transport, the msgpack codec,
  durable storage, traces.  Imports `raft.core`.
* `raft.sim`     -- the deterministic simulator and its safety checker
  (``python -m raft.sim``).  Imports `raft.core`, never `raft.runtime`.
* `raft.kv`      -- the example key-value node (``python -m raft.kv``), built
  on `raft.runtime`.

Nothing under `raft` imports `cluster`, `scenarios` or `viz`.
"""
