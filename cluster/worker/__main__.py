"""The process of a worker agent: ``python -m cluster.worker --config DIR/workerN/config.json``."""

import sys

from cluster.worker.process import main

sys.exit(main())
