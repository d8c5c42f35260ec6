"""The leader's control loops: from the desired state to tasks on nodes.

The orchestrator (`orchestrator.ControlLoop`), the scheduler that places
tasks, the rolling updater, the dispatcher's session and assignment logic,
and the agent's task state machine.  Each is a pure step: it reads the store
and the time it is given and returns commands to propose; the manager's
duty loop does the proposing (the sans-I/O pattern one level up).
`reconciler.Reconciler` drives the orchestrator from the store's change log
(what changed since its last pass), with a full sweep now and then, cut in
chunks so that no pass holds the leader's event loop near an election
timeout; `agent.TaskWatch` does the same for a node's agent.

May import: `cluster.state` and the standard library's pure modules.  No
asyncio, aiohttp or clock.
"""
