"""How tools talk to a cluster and wait on it.

`http` is the one HTTP client the CLI, the supervisor, joins, scenarios and
the benchmark use; `wait` is the one way to wait for a condition with a
deadline.

May import: the standard library only (it is imported from every side).
"""
