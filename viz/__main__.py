"""``python -m viz DIR [--out OUTDIR]``: draw every figure for a trace directory.

``python -m viz replay DIR [--out FILE]``: write the replay page of a trace
directory (default ``DIR/replay.html``), one self-contained HTML file.

Prints the path of each file written, one a line.  Errors are one line on
stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from viz.model import TraceError, read_model


def replay_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m viz replay", description="Write the replay page of a trace directory."
    )
    parser.add_argument("dir", type=Path, help="trace directory (holds */trace.jsonl)")
    parser.add_argument("--out", type=Path, help="the page to write (default: DIR/replay.html)")
    parser.add_argument("--title", default="", help="the page's title")
    args = parser.parse_args(argv)
    from viz.replay import write_replay

    out = args.out or args.dir / "replay.html"
    try:
        path = write_replay(args.dir, out, args.title or f"replay of {args.dir.resolve().name}")
    except (TraceError, OSError) as e:
        print(f"viz: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replay"]:
        return replay_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m viz", description="Draw the figures of a swarmraft trace directory."
    )
    parser.add_argument("dir", type=Path, help="trace directory (holds */trace.jsonl)")
    parser.add_argument("--out", type=Path, help="where to write figures (default: DIR/figures)")
    parser.add_argument(
        "--format",
        action="append",
        choices=("png", "svg", "pdf"),
        help="output format, repeatable (default: png and svg)",
    )
    args = parser.parse_args(argv)
    try:
        model = read_model(args.dir)
    except (TraceError, OSError) as e:
        print(f"viz: {e}", file=sys.stderr)
        return 1
    for w in model.warnings:
        print(f"viz: warning: {w}", file=sys.stderr)
    from viz.figures import render_all  # matplotlib only once there is something to draw

    out = args.out or args.dir / "figures"
    try:
        paths = render_all(model, out, args.format or ("png", "svg"))
    except OSError as e:
        print(f"viz: cannot write figures to {out}: {e.strerror or e}", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
