"""``python -m cluster.web --dir DIR [--port P]``: the live web view's process."""

import argparse
import sys
from pathlib import Path

from cluster.local.layout import ClusterError, resolve_dir
from cluster.web.process import run_foreground

parser = argparse.ArgumentParser(prog="python -m cluster.web", description=__doc__)
parser.add_argument("--dir", help="the cluster's directory (default: $CLUSTER_DIR or ./.cluster)")
parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free)")
args = parser.parse_args()
try:
    sys.exit(run_foreground(Path(resolve_dir(args.dir)), args.port))
except ClusterError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
