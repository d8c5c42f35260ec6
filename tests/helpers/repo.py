"""Where the repository is, for tests that run its modules as processes or read its source."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELPERS = Path(__file__).resolve().parent
