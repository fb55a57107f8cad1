"""`rnnkit plot`: training and validation curves of a run to a PNG."""

from __future__ import annotations

import argparse
from typing import Any

from .common import print_out


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("plot", help="draw training and validation curves to a PNG",
                              description="Plot perplexity (word models) or bits per character (character "
                                          "models) against tokens seen and wall time, from RUN_DIR/metrics.jsonl.")
    p.add_argument("run", metavar="RUN_DIR", help="a training output directory (the --out of rnnkit train)")
    p.add_argument("--output", "-o", default=None, metavar="PNG", help="where to write (default: RUN_DIR/curves.png)")


def run(args: argparse.Namespace) -> int:
    from ..training.curves import plot_run  # matplotlib

    print_out(str(plot_run(args.run, args.output)))
    return 0
