"""The Swarm manager built on `raft`: packages by concern.

Read from the bottom up; each package's docstring says what it may import
(checked by ``tests/test_architecture.py``):

* `cluster.state`    -- the replicated state: objects, the store, one
  transaction per command, the handlers, the commands proposers build.  Pure.
* `cluster.control`  -- the control loops that turn the state into work:
  orchestrator, scheduler, rolling updater, dispatcher, the agent's task
  logic.  Pure; time is passed in.
* `cluster.security` -- secrets' encryption, the PKI, sealed node keys.
* `cluster.api`      -- the aiohttp apps: the users' Docker-shaped API and the
  swarm port, behind the `Backend` protocol.
* `cluster.manager`  -- the manager process (``python -m cluster.manager``).
* `cluster.worker`   -- the worker agent process (``python -m cluster.worker``).
* `cluster.client`   -- the one HTTP client the CLI, scenarios and bench use.
* `cluster.local`    -- the local supervisor: the cluster directory's layout,
  starting and stopping processes, faults, joins, status.
* `cluster.cli`      -- ``python -m cluster``: the verbs, tables, the live view.
* `cluster.web`      -- ``python -m cluster web``: the live web view's process.
* `cluster.bench`    -- ``python -m cluster bench`` and its load generator.
"""
