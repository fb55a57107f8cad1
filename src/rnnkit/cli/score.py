"""`rnnkit score`: log-probability, token count and perplexity of each input line, KenLM / SRILM
style, as text, JSON lines or SRILM's `ngram -ppl` output (`--debug 0|1|2`: the file's totals;
also each sentence; also each word's `p( w | context )` line, which `compute-best-mix` reads). Streams: the input is read and
scored a chunk of sentences at a time and each chunk's lines are written (and flushed) as soon
as they are computed; the totals are running sums, printed at the end."""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from ..errors import ConfigError
from ..files import dumps
from ..inference.score import CHUNK_SENTENCES, LOG_BASES, UNK_NAME
from .common import (
    add_batch_size,
    add_model_argument,
    input_lines,
    input_name,
    open_output,
    progress_bar,
    started,
)
from .options import add_engine_options

OUTPUT_FORMATS = ("text", "jsonl", "srilm")
OOV_POLICIES = ("unk", "skip")
DEBUG_LEVELS = (0, 1, 2)
SRILM_TAG = "[rnn]"  # where ngram writes [2gram] / [OOV]: what gave the probability


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("score", help="log-probability of each sentence (KenLM / SRILM style)",
                              description="Score each line of FILE (or stdin with -): log-probability, token "
                                          "count and perplexity per sentence; corpus totals on stderr.")
    add_model_argument(p)
    p.add_argument("file", metavar="FILE", nargs="?", default="-", help="one sentence per line; - for stdin (default)")
    p.add_argument("--output-format", "--format", choices=OUTPUT_FORMATS, default="text",
                   help="text: logprob<TAB>tokens<TAB>ppl<TAB>sentence; jsonl: one object per sentence; srilm: "
                        "SRILM's ngram -ppl output, see --debug (default: text)")
    p.add_argument("--per-token", action="store_true",
                   help="also each token's log-probability; with --output-format srilm it means --debug 2 "
                        "(default: off)")
    p.add_argument("--debug", type=int, choices=DEBUG_LEVELS, default=None,
                   help="--output-format srilm only, as ngram -ppl -debug N: 0 the file's totals; 1 also each "
                        "sentence, then its totals and a blank line; 2 also, before them, a "
                        "'p( w | context ) = [rnn] P [ log10 P ]' line per predicted token "
                        "(default: 0, or 2 with --per-token)")
    p.add_argument("--log-base", choices=list(LOG_BASES), default=None,
                   help="base of the printed logs (default: e; 10 with --output-format srilm, whose logprob= "
                        "is always log10 as SRILM prints it)")
    p.add_argument("--bos", action=argparse.BooleanOptionalAction, default=True,
                   help="condition the first word on <s>; --no-bos makes it context only (default: on)")
    p.add_argument("--eos", action=argparse.BooleanOptionalAction, default=True,
                   help="predict </s> at the end of each sentence; a line that ends in a literal </s> has it "
                        "predicted once either way (default: on)")
    p.add_argument("--oov", choices=OOV_POLICIES, default="unk",
                   help="unk: score unknown words as <unk>, as words (SRILM's -unk); skip: leave them out as "
                        "OOVs, out of ppl's denominators (SRILM without -unk) (default: unk)")
    add_batch_size(p, 64)
    p.add_argument("--output", "-o", default="-", metavar="FILE", help="output file (default: - for stdout)")
    add_engine_options(p)


def _log_base(args: argparse.Namespace) -> str:
    if args.output_format == "srilm" and args.log_base not in (None, "10"):
        # SRILM's logprob= is log10 by definition: that is what ngram -ppl prints and its tools read
        raise ConfigError(f"--log-base: --output-format srilm prints log10 (SRILM's logprob=); "
                          f"--log-base {args.log_base} cannot be used with it")
    return args.log_base or ("10" if args.output_format == "srilm" else "e")


def _debug_level(args: argparse.Namespace) -> int:
    """--debug, checked against the format and --per-token (which is debug 2 in SRILM's format)."""
    if args.output_format != "srilm":
        if args.debug is not None:
            raise ConfigError(f"--debug: SRILM's debug levels need --output-format srilm, "
                              f"not {args.output_format}")
        return 0
    if args.per_token and args.debug not in (None, 2):
        raise ConfigError(f"--debug: --per-token with --output-format srilm is --debug 2; "
                          f"--debug {args.debug} cannot be used with it")
    return 2 if args.per_token else (args.debug or 0)


def _g(x: float) -> str:
    """A number as ngram prints it (C++ stream default: 6 significant digits); undefined for NaN."""
    return "undefined" if math.isnan(x) else f"{x:.6g}"


def _write_srilm_stats(out: TextIO, summ: Any, lb: Callable[[float], float], head: str = "") -> None:
    out.write(f"{head}{summ.sentences} sentences, {summ.words} words, {summ.oovs} OOVs\n")
    if summ.sentences + summ.words:  # ngram prints no numbers for no input
        out.write(f"0 zeroprobs, logprob= {_g(lb(summ.logprob))} ppl= {_g(summ.ppl)} ppl1= {_g(summ.ppl1)}\n")


def _srilm_word_lines(s: Any, lb: Callable[[float], float]) -> Iterator[str]:
    """ngram -debug 2's line per predicted token: the word and its context as the model reads them
    (an unknown word is <unk>), the previous token then ' ...' when there is more before it."""
    prev = s.context
    for i, t in enumerate(s.tokens):
        word = UNK_NAME if t.is_oov else t.token
        value = f"{SRILM_TAG} {_g(math.exp(t.logprob))} [ {_g(lb(t.logprob))} ]" if t.scored else "[OOV] 0 [ -inf ]"
        yield f"\tp( {word} | {prev}{' ...' if i else ' '}) \t= {value}\n"
        prev = word


def _write_srilm_sentence(out: TextIO, s: Any, lb: Callable[[float], float], debug: int) -> None:
    from ..inference.score import Summary

    out.write(" ".join(s.text.split()) + "\n")  # ngram echoes the line's words
    if debug >= 2:
        out.writelines(_srilm_word_lines(s, lb))
    _write_srilm_stats(out, Summary.of([s]), lb)
    out.write("\n")


def _write_srilm(out: TextIO, scores: Iterator[Any], summ: Any, name: str, lb: Callable[[float], float],
                 debug: int) -> None:
    for n, s in enumerate(scores, 1):
        if debug:
            _write_srilm_sentence(out, s, lb, debug)
        if n % CHUNK_SENTENCES == 0:
            out.flush()
    _write_srilm_stats(out, summ, lb, f"file {name}: ")


def _write_jsonl(out: TextIO, s: Any, per_token: bool, log_base: str, lb: Callable[[float], float]) -> None:
    obj = {"text": s.text, "logprob": lb(s.logprob), "log_base": log_base, "tokens": s.num_scored,
           "words": s.num_words, "oov": s.num_oov, "ppl": s.ppl}
    if not s.num_scored:  # strict JSON: no NaN; null and the reason
        obj.update(ppl=None, ppl_note="nothing scored")
    if per_token:
        obj["token_scores"] = [{"token": t.token, "logprob": lb(t.logprob) if t.scored else None, "oov": t.is_oov}
                               for t in s.tokens]
    out.write(dumps(obj) + "\n")


def _write_text(out: TextIO, s: Any, per_token: bool, lb: Callable[[float], float]) -> None:
    if per_token:
        for t in s.tokens:
            val = f"{lb(t.logprob):.6f}" if t.scored else "skipped"
            flag = "\t(oov)" if t.is_oov else ""
            out.write(f"  {t.token}\t{val}{flag}\n")
    out.write(f"{lb(s.logprob):.6f}\t{s.num_scored}\t{s.ppl:.4f}\t{s.text}\n")


def _write(out: TextIO, args: argparse.Namespace, scores: Iterator[Any], summ: Any, log_base: str,
           debug: int) -> None:
    """Each sentence's line(s) as its chunk comes (flushed after each chunk), then the totals
    (`summ`, filled as `scores` goes by): SRILM's summary on `out`, or a line on stderr."""
    from ..inference.score import log_base_value, to_base

    lb = functools.partial(to_base, base=log_base_value(log_base))
    if args.output_format == "srilm":
        _write_srilm(out, scores, summ, input_name(args.file), lb, debug)
        return
    for n, s in enumerate(scores, 1):
        if args.output_format == "jsonl":
            _write_jsonl(out, s, args.per_token, log_base, lb)
        else:
            _write_text(out, s, args.per_token, lb)
        if n % CHUNK_SENTENCES == 0:  # the chunk is done: the next line needs the next chunk scored
            out.flush()
    out.flush()
    if args.output_format == "text":
        print(f"{summ.sentences} sentences, {summ.words} words, {summ.oovs} OOVs; logprob (base {log_base}) "
              f"{lb(summ.logprob):.4f}, ppl {summ.ppl:.4f}, ppl1 {summ.ppl1:.4f}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..inference.score import Summary

    log_base = _log_base(args)
    debug = _debug_level(args)
    lines = input_lines(args.file)
    lm = api.load(args.model, engine=args.engine, device=args.device)
    summ = Summary()
    with progress_bar(None, "scoring") as update:
        scores = lm.score_iter(lines, bos=args.bos, eos=args.eos, oov=args.oov, batch_size=args.batch_size,
                               per_token=args.per_token or debug == 2, chunk_sentences=CHUNK_SENTENCES, progress=update)
        scores = started(map(summ.add, scores))  # the first chunk scored before the output is opened
        with open_output(args.output) as out:
            _write(out, args, scores, summ, log_base, debug)
    return 0
