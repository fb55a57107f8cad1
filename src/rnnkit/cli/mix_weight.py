"""`rnnkit mix-weight`: the perplexity-optimal interpolation weight of the RNN and an ARPA n-gram
model on held-out text, by EM, printing the perplexity at each iteration as SRILM's
compute-best-mix does. Also the `--mix-lm` / `--lambda` options that `score` and `eval` share
(`add_mix_options`, `load_mix`)."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError
from .common import (
    add_batch_size,
    add_model_argument,
    input_lines,
    input_name,
    print_out,
    progress_bar,
)
from .options import add_engine_options

DEFAULT_LAMBDA = 0.5
VOCAB_RULE = ("both models see the RNN's tokens (its tokenizer, its lowercasing); a word the n-gram does not "
              "know is its <unk>, or without <unk> has n-gram probability 0 (see docs/ngram.md)")


def add_mix_options(p: argparse.ArgumentParser, what: str = "") -> None:
    """--mix-lm FILE.arpa and --lambda L, for a command that scores text."""
    p.add_argument("--mix-lm", metavar="FILE.arpa", default=None,
                   help="interpolate each token's probability with this ARPA n-gram model's: "
                        f"lambda * p_rnn + (1 - lambda) * p_ngram; {VOCAB_RULE}{what} (default: none)")
    p.add_argument("--lambda", dest="mix_lambda", type=float, default=None, metavar="L",
                   help=f"with --mix-lm: the RNN's weight in [0, 1] (rnnlm's -lambda; find it with rnnkit "
                        f"mix-weight) (default: {DEFAULT_LAMBDA})")


def load_mix(args: argparse.Namespace, level: str):
    """(ArpaModel, lambda) when --mix-lm is given, else None; the options checked first."""
    from ..ngram.arpa import read_arpa
    from ..ngram.mix import check_lambda

    if args.mix_lm is None:
        if args.mix_lambda is not None:
            raise ConfigError("--lambda needs --mix-lm FILE.arpa (the n-gram model to mix with)")
        return None
    lam = check_lambda(DEFAULT_LAMBDA if args.mix_lambda is None else args.mix_lambda)
    if level != "word":
        raise ConfigError("--mix-lm needs a word-level model: an n-gram model's words are not a character "
                          "model's tokens")
    return read_arpa(args.mix_lm), lam


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("mix-weight", help="find the RNN / n-gram interpolation weight on held-out text (EM)",
                              description="Find lambda minimising the perplexity of lambda * p_rnn + (1 - lambda) "
                                          "* p_ngram on DEV by EM, printing the perplexity at each iteration "
                                          "(as SRILM's compute-best-mix), then the best lambda (the RNN's weight).")
    add_model_argument(p)
    p.add_argument("dev", metavar="DEV", help="held-out text, one sentence per line; - for stdin")
    p.add_argument("--mix-lm", metavar="FILE.arpa", required=True,
                   help=f"the ARPA n-gram model to mix with; {VOCAB_RULE} (required)")
    p.add_argument("--lambda", dest="mix_lambda", type=float, default=DEFAULT_LAMBDA, metavar="INIT",
                   help=f"EM's starting weight of the RNN, strictly between 0 and 1 (default: {DEFAULT_LAMBDA})")
    p.add_argument("--max-iter", type=int, default=100, metavar="N",
                   help="at most this many EM updates (default: 100)")
    p.add_argument("--tolerance", type=float, default=1e-4, metavar="T",
                   help="stop when lambda moves less than this in an iteration (default: 0.0001)")
    p.add_argument("--oov", choices=("unk", "skip"), default="unk",
                   help="words unknown to the RNN: unk scores them as its <unk>; skip leaves them out of both "
                        "models (default: unk)")
    add_batch_size(p, 64)
    add_engine_options(p)


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..ngram.arpa import read_arpa
    from ..ngram.mix import aligned_logprobs, best_lambda, check_lambda, perplexity

    init = check_lambda(args.mix_lambda)
    if not 0.0 < init < 1.0 or args.max_iter < 1 or not args.tolerance > 0:
        raise ConfigError(f"--lambda must be strictly between 0 and 1, --max-iter >= 1 and --tolerance > 0; "
                          f"got {args.mix_lambda}, {args.max_iter}, {args.tolerance}")
    lines = input_lines(args.dev)
    lm = api.load(args.model, engine=args.engine, device=args.device)
    if lm.tokenizer.level != "word":
        raise ConfigError("mix-weight needs a word-level model: an n-gram model's words are not a character "
                          "model's tokens")
    arpa = read_arpa(args.mix_lm)
    with progress_bar(None, "scoring") as update:
        scores = lm.score_iter(lines, oov=args.oov, batch_size=args.batch_size, per_token=True, progress=update)
        rnn, ngram = aligned_logprobs(scores, arpa)
    lam, history = best_lambda(rnn, ngram, init, args.max_iter, args.tolerance)
    print_out(f"{input_name(args.dev)}: {len(rnn)} tokens (words and </s>); RNN alone ppl "
              f"{perplexity(rnn, ngram, 1.0):.4f}, n-gram alone ppl {perplexity(rnn, ngram, 0.0):.4f}")
    for i, (lam_i, ppl) in enumerate(history[:-1], 1):
        print_out(f"iteration {i}, lambda = ({lam_i:.6g} {1 - lam_i:.6g}), ppl = {ppl:.6g}")
    print_out(f"{len(rnn)} tokens, best lambda ({lam:.6g} {1 - lam:.6g}), ppl = {history[-1][1]:.6g}")
    print_out(f"lambda {lam:.6g}")
    return 0
