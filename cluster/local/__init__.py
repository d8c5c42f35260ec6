"""The local supervisor: one cluster on this machine, in one directory.

`supervisor.Supervisor` is the one object the CLI, the benchmark and the
scenarios hold; it brings a cluster up and down and hands each other verb
to the module that does that job:

* `layout`     -- the directory's layout and ``cluster.json``;
* `provision`  -- a new cluster's keys and certificates, each node's config;
* `ports`      -- free ports for a new cluster, checked before every start;
* `processes`  -- starting, signalling and stopping processes by PID;
* `lookup`     -- a member by name, ID prefix or ``leader``;
* `faults`     -- kill, pause, restart, partition, heal, net loss/delay;
* `netns`      -- netns mode: each node in its own network namespace on a
  bridge, partitions and loss as nftables drops in the kernel;
* `join`       -- the newcomer's side of joining (token -> certificate);
  `newcomers`  -- the supervisor's side: ``up --workers``, ``swarm join``;
* `recovery`   -- ``swarm init --force-new-cluster``;
* `status`     -- the status every view shows.

May import: `cluster.client`, `cluster.security`, `cluster.state`,
`raft.core`, `raft.runtime`.  Never the manager's process code: it talks to
managers through their HTTP API and their configuration files.
"""
