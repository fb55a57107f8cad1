"""`rnnkit lattice`: rescore word lattices (HTK SLF or Kaldi text) with the RNN language model,
one utterance at a time: write each rescored (expanded) lattice in the input's format and,
with --best, its 1-best as `uttid w1 w2 ...`. The expansion and its approximation:
rnnkit.inference.lattice_rescore and docs/lattices.md."""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from typing import Any

from ..errors import ConfigError
from .common import (
    add_batch_size,
    add_model_argument,
    finite_float,
    input_lines,
    input_name,
    nonneg_int,
    open_output,
    progress_bar,
    started,
)
from .options import add_engine_options

DEFAULT_MERGE = 4
DESCRIPTION = """\
Rescore word lattices with the language model. Each path's total is
  acoustic_scale * acoustic + lm_weight * LM + word_penalty * words
in the lattice's log base (SLF: base=, default e; Kaldi: natural log, its costs negated).
The RNN's log-probability replaces each word's LM score (or is mixed with it: --lambda),
expanding the lattice into states (node, last N words): paths whose last N words agree are
merged and continue with the best one's hidden state (--ngram-merge; exact when N is at least
the longest path's word count). Lattice words are the model's tokens as written (lower-cased
when the model's tokenizer lower-cases); unknown words are <unk>."""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("lattice", help="rescore word lattices (HTK SLF, Kaldi text) with the language model",
                              description=DESCRIPTION)
    add_model_argument(p)
    p.add_argument("lattice", metavar="LATTICE", help="lattice file (several lattices may follow each other), "
                                                      "or - for stdin")
    p.add_argument("--lattice-format", choices=("slf", "kaldi"), required=True,
                   help="slf: HTK standard lattice format; kaldi: text lattices as `lattice-copy "
                        "--write-compact=false ark:in ark,t:out` writes them (compact ones too) (required)")
    p.add_argument("--words", metavar="FILE", default=None,
                   help="Kaldi's words.txt, to read integer word labels (default: none: labels are words)")
    p.add_argument("--ngram-merge", type=nonneg_int, default=DEFAULT_MERGE, metavar="N",
                   help=f"merge paths whose last N words agree (0: one state per node) (default: {DEFAULT_MERGE})")
    p.add_argument("--lambda", dest="mix_lambda", type=finite_float, default=1.0, metavar="L",
                   help="the RNN's weight in probability space against the lattice's LM scores: 1 replaces "
                        "them, 0 keeps them (default: 1)")
    p.add_argument("--lm-weight", type=finite_float, default=None, metavar="X",
                   help="weight of the LM log-probability (default: the SLF header's lmscale, else 1)")
    p.add_argument("--word-penalty", type=finite_float, default=None, metavar="X",
                   help="added per word (default: the SLF header's wdpenalty, else 0)")
    p.add_argument("--acoustic-scale", type=finite_float, default=None, metavar="X",
                   help="weight of the acoustic log-likelihood (default: the SLF header's acscale, else 1)")
    p.add_argument("--output", "-o", default="-", metavar="FILE",
                   help="the rescored lattices, in the input's format (default: - for stdout)")
    p.add_argument("--best", default=None, metavar="FILE",
                   help="also write the 1-best per lattice here, `uttid w1 w2 ...` (default: not written)")
    add_batch_size(p, 256, "RNN states stepped")
    add_engine_options(p)


def _weights(args: argparse.Namespace, lat):
    """The weights for one lattice: the options, else its SLF header's, else the defaults."""
    from ..inference.lattice import Weights

    def pick(option: float | None, key: str, default: float) -> float:
        if option is not None:
            return option
        value = lat.header_value(key)
        return default if value is None else float(value)  # checked finite by the reader

    return Weights(pick(args.acoustic_scale, "acscale", 1.0), pick(args.lm_weight, "lmscale", 1.0),
                   pick(args.word_penalty, "wdpenalty", 0.0))


def _with_weights(lat, w) -> None:
    """Write the weights used into the SLF header, so that another tool picks the same path."""
    keep = [(k, v) for k, v in lat.header if k not in ("lmscale", "wdpenalty", "acscale")]
    lat.header = keep + [("lmscale", repr(w.lm_weight)), ("wdpenalty", repr(w.word_penalty)),
                         ("acscale", repr(w.acoustic_scale))]


def _lattices(args: argparse.Namespace):
    from ..data.lines import iter_lines
    from ..inference.lattice_formats import read_lattices, read_symbols

    if args.best == "-" and args.output == "-":
        raise ConfigError("--best - and --output - would mix on stdout: give one of them a file")
    if not 0.0 <= args.mix_lambda <= 1.0:
        raise ConfigError(f"--lambda must be in [0, 1], got {args.mix_lambda}")
    if args.words and args.lattice_format != "kaldi":
        raise ConfigError("--words is a Kaldi words.txt: it applies to --lattice-format kaldi only (SLF lattices "
                          "hold their words)")
    symbols = read_symbols(iter_lines(args.words), args.words) if args.words else None
    return started(read_lattices(input_lines(args.lattice), args.lattice_format, input_name(args.lattice), symbols))


def _word_ids(stepper, lower: bool):
    """A lattice word -> the model's id (lower-cased as the model's tokenizer does; unknown: <unk>), cached."""
    ids: dict[str, int] = {}

    def word_id(word: str) -> int:
        if word not in ids:
            ids[word] = stepper.id(word.lower() if lower else word)
        return ids[word]

    return word_id


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..inference.lattice import best_path, words_of
    from ..inference.lattice_formats import write_lattice
    from ..inference.lattice_rescore import rescore_lattice

    lattices = _lattices(args)  # the first lattice read and checked before the model loads
    lm = api.load(args.model, engine=args.engine, device=args.device)
    if lm.tokenizer_config.level != "word":
        raise ConfigError("lattice rescoring needs a word-level model: lattice words are not a character "
                          "model's tokens")
    stepper = lm.stepper()
    word_id = _word_ids(stepper, lm.tokenizer_config.lowercase)
    count = changed = states = arcs = 0
    with open_output(args.output) as out, \
            (open_output(args.best) if args.best else nullcontext()) as best, \
            progress_bar(None, "lattices") as update:
        for lat in lattices:
            w = _weights(args, lat)
            res = rescore_lattice(lat, stepper, ngram_merge=args.ngram_merge, lam=args.mix_lambda, weights=w,
                                  word_id=word_id, batch_size=args.batch_size)
            if args.lattice_format == "slf":
                _with_weights(res.lattice, w)
            write_lattice(res.lattice, args.lattice_format, out)
            out.flush()
            if best is not None:
                best.write(f"{lat.name} {' '.join(res.words)}".rstrip() + "\n")
                best.flush()
            count, states, arcs = count + 1, states + res.states, arcs + len(lat.arcs)
            changed += res.words != words_of(best_path(lat, w)[1])
            update(1)
    print(f"rescored {count} lattice(s) ({arcs} arcs, {states} expanded states); the 1-best changed for "
          f"{changed} of them", file=sys.stderr)
    return 0

