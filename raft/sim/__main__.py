"""``python -m raft.sim``: soak many seeds, or replay one (see `raft.sim.soak`)."""

import sys

from raft.sim.soak import main

sys.exit(main())
