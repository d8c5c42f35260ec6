"""The live web view: ``python -m cluster web`` shows the cluster in a browser.

A process of its own (never a manager, so it survives any manager's death)
that watches the cluster in ``--dir`` the way the CLI does -- each manager's
``/raft/status``, the leader's Swarm objects, the nodes' trace files -- and
serves one page (`viz.web`) that redraws it a few times a second.  Its buttons
run the CLI's own verbs (`actions`) and show the equivalent
``python -m cluster`` and Docker commands.

`state` gathers (asyncio, bounded timeouts: a paused manager never stalls the
view), `actions` acts, `server` is the aiohttp app bound to 127.0.0.1, and
`process` starts and stops the server as a child of ``up`` and ``down``.

May import: `cluster.local`, `cluster.client`, `viz.web` (the page),
aiohttp.  The buttons run the CLI as a command (``python -m cluster ...``),
never its code in this process, so `cluster.cli` may import this package.
"""
