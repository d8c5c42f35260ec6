"""``python -m raft.sim``: soak many seeds, or replay one (see `raft.sim.simulator`)."""

import sys

from raft.sim.simulator import main

sys.exit(main())
