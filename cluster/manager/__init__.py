"""The manager process: a Raft node whose state machine is the Swarm store.

``python -m cluster.manager --config DIR/managerN/config.json``.  Modules by
job, each a small object given what it needs when it is made:

* `process`  -- the entry point and lifecycle (``serve``, ``main``), and
  `process.Manager`, which builds the Raft node and the pieces below and is
  what the API is given (`cluster.api.backend.Backend`), by delegation;
* `settings` -- the ``config.json`` it runs with;
* `peers`    -- the managers it knows, shared by every piece;
* `machine`  -- the `Store` as Raft's state machine; `bench` -- the entries
  and the loop of ``POST /raft/bench`` (Raft alone, no store);
* `backend`  -- writes in a client session (exactly once, §6.3), read
  barriers, leadership transfer: the API's conversation with Raft;
* `keyring`  -- the data key, the key files, autolock and unlock;
* `duties`   -- the leader's loop: bootstrap, membership (learners,
  promotion, demotion), managers' and workers' status, orchestration;
* `joins`    -- the root CA and the managers' addresses, from the store, and
  abandoned manager joins;
* `certs`    -- renewing our own certificate through the leader's swarm port;
* `rotation` -- ``swarm ca --rotate``: the root CA replaced, in phases;
* `tasks`    -- the manager's own agent (managers run tasks too);
* `status`   -- ``/raft/status`` and ``/info``.

May import: `cluster.state`, `cluster.control`, `cluster.security`,
`cluster.api`, `raft.core`, `raft.runtime`.
"""
