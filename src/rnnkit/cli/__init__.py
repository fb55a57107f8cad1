"""The `rnnkit` command: the table of subcommands, and `main(argv) -> int`.

Each subcommand is one module of this package holding its parser, `add_parser(subparsers)`,
and its handler, `run(args) -> int`; COMMANDS below is the one list of them. Modules import
numpy models, torch and matplotlib inside `run`, so `rnnkit --help` stays fast. An
RnnkitError becomes one line on stderr (`rnnkit: error: ...`) and exit status 1 (so does, as a
last resort, an OSError that escaped rnnkit.files); bad usage is argparse's exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import RnnkitError
from . import (
    analyze,
    cache,
    demo,
    download,
    evaluate,
    export,
    generate,
    gradcheck,
    lattice,
    mix_weight,
    plot,
    predict,
    rescore,
    score,
    serve,
    train,
)
from .options import HelpFormatter, Parser

COMMANDS = {  # name -> module, in the order `rnnkit --help` lists them
    "train": train,
    "eval": evaluate,
    "score": score,
    "rescore": rescore,
    "lattice": lattice,
    "mix-weight": mix_weight,
    "generate": generate,
    "predict": predict,
    "serve": serve,
    "export": export,
    "plot": plot,
    "download": download,
    "cache": cache,
    "gradcheck": gradcheck,
    "analyze": analyze,
    "demo": demo,
}

EPILOG = """examples:
  rnnkit demo                                   train a small model offline and try it
  rnnkit train ptb --out ptb-model --recipe ptb-small
  rnnkit train corpus.txt --out model --cell gru --hidden-dim 256 --epochs 10
  rnnkit eval model test.txt                    perplexity on a file
  echo "the cat sat on the mat" | rnnkit score model - --log-base 10
  rnnkit generate model --prompt "the" --num-samples 3 --temperature 0.8
  rnnkit gradcheck --cell lstm --num-layers 2   verify backpropagation through time

`rnnkit COMMAND --help` explains every option of a command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit", description="Recurrent-neural-network language models: train, evaluate, score, generate.",
        epilog=EPILOG, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS.values():
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command].run(args)
    except RnnkitError as e:
        print(f"rnnkit: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnnkit score ... | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as e:  # the last resort: every writer goes through rnnkit.files, but a path missed is still one line
        from ..files import os_problem

        where = f"{e.filename}: " if e.filename else ""
        print(f"rnnkit: error: {where}{os_problem(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
