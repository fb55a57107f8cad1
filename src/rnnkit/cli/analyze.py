"""`rnnkit analyze`: looking inside a model, one sub-command per lesson of the tutorial series.

ANALYSES below is the one list of them: name -> module, each module holding its parser
(`add_parser(subparsers)`) and its handler (`run(args) -> int`), as the commands do.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import analyze_activations, analyze_feedforward, analyze_gradients, analyze_memory
from .options import Parser

ANALYSES: dict[str, Any] = {  # name -> module, in the order `rnnkit analyze --help` lists them
    "gradients": analyze_gradients,
    "memory": analyze_memory,
    "activations": analyze_activations,
    "feedforward": analyze_feedforward,
}


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "analyze", help="look inside a model: gradients through time, memory, activations, the feed-forward net",
        description="Look inside recurrent models (and the feed-forward network the tutorial series starts "
                    "from). `rnnkit analyze ANALYSIS --help` explains each one.")
    sub = p.add_subparsers(dest="analysis", metavar="ANALYSIS", parser_class=Parser,
                           help="one of: " + (", ".join(ANALYSES) or "none yet"))
    for module in ANALYSES.values():
        module.add_parser(sub)


def run(args: argparse.Namespace) -> int:
    if args.analysis is None:
        from ..errors import ConfigError

        raise ConfigError(f"analyze: name an analysis ({', '.join(ANALYSES)}); see rnnkit analyze --help")
    return ANALYSES[args.analysis].run(args)
