"""`rnnkit cache`: see what the id cache holds (encoded corpora and their vocabularies, kept so
that a second run on the same files starts at once) and clear it, all of it or only the entries
whose corpus files have changed or gone. Only directories the cache itself names and fills
(`ids-HASH`, `vocab-HASH` holding a meta.json) are ever listed or removed."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .common import print_out

DESCRIPTION = """\
The id cache keeps each corpus encoded once (ids, sentence offsets, counts) in
$RNNKIT_CACHE, else ~/.cache/rnnkit/ids. `rnnkit cache` lists its entries: kind, size,
age, whether the files it was made from are unchanged, and the first of them.
`rnnkit cache clear` removes every entry; with --stale only those made from files that
changed or are gone (no run can use them again; the next encoding removes them too).
A run that is reading an entry keeps reading it after it is removed."""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("cache", help="list or clear the id cache (encoded corpora)", description=DESCRIPTION)
    p.add_argument("action", nargs="?", choices=("list", "clear"), default="list",
                   help="list the entries, or clear them (default: list)")
    p.add_argument("--stale", action="store_true",
                   help="with clear: only the entries whose corpus files changed or are gone (default: all)")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # not reached


def _age(seconds: float) -> str:
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f} {unit}"
    return f"{seconds:.0f} s"


def _source(e: Any) -> str:
    if not e.sources:
        return "-"
    return e.sources[0] + (f" (+{len(e.sources) - 1} more)" if len(e.sources) > 1 else "")


def run(args: argparse.Namespace) -> int:
    from ..data import cache
    from ..data.encode import stale

    if args.stale and args.action != "clear":
        from ..errors import ConfigError

        raise ConfigError("--stale goes with `rnnkit cache clear`")
    root = cache.cache_root()
    found = cache.entries(root)
    if args.action == "list":
        now = time.time()
        print_out(f"{root}: {len(found)} entries, {_size(sum(e.size for e in found))}")
        if found:
            print_out("kind\tsize\tage\tfiles\tmade from")
        for e in found:
            state = "stale" if stale(e.key) else "current"
            print_out(f"{e.kind}\t{_size(e.size)}\t{_age(now - e.used)} old\t{state}\t{_source(e)}")
        return 0
    gone = [e for e in found if not args.stale or stale(e.key)]
    for e in gone:
        cache.remove(e)
    print_out(f"{root}: removed {len(gone)} of {len(found)} entries, {_size(sum(e.size for e in gone))} freed")
    return 0
