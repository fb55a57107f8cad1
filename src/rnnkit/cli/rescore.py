"""`rnnkit rescore`: add the language model's score to each hypothesis of an ASR / MT n-best
list, rank again, and write the rescored list and the best hypothesis per id. Streams: an id's
hypotheses are consecutive in every format, so each id is scored, ranked and written as soon
as its last hypothesis is read and scored; the counts on stderr are running counts."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from .. import files
from ..inference.rescore import FORMATS as NBEST_FORMATS
from ..inference.score import CHUNK_SENTENCES, LOG_BASES
from .common import (
    add_batch_size,
    add_model_argument,
    finite_float,
    input_lines,
    input_name,
    open_output,
    progress_bar,
    started,
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


@contextmanager
def _best_output(args: argparse.Namespace) -> Iterator[TextIO | None]:
    """Where --best goes: None without it; when it and the rescored list are both stdout, a
    temporary file copied to stdout at the end (the rescored list first, as one block)."""
    if not args.best:
        yield None
    elif args.best == "-" and args.output == "-":
        where = f"{tempfile.gettempdir()} (a temporary file for --best)"
        with files.writing(where):
            tmp = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed below)
        with tmp:
            yield files.OutputFile(tmp, where)
            with files.writing(where):
                tmp.seek(0)
            shutil.copyfileobj(tmp, files.OutputFile(sys.stdout, "<stdout>"))
    else:
        with open_output(args.best) as f:
            yield f


def _write(groups: Iterable[tuple[str, list[Any]]], out: TextIO, best: TextIO | None, fmt: str) -> tuple[int, int, int]:
    """Each id's rescored lines (and best line) as the id is done, flushed; returns the counts
    of hypotheses, ids, and ids whose best is not their first hypothesis."""
    from ..inference.rescore import best_line, rescored_lines

    hyps = ids = changed = 0
    for uid, group in groups:
        out.write("".join(line + "\n" for line in rescored_lines(uid, group)))
        out.flush()
        if best is not None:
            best.write(best_line(uid, group, fmt) + "\n")
            best.flush()
        hyps, ids = hyps + len(group), ids + 1
        changed += group[0].line != min(h.line for h in group)
    return hyps, ids, changed


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..inference.rescore import iter_nbest

    source = input_name(args.nbest)
    hyps = started(iter_nbest(input_lines(args.nbest), args.nbest_format, source))
    lm = api.load(args.model, engine=args.engine, device=args.device)
    with progress_bar(None, "rescoring") as update:
        groups = lm.rescore_iter(hyps, lm_weight=args.lm_weight, word_penalty=args.word_penalty,
                                 log_base=args.log_base, batch_size=args.batch_size, chunk_sentences=CHUNK_SENTENCES,
                                 progress=update, source=source)
        groups = started(groups)  # the first id done before the outputs are opened
        with open_output(args.output) as out, _best_output(args) as best:
            hyps_n, ids, changed = _write(groups, out, best, args.nbest_format)
    print(f"rescored {hyps_n} hypotheses for {ids} id(s); the best changed for {changed} of them", file=sys.stderr)
    return 0
