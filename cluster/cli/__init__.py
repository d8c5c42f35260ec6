"""``python -m cluster``: the verbs, the tables and the live terminal view.

`main` (parser and lifecycle, faults), `docker` (the docker verbs), `nodes`,
`services`, `secrets`, `api` (the CLI's view of a manager's API), `format`
(tables and JSON), `watch` (the live status view).  A user mistake is one
line on stderr, never a traceback.

May import: `cluster.client`, `cluster.local`, `cluster.state` (formatting
helpers), `cluster.bench`, `cluster.web` (``web``, and ``up`` in the foreground).
"""
