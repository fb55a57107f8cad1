"""`rnnkit score`: log-probability, token count and perplexity of each input line, KenLM / SRILM
style, as text, JSON lines, SRILM's `ngram -ppl` output (`--debug 0|1|2`: the file's totals;
also each sentence; also each word's `p( w | context )` line, which `compute-best-mix` reads) or
lm-zoo's surprisal table (`tsv`: `sentence_id token_id token surprisal`, bits). Streams: the input is read and
scored a chunk of sentences at a time and each chunk's lines are written (and flushed) as soon
as they are computed; the totals are running sums, printed at the end. With `--mix-lm FILE.arpa`
every probability is the per-token interpolation with that n-gram model (rnnkit.ngram.mix)."""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from ..errors import ConfigError, InputError
from ..files import dumps
from ..inference.score import CHUNK_SENTENCES, LOG_BASES, UNK_NAME
from . import score_words
from .common import (
    add_batch_size,
    add_model_argument,
    input_lines,
    input_name,
    open_output,
    progress_bar,
    started,
)
from .mix_weight import add_mix_options, load_mix
from .options import add_engine_options

OUTPUT_FORMATS = ("text", "jsonl", "srilm", "tsv")
TSV_HEADER = "sentence_id\ttoken_id\ttoken\tsurprisal\n"  # lm-zoo's get-surprisals table
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
OOV_POLICIES = ("unk", "skip")
DEBUG_LEVELS = (0, 1, 2)
SRILM_TAG = "[rnn]"  # where ngram writes [2gram] / [OOV]: what gave the probability
SRILM_MIX_TAG = "[mix]"  # with --mix-lm: the interpolation of the RNN and the n-gram model gave it


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("score", help="log-probability of each sentence (KenLM / SRILM style)",
                              description="Score each line of FILE (or stdin with -): log-probability, token "
                                          "count and perplexity per sentence; corpus totals on stderr.")
    add_model_argument(p)
    p.add_argument("file", metavar="FILE", nargs="?", default="-", help="one sentence per line; - for stdin (default)")
    p.add_argument("--output-format", "--format", choices=OUTPUT_FORMATS, default="text",
                   help="text: logprob<TAB>tokens<TAB>ppl<TAB>sentence; jsonl: one object per sentence; srilm: "
                        "SRILM's ngram -ppl output, see --debug; tsv: lm-zoo's surprisal table, a header then "
                        "'sentence_id<TAB>token_id<TAB>token<TAB>surprisal' per predicted token (ids from 1, "
                        "token_id its place in the line's tokens, surprisal in bits, empty for a skipped OOV; "
                        "tab, newline, CR and backslash in a token written \\t \\n \\r \\\\) (default: text)")
    p.add_argument("--per-token", action="store_true",
                   help="also each token's log-probability; with jsonl also its start and end character "
                        "offsets in the line, surprisal and the entropy of the distribution before it (bits) "
                        "and its rank there (1 = most likely); with --output-format srilm it means --debug 2; "
                        "tsv is always per token (default: off)")
    p.add_argument("--debug", type=int, choices=DEBUG_LEVELS, default=None,
                   help="--output-format srilm only, as ngram -ppl -debug N: 0 the file's totals; 1 also each "
                        "sentence, then its totals and a blank line; 2 also, before them, a "
                        "'p( w | context ) = [rnn] P [ log10 P ]' line per predicted token "
                        "(default: 0, or 2 with --per-token)")
    p.add_argument("--log-base", choices=list(LOG_BASES), default=None,
                   help="base of the printed logs (default: e; 10 with --output-format srilm, whose logprob= "
                        "is always log10 as SRILM prints it; tsv prints surprisal in bits, base 2)")
    p.add_argument("--bos", action=argparse.BooleanOptionalAction, default=True,
                   help="condition the first word on <s>; --no-bos makes it context only, not scored (an RNN "
                        "has no empty-context distribution to score it from, see the README) (default: on)")
    p.add_argument("--eos", action=argparse.BooleanOptionalAction, default=True,
                   help="predict </s> at the end of each sentence; a line that ends in a literal </s> has it "
                        "predicted once either way (default: on)")
    p.add_argument("--oov", choices=OOV_POLICIES, default="unk",
                   help="unk: score unknown words as <unk>, as words (SRILM's -unk); skip: leave them out as "
                        "OOVs, out of ppl's denominators (SRILM without -unk) (default: unk)")
    add_mix_options(p, "; every logprob, ppl and SRILM line is then the mixture's, entropy and rank are "
                       "not given")
    add_batch_size(p, 64)
    p.add_argument("--output", "-o", default="-", metavar="FILE", help="output file (default: - for stdout)")
    score_words.add_options(p)
    add_engine_options(p)


def _log_base(args: argparse.Namespace) -> str:
    if args.output_format == "tsv" and args.log_base not in (None, "2"):
        raise ConfigError(f"--log-base: --output-format tsv prints surprisal in bits (lm-zoo's); "
                          f"--log-base {args.log_base} cannot be used with it")
    if args.output_format == "srilm" and args.log_base not in (None, "10"):
        # SRILM's logprob= is log10 by definition: that is what ngram -ppl prints and its tools read
        raise ConfigError(f"--log-base: --output-format srilm prints log10 (SRILM's logprob=); "
                          f"--log-base {args.log_base} cannot be used with it")
    return args.log_base or {"srilm": "10", "tsv": "2"}.get(args.output_format, "e")


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


def _srilm_word_lines(s: Any, lb: Callable[[float], float], tag: str) -> Iterator[str]:
    """ngram -debug 2's line per predicted token: the word and its context as the model reads them
    (an unknown word is <unk>), the previous token then ' ...' when there is more before it."""
    prev = s.context
    for i, t in enumerate(s.tokens):
        word = UNK_NAME if t.is_oov else t.token
        value = f"{tag} {_g(math.exp(t.logprob))} [ {_g(lb(t.logprob))} ]" if t.scored else "[OOV] 0 [ -inf ]"
        yield f"\tp( {word} | {prev}{' ...' if i else ' '}) \t= {value}\n"
        prev = word


def _write_srilm_sentence(out: TextIO, s: Any, lb: Callable[[float], float], debug: int, tag: str) -> None:
    from ..inference.score import Summary

    out.write(" ".join(s.text.split()) + "\n")  # ngram echoes the line's words
    if debug >= 2:
        out.writelines(_srilm_word_lines(s, lb, tag))
    _write_srilm_stats(out, Summary.of([s]), lb)
    out.write("\n")


def _write_srilm(out: TextIO, scores: Iterator[Any], summ: Any, name: str, lb: Callable[[float], float],
                 debug: int, tag: str) -> None:
    for n, s in enumerate(scores, 1):
        if debug:
            _write_srilm_sentence(out, s, lb, debug, tag)
        if n % CHUNK_SENTENCES == 0:
            out.flush()
    _write_srilm_stats(out, summ, lb, f"file {name}: ")


def _write_jsonl(out: TextIO, s: Any, per_token: bool, log_base: str, lb: Callable[[float], float],
                 ex: dict | None = None) -> None:
    obj = {"text": s.text, "logprob": lb(s.logprob), "log_base": log_base, "tokens": s.num_scored,
           "words": s.num_words, "oov": s.num_oov, "ppl": s.ppl}
    if not s.num_scored:  # strict JSON: no NaN; null and the reason
        obj.update(ppl=None, ppl_note="nothing scored")
    if per_token:
        obj["token_scores"] = [_token_object(t, lb) for t in s.tokens]
    obj.update(score_words.json_fields(ex or {}, lb))
    out.write(dumps(obj) + "\n")


def _bits(nats: float) -> float:
    return nats / math.log(2)


def _token_object(t: Any, lb: Callable[[float], float]) -> dict:
    """A token's jsonl record: logprob in --log-base; surprisal and entropy in bits; a skipped
    OOV's logprob, surprisal and rank null (its entropy, the distribution's, is kept)."""
    return {"token": t.token, "logprob": lb(t.logprob) if t.scored else None, "oov": t.is_oov,
            "start": t.start, "end": t.end, "surprisal": -_bits(t.logprob) if t.scored else None,
            "entropy": None if t.entropy is None else _bits(t.entropy),
            "rank": t.rank if t.scored else None}


def _tsv_lines(n: int, s: Any, bos: bool) -> Iterator[str]:
    """lm-zoo's rows of sentence n: token_id is the token's place in the line's tokens (from 1;
    without bos the first word is context, not a row, and the ids go on from 2)."""
    for i, t in enumerate(s.tokens, 1 if bos else 2):
        surprisal = f"{-_bits(t.logprob):.6f}" if t.scored else ""
        yield f"{n}\t{i}\t{t.token.translate(_TSV_ESCAPES)}\t{surprisal}\n"


def _write_text(out: TextIO, s: Any, per_token: bool, lb: Callable[[float], float]) -> None:
    if per_token:
        for t in s.tokens:
            val = f"{lb(t.logprob):.6f}" if t.scored else "skipped"
            flag = "\t(oov)" if t.is_oov else ""
            out.write(f"  {t.token}\t{val}{flag}\n")
    out.write(f"{lb(s.logprob):.6f}\t{s.num_scored}\t{s.ppl:.4f}\t{s.text}\n")


def _write(out: TextIO, args: argparse.Namespace, scores: Iterator[Any], summ: Any, log_base: str,
           debug: int, regions: dict | None = None) -> None:
    """Each sentence's line(s) as its chunk comes (flushed after each chunk), then the totals
    (`summ`, filled as `scores` goes by): SRILM's summary on `out`, or a line on stderr."""
    from ..inference.score import log_base_value, to_base

    lb = functools.partial(to_base, base=log_base_value(log_base))
    if args.output_format == "srilm":
        tag = SRILM_MIX_TAG if getattr(args, "mix_lm", None) else SRILM_TAG
        _write_srilm(out, scores, summ, input_name(args.file), lb, debug, tag)
        return
    if args.output_format == "tsv":
        out.write(TSV_HEADER)
    for n, s in enumerate(scores, 1):
        ex = score_words.extras(n, s, args, regions, input_name(args.file)) if regions is not None else {}
        if args.output_format == "jsonl":
            _write_jsonl(out, s, args.per_token, log_base, lb, ex)
        elif args.output_format == "tsv":
            out.writelines(_tsv_lines(n, s, args.bos))
        else:
            _write_text(out, s, args.per_token, lb)
            score_words.write_text(out, ex, lb)
        if n % CHUNK_SENTENCES == 0:  # the chunk is done: the next line needs the next chunk scored
            out.flush()
    out.flush()
    if args.output_format == "text":
        print(f"{summ.sentences} sentences, {summ.words} words, {summ.oovs} OOVs; logprob (base {log_base}) "
              f"{lb(summ.logprob):.4f}, ppl {summ.ppl:.4f}, ppl1 {summ.ppl1:.4f}", file=sys.stderr)


def _blank_lines_too(lines: Iterator[str], label: str) -> Iterator[str]:
    """`lines`, where an input of only blank lines is not refused: for a character model those
    are sentences (spaces, or none), each scored. Other errors pass."""
    blank = True
    try:
        for line in lines:
            blank = blank and (line == "" or line.isspace())
            yield line
    except InputError as e:
        if not (blank and str(e) == f"{label}: empty file (only whitespace)"):
            raise


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..inference.score import Summary, score_stream

    log_base = _log_base(args)
    debug = _debug_level(args)
    lines = input_lines(args.file)
    lm = api.load(args.model, engine=args.engine, device=args.device)
    if lm.tokenizer.level == "char":
        lines = _blank_lines_too(lines, input_name(args.file))
    regions = score_words.prepare(args, lm.tokenizer.level)
    mix = load_mix(args, lm.tokenizer.level)
    summ = Summary()
    per_token = args.per_token or debug == 2 or args.output_format == "tsv" or regions is not None
    detail = args.per_token and args.output_format == "jsonl" and mix is None  # entropy and rank: full rows
    with progress_bar(None, "scoring") as update:
        scores = score_stream(lm.model, lm.vocab, lm.tokenizer, lines, bos=args.bos, eos=args.eos, oov=args.oov,
                              batch_size=args.batch_size, per_token=per_token or mix is not None, detail=detail,
                              chunk_sentences=CHUNK_SENTENCES, progress=update)
        if mix is not None:
            from ..ngram.mix import mix_scores

            scores = mix_scores(scores, *mix, bos=args.bos, keep_tokens=per_token)
        scores = started(map(summ.add, scores))  # the first chunk scored before the output is opened
        with open_output(args.output) as out:
            _write(out, args, scores, summ, log_base, debug, regions)
    return 0
