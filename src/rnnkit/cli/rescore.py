"""`rnnkit rescore`: add the language model's score to each hypothesis of an ASR / MT n-best
list, rank again, and write the rescored list and the best hypothesis per id."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..inference.rescore import FORMATS as NBEST_FORMATS
from ..inference.score import LOG_BASES
from .common import (
    add_batch_size,
    add_model_argument,
    finite_float,
    input_name,
    open_output,
    progress_bar,
    read_input_lines,
)
from .options import add_engine_options

DESCRIPTION = """\
Add the LM score to each hypothesis of an n-best list:
  total = ascore + LM_WEIGHT * logprob + WORD_PENALTY * words.
Writes the rescored list (TSV: id, rank, total, ascore, lm, nwords, hypothesis) and, with
--best, the best hypothesis per id in the input's format."""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("rescore", help="rescore n-best lists (ASR / MT) with the language model",
                              description=DESCRIPTION)
    add_model_argument(p)
    p.add_argument("nbest", metavar="NBEST", help="n-best file, or - for stdin")
    p.add_argument("--nbest-format", "--format", choices=NBEST_FORMATS, default="plain",
                   help="plain: id<TAB>hyp; srilm: ascore lscore nwords words...; kaldi: uttid-N words... "
                        "(default: plain)")
    p.add_argument("--lm-weight", type=finite_float, default=1.0, metavar="X",
                   help="weight of the LM log-probability (default: 1)")
    p.add_argument("--word-penalty", type=finite_float, default=0.0, metavar="X",
                   help="added per word: an insertion penalty (default: 0)")
    p.add_argument("--log-base", choices=list(LOG_BASES), default="10",
                   help="base of the LM score (default: 10, as SRILM and Kaldi scores are)")
    p.add_argument("--output", "-o", default="-", metavar="FILE", help="the rescored list (default: - for stdout)")
    p.add_argument("--best", default=None, metavar="FILE",
                   help="also write the best hypothesis per id here, - for stdout (default: not written)")
    add_batch_size(p, 64, "hypotheses")
    add_engine_options(p)


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..inference.rescore import format_best, format_rescored, parse_nbest

    hyps = parse_nbest(read_input_lines(args.nbest), args.nbest_format, input_name(args.nbest))
    first = {}
    for h in hyps:
        first.setdefault(h.id, h.line)
    lm = api.load(args.model, engine=args.engine, device=args.device)
    with progress_bar(len(hyps), "rescoring") as update:
        groups = lm.rescore(hyps, lm_weight=args.lm_weight, word_penalty=args.word_penalty, log_base=args.log_base,
                            batch_size=args.batch_size, progress=update)
    with open_output(args.output) as out:
        out.write("\n".join(format_rescored(groups)) + "\n")
    if args.best:
        with open_output(args.best) as out:
            out.write("\n".join(format_best(groups, args.nbest_format)) + "\n")
    changed = sum(g[0].line != first[uid] for uid, g in groups.items())
    print(f"rescored {len(hyps)} hypotheses for {len(groups)} id(s); the best changed for {changed} of them",
          file=sys.stderr)
    return 0
