"""A Swarm manager's process.

python -m cluster.manager --config DIR/managerN/config.json
"""

import sys

from cluster.manager.process import main

sys.exit(main())
