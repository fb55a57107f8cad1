"""`rnnkit eval`: perplexity (and bits per character for character models) of a model on a file.

FILE (a file, a directory or glob of files, or a dataset split) is encoded with the model's
vocabulary into an id file (the id cache: a second evaluation of the same file reads it back)
and evaluated from its memory map, a window or a batch at a time. With `--mix-lm FILE.arpa` the
sentences are scored one by one from <s> instead (streamed, per token) and each token's probability
interpolated with the n-gram model's (rnnkit.ngram.mix).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import BATCHING_MODES, TrainConfig
from ..errors import ConfigError
from .common import add_batch_size, add_model_argument, print_out, progress_bar
from .mix_weight import add_mix_options, load_mix
from .options import add_engine_options, add_options


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("eval", help="perplexity of a model on a text file",
                              description="Perplexity (and bits per character for character models) of "
                                          "MODEL_DIR on FILE.")
    add_model_argument(p)
    p.add_argument("file", metavar="FILE", help="a text file, a directory or glob of files, or a known dataset split "
                                                "such as ptb:test")
    p.add_argument("--mode", choices=BATCHING_MODES, default=None,
                   help="stream: hidden state carried across lines, as PTB results are reported; sentences: hidden state "
                        "reset per line (default: how the model was trained)")
    add_options(p, TrainConfig, ("corpus_format", "csv_column"), keep_default=True)
    add_batch_size(p, 10, "sentences (columns in stream mode)")
    add_mix_options(p, "; with it eval scores sentence by sentence (each line from <s>, as n-gram models do; "
                       "--mode stream is refused) and reports the mixture's perplexity")
    add_engine_options(p)


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..data import encode_source
    from ..inference.evaluate import evaluate_encoded

    if args.mix_lm is not None and args.mode == "stream":
        raise ConfigError("--mode stream cannot be used with --mix-lm: the mixture is scored sentence by "
                          "sentence, as the n-gram model scores them (leave --mode out, or --mode sentences)")
    lm = api.load(args.model, engine=args.engine, device=args.device)
    level = lm.tokenizer_config.level
    mix = load_mix(args, level)
    if mix is not None:
        return _run_mixed(args, lm, mix)
    encoded = encode_source(args.file, lm.tokenizer_config, lm.vocab, format=args.corpus_format,
                            csv_column=args.csv_column)
    mode = args.mode or lm.info.get("train", {}).get("batching", "sentences")
    res = evaluate_encoded(lm.model, encoded, lm.vocab, mode, batch_size=args.batch_size)
    line = (f"{args.file}: {len(encoded):,} sentences, {res.count:,} tokens predicted, {res.oov:,} OOV; "
            f"loss {res.loss:.4f} nats, perplexity {res.ppl:,.2f}")
    if level == "char":
        line += f", {res.bpc:.4f} bits/char"
    print_out(line + f" ({mode} mode)")
    return 0


def _run_mixed(args: argparse.Namespace, lm: Any, mix: tuple) -> int:
    """eval --mix-lm: each sentence scored from <s> (per token, streamed), mixed with the n-gram's."""
    from ..data.sources import iter_sentences
    from ..inference.score import Summary
    from ..ngram.mix import mix_scores

    sentences = iter_sentences(args.file, args.corpus_format, args.csv_column, lm.tokenizer_config.level)
    summ = Summary()
    with progress_bar(None, "scoring") as update:
        scores = lm.score_iter(sentences, batch_size=args.batch_size, per_token=True, progress=update)
        for s in mix_scores(scores, *mix, keep_tokens=False):
            summ.add(s)
    n = summ.scored_words + summ.scored_eos
    loss = -summ.logprob / n if n else float("nan")
    print_out(f"{args.file}: {summ.sentences:,} sentences, {n:,} tokens predicted, {summ.oovs:,} OOVs left out; "
              f"loss {loss:.4f} nats, perplexity {summ.ppl:,.2f} (sentences mode, mixed with {args.mix_lm} "
              f"at lambda {mix[1]:g})")
    return 0
