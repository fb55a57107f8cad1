"""Command-line interface: parse, call the library, print. No model logic lives here.

Every subcommand is `main(argv) -> int`-testable; an RnnkitError becomes one line on stderr
(`rnnkit: error: ...`) and exit status 1; bad usage is argparse's exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import RnnkitError

EPILOG = """examples:
  rnnkit demo                                   train a small model offline and try it
  rnnkit train ptb --out ptb-model --recipe ptb-small
  rnnkit train corpus.txt --out model --cell gru --hidden 256 --epochs 10
  rnnkit eval model test.txt                    perplexity on a file
  echo "the cat sat on the mat" | rnnkit score model - --log-base 10
  rnnkit generate model --prompt "the" --num-samples 3 --temperature 0.8
  rnnkit gradcheck --cell lstm --layers 2       verify backpropagation through time
"""


def _number(cast: type, minimum: float | None = None):
    """An argparse type: `cast` the text, refuse NaN / Inf and values below `minimum`."""
    what = "a whole number" if cast is int else "a number"

    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if minimum is not None and v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v

    return parse


_positive_int, _nonneg_int, _finite_float = _number(int, 1), _number(int, 0), _number(float)


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=["numpy", "torch"], default="numpy", help="numpy (no torch needed) or torch (default: numpy)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto", help="torch engine: where to run (default: auto)")


def build_parser() -> argparse.ArgumentParser:
    from .train import add_train_parser

    parser = argparse.ArgumentParser(
        prog="rnnkit", description="Recurrent-neural-network language models: train, evaluate, score, generate.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    add_train_parser(sub)

    p = sub.add_parser("eval", help="perplexity of a model on a text file",
                       description="Perplexity (and bits per character for character models) of MODEL_DIR on FILE.")
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("file", metavar="FILE", help="a text file or a known dataset split such as ptb:test")
    p.add_argument("--mode", choices=["sentences", "stream"], default=None,
                   help="sentences: state reset per line; stream: state carried across lines as in PTB results "
                        "(default: how the model was trained)")
    p.add_argument("--format", dest="corpus_format", choices=["auto", "lines", "text", "ptb", "csv"], default="auto")
    p.add_argument("--batch-size", type=_positive_int, default=10)
    _engine_args(p)

    p = sub.add_parser("score", help="log-probability of each sentence (KenLM / SRILM style)",
                       description="Score each line of FILE (or stdin with -): log-probability, token count and "
                                   "perplexity per sentence; corpus totals on stderr.")
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("file", metavar="FILE", nargs="?", default="-", help="one sentence per line; - for stdin (default)")
    p.add_argument("--format", choices=["text", "jsonl", "srilm"], default="text",
                   help="text: TSV per sentence; jsonl: one object per sentence; srilm: ngram -ppl summary")
    p.add_argument("--per-token", action="store_true", help="show each token's log-probability")
    p.add_argument("--log-base", choices=["e", "10", "2"], default=None,
                   help="base of printed logs (default e, or 10 with --format srilm, whose logprob= is always log10 "
                        "as SRILM prints it)")
    p.add_argument("--bos", action=argparse.BooleanOptionalAction, default=True, help="condition the first word on <s> (default on)")
    p.add_argument("--eos", action=argparse.BooleanOptionalAction, default=True, help="predict </s> at the end (default on)")
    p.add_argument("--oov", choices=["unk", "skip"], default="unk", help="unk: score unknown words as <unk>; skip: leave them out (SRILM)")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--output", "-o", default="-", help="output file (default stdout)")
    _engine_args(p)

    p = sub.add_parser("rescore", help="rescore n-best lists (ASR / MT) with the language model",
                       description="Add the LM score to each hypothesis of an n-best list: total = ascore + "
                                   "LM_WEIGHT * logprob + WORD_PENALTY * words. Writes the rescored list (TSV: id, "
                                   "rank, total, ascore, lm, nwords, hypothesis) and, with --best, the best "
                                   "hypothesis per id.")
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("nbest", metavar="NBEST", help="n-best file, or - for stdin")
    p.add_argument("--format", choices=["plain", "srilm", "kaldi"], default="plain",
                   help="plain: id<TAB>hyp; srilm: ascore lscore nwords words...; kaldi: uttid-N words...")
    p.add_argument("--lm-weight", type=_finite_float, default=1.0, help="weight of the LM log-probability (default 1)")
    p.add_argument("--word-penalty", type=_finite_float, default=0.0, help="added per word (insertion penalty; default 0)")
    p.add_argument("--log-base", choices=["e", "10", "2"], default="10", help="base of the LM score (default 10, as SRILM/Kaldi)")
    p.add_argument("--output", "-o", default="-", help="rescored list (default stdout)")
    p.add_argument("--best", default=None, help="write the best hypothesis per id here (- for stdout)")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    _engine_args(p)

    p = sub.add_parser("plot", help="draw training and validation curves to a PNG",
                       description="Plot perplexity (word models) or bits per character (character models) "
                                   "against tokens seen and wall time, from RUN_DIR/metrics.jsonl.")
    p.add_argument("run", metavar="RUN_DIR", help="a training output directory (the --out of rnnkit train)")
    p.add_argument("--output", "-o", default=None, help="PNG path (default RUN_DIR/curves.png)")

    p = sub.add_parser("download", help="fetch a known dataset (verified by sha256)",
                       description="Download a known dataset into DEST (default ~/.cache/rnnkit/datasets), "
                                   "where `rnnkit train NAME` finds it.")
    p.add_argument("name", metavar="NAME", help="ptb, tinyshakespeare, reddit, wikitext-2")
    p.add_argument("--dest", default=None, help="data directory (default ~/.cache/rnnkit/datasets)")

    p = sub.add_parser("generate", help="sample text from a model",
                       description="Generate text from <s> (or continue --prompt) until </s> or --max-len tokens.")
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--temperature", type=_finite_float, default=1.0, help="> 1 more random, < 1 more conservative")
    p.add_argument("--top-k", type=_nonneg_int, default=0, help="sample among the k most likely tokens (0 = all)")
    p.add_argument("--top-p", type=_finite_float, default=1.0, help="nucleus sampling mass (1 = off)")
    p.add_argument("--greedy", action="store_true", help="always take the most likely token")
    p.add_argument("--beam", type=_nonneg_int, default=0, help="beam search width (0 = sample)")
    p.add_argument("--length-penalty", type=_finite_float, default=1.0, help="beam: score / length**alpha")
    p.add_argument("--max-len", type=_positive_int, default=None, help="maximum new tokens (default 50 words / 500 characters)")
    p.add_argument("--min-len", type=_nonneg_int, default=0, help="no </s> before this many tokens")
    p.add_argument("--num-samples", "-n", type=_positive_int, default=1)
    p.add_argument("--seed", type=int, default=None, help="same seed, same output")
    p.add_argument("--stop", action="append", default=[], help="stop when the text ends with this string (repeatable)")
    _engine_args(p)

    p = sub.add_parser("demo", help="train a small model offline in about a minute and try it",
                       description="Trains a word-level model on the Python documentation that ships with CPython "
                                   "(no downloads), then evaluates, generates and scores with it.")
    p.add_argument("--out", default="rnnkit-demo-model", help="where to save the model (default ./rnnkit-demo-model)")
    p.add_argument("--minutes", type=_finite_float, default=1.0, help="training time budget (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _engine_args(p)

    p = sub.add_parser("gradcheck", help="check backpropagation through time against finite differences",
                       description="Float64 centred-difference gradient check of every parameter of a small "
                                   "random model; prints the worst relative error per parameter.")
    p.add_argument("--cell", choices=["rnn", "gru", "lstm"], default="rnn")
    p.add_argument("--nonlinearity", choices=["tanh", "relu"], default="tanh")
    p.add_argument("--layers", type=_positive_int, default=1)
    p.add_argument("--tied", action="store_true", help="tie the decoder to the embedding")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tolerance", type=_finite_float, default=1e-6)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from . import commands as cli_commands

    handler = getattr(cli_commands, f"cmd_{args.command}")
    try:
        return handler(args)
    except RnnkitError as e:
        print(f"rnnkit: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnnkit score ... | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
