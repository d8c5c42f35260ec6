"""The one HTTP client: how the CLI, scenarios, joins and the bench call a manager.

May import: the standard library only (it is imported from every side).
"""
