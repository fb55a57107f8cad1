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
from ..inference.context import DEFAULT_CONV_SEP
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
from .rescore_tune import add_tune_arguments, check_tune_options, resolve_weights, run_tune

DESCRIPTION = """\
Add the LM score to each hypothesis of an n-best list:
  total = ascore + LM_WEIGHT * logprob + WORD_PENALTY * words.
Writes the rescored list (TSV: id, rank, total, ascore, lm, nwords, hypothesis) and, with
--best, the best hypothesis per id in the input's format. With --mix-lm the logprob is the
RNN interpolated with an ARPA n-gram model per token. --tune REFERENCES finds the weights of
lowest WER on a dev n-best set first (docs/tuning.md); --weights FILE reuses them."""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("rescore", help="rescore n-best lists (ASR / MT) with the language model",
                              description=DESCRIPTION)
    add_model_argument(p)
    p.add_argument("nbest", metavar="NBEST", help="n-best file, or - for stdin")
    p.add_argument("--nbest-format", "--format", choices=NBEST_FORMATS, default="plain",
                   help="plain: id<TAB>hyp; scored: id<TAB>ascore<TAB>hyp; srilm: ascore lscore nwords words... (one "
                        "utterance per file); kaldi: uttid-N words... (no acoustic scores: paste Kaldi's into scored) "
                        "(default: plain)")
    p.add_argument("--lm-weight", type=finite_float, default=None, metavar="X",
                   help="weight of the LM log-probability (default: 1, or the --weights file's)")
    p.add_argument("--word-penalty", type=finite_float, default=None, metavar="X",
                   help="added per word: an insertion penalty (default: 0, or the --weights file's)")
    p.add_argument("--log-base", choices=list(LOG_BASES), default=None,
                   help="base of the LM score (default: 10, as SRILM and Kaldi scores are, or the --weights file's)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="read the LM weight, word penalty, lambda and log base from a file written by "
                        "--save-weights; an option given on the command line wins over the file (default: none)")
    p.add_argument("--mix-lm", default=None, metavar="FILE.arpa",
                   help="interpolate the RNN with this ARPA n-gram model per token, in probability space "
                        "(default: none, the RNN alone)")
    p.add_argument("--lambda", dest="lam", type=finite_float, default=None, metavar="L",
                   help="with --mix-lm: the RNN's weight in [0, 1] (default: 0.5, or the --weights file's)")
    p.add_argument("--carry-context", action="store_true",
                   help="start each id's hypotheses from the hidden state after the previous id's best "
                        "hypothesis, within a conversation (default: off, every hypothesis from <s> alone)")
    p.add_argument("--utt2conv", default=None, metavar="FILE",
                   help="with --carry-context: 'uttid conversation' lines naming each id's conversation "
                        "(default: none, the --conv-sep rule)")
    p.add_argument("--conv-sep", default=DEFAULT_CONV_SEP, metavar="SEP",
                   help="with --carry-context and no --utt2conv: an id's conversation is the id up to its last "
                        f"SEP, the whole id when it has none (default: {DEFAULT_CONV_SEP})")
    add_tune_arguments(p)
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

    check_tune_options(args)
    weights, log_base = resolve_weights(args)
    mix_lm = _arpa(args.mix_lm)
    source = input_name(args.nbest)
    hyps = started(_hypotheses(args, source))
    lm = api.load(args.model, engine=args.engine, device=args.device)
    if args.tune:
        return run_tune(args, lm, hyps, weights, log_base, mix_lm, source, _write, _best_output)
    mix = None if mix_lm is None else _mix(mix_lm, weights.lam)
    with progress_bar(None, "rescoring") as update:
        groups = lm.rescore_iter(hyps, lm_weight=weights.lm_weight, word_penalty=weights.word_penalty,
                                 log_base=log_base, batch_size=args.batch_size, chunk_sentences=CHUNK_SENTENCES,
                                 progress=update, source=source, mix=mix, carry_context=args.carry_context,
                                 conversation=_conversation(args))
        groups = started(groups)  # the first id done before the outputs are opened
        with open_output(args.output) as out, _best_output(args) as best:
            hyps_n, ids, changed = _write(groups, out, best, args.nbest_format)
    print(f"rescored {hyps_n} hypotheses for {ids} id(s); the best changed for {changed} of them", file=sys.stderr)
    return 0


def _hypotheses(args: argparse.Namespace, source: str) -> Iterator[Any]:
    from ..inference.rescore import iter_nbest

    return iter_nbest(input_lines(args.nbest), args.nbest_format, source)


def _arpa(path: str | None) -> Any:
    """The --mix-lm model (read before the RNN is loaded: a bad file fails fast), or None."""
    if path is None:
        return None
    from ..ngram import read_arpa

    return read_arpa(path)


def _mix(arpa: Any, lam: float | None) -> Any:
    from ..inference.rescore import Mix

    return Mix(arpa, 0.5 if lam is None else lam)


def _conversation(args: argparse.Namespace) -> Any:
    """The id -> conversation rule of --carry-context (--utt2conv's map, else --conv-sep's)."""
    if not args.carry_context:
        return None
    from ..inference.context import conversation_rule, read_utt2conv

    utt2conv = read_utt2conv(input_lines(args.utt2conv), args.utt2conv) if args.utt2conv else None
    return conversation_rule(utt2conv, args.conv_sep, args.utt2conv or "--utt2conv")
