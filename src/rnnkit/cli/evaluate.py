"""`rnnkit eval`: perplexity (and bits per character for character models) of a model on a file.

FILE (a file, a directory or glob of files, or a dataset split) is encoded with the model's
vocabulary into an id file (the id cache: a second evaluation of the same file reads it back)
and evaluated from its memory map, a window or a batch at a time.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import BATCHING_MODES, TrainConfig
from .common import add_batch_size, add_model_argument, print_out
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
    add_engine_options(p)


def run(args: argparse.Namespace) -> int:
    from .. import api
    from ..data import encode_source
    from ..inference.evaluate import evaluate_encoded

    lm = api.load(args.model, engine=args.engine, device=args.device)
    level = lm.tokenizer_config.level
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
