"""`rnnkit download`: fetch a known dataset (sha256-checked) where `rnnkit train NAME` finds it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import datasets_help, print_out

DEFAULT_DEST = Path.home() / ".cache" / "rnnkit" / "datasets"


def add_parser(subparsers: Any) -> None:
    from ..data import KNOWN_DATASETS

    p = subparsers.add_parser("download", help="fetch a known dataset (verified by sha256)",
                              description="Download a known dataset into DEST, where `rnnkit train NAME` finds "
                                          "it (or set RNNKIT_DATA=DEST).", epilog=datasets_help())
    p.add_argument("name", metavar="NAME", choices=list(KNOWN_DATASETS), help="a known dataset (listed below)")
    p.add_argument("--dest", default=str(DEFAULT_DEST), metavar="DIR",
                   help="data directory (default: ~/.cache/rnnkit/datasets)")


def run(args: argparse.Namespace) -> int:
    from ..data import KNOWN_DATASETS, download_dataset

    if KNOWN_DATASETS[args.name].builtin:
        print_out(f"{args.name} is built in (it ships with Python): nothing to download; "
                  f"use it as it is, e.g. rnnkit train {args.name} --out MODEL_DIR")
        return 0
    for path in download_dataset(args.name, Path(args.dest)):
        print_out(str(path))
    return 0
